export {
  jobIdOf,
  PAYMENT_EVENT_STATUSES,
  PAYMENT_QUEUE,
  PaymentInbox,
  type PaymentEventStatus,
  type PaymentJob,
  type RecordedPaymentEvent,
  retryDelayMs,
  storedHeaders,
} from './events.js';
export {
  type ApplyResult,
  DEFAULT_PAST_DUE_GRACE_DAYS,
  MAPPING,
  PAST_DUE_GRACE_SETTING,
  PaymentMappingError,
  PaymentProcessor,
  type PaymentProcessorOptions,
  type StateSource,
} from './processor.js';
export { type PlanSyncResult, syncPlanPrices } from './plans-sync.js';
export {
  checkWebhookMaxBytes,
  createPaymentWebhookApp,
  DEFAULT_WEBHOOK_MAX_BYTES,
  isLoopbackHost,
  type PaymentWebhookOptions,
  paymentWebhookPath,
  paymentWebhookRefusal,
  readBounded,
  selectedPayment,
  WEBHOOK_MAX_BYTES_ENV,
  WEBHOOK_MAX_BYTES_SETTING,
  webhookMaxBytes,
} from './route.js';
export {
  DEFAULT_PAYMENT_ATTEMPTS,
  DEFAULT_PAYMENT_BACKOFF_MS,
  enqueuePaymentEvent,
  findPaymentEvent,
  PAYMENT_ATTEMPTS_SETTING,
  PAYMENT_BACKOFF_SETTING,
  type PaymentWorker,
  type PaymentWorkerOptions,
  replayPaymentEvent,
  startPaymentWorker,
} from './worker.js';
