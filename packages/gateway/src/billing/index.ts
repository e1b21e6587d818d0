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
export { createSubscriptionAdmin } from './admin-routes.js';
export {
  BillingError,
  type BillingInterval,
  type BillingOverview,
  CustomerBilling,
  type CustomerBillingOptions,
  customerBillingFor,
} from './customer-billing.js';
export {
  type BillingJobs,
  checkIntervalMinutes,
  DEFAULT_RECONCILE_MINUTES,
  DEFAULT_USAGE_REPORT_MINUTES,
  RECONCILE_INTERVAL_SETTING,
  startBillingJobs,
  USAGE_REPORT_INTERVAL_SETTING,
} from './jobs.js';
export { PLAN_SYNC_QUEUE, type PlanSyncJob, type PlanSyncWorkerOptions, startPlanSyncWorker } from './plan-sync-worker.js';
export {
  overageUnit,
  overageUnits,
  PLAN_PRICE_TYPES,
  PRICE_KINDS,
  type PlanSyncOptions,
  type PlanSyncResult,
  type PriceKind,
  syncPlan,
  syncPlanPrices,
} from './plans-sync.js';
export { type ReconcileChange, type ReconcileOptions, type ReconcileResult, reconcileSubscriptions, startReconciler } from './reconcile.js';
export { LIVE_STATUSES, type SubscriptionStateApplier } from './states.js';
export {
  reportOverage,
  startUsageReporter,
  type UsageReportResult,
  type UsageReportRow,
  usageReportKey,
  usageReportsFor,
} from './usage-report.js';
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
} from './inbound-webhooks.js';
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
export { createPaymentEventsAdmin, parseEventStatus, paymentEventDetail } from './events-admin.js';
