export { fromJob, PAYMENT_QUEUE, PaymentEventLog, type PaymentEventStatus, type PaymentJob, type RecordedPaymentEvent, toJob } from './events.js';
export { MAPPING, PaymentProcessor, type PaymentProcessorOptions, startPaymentWorker } from './processor.js';
export { type PlanSyncResult, syncPlanPrices } from './plans-sync.js';
export { createPaymentWebhookApp, type PaymentWebhookOptions, paymentWebhookPath, selectedPayment } from './route.js';
