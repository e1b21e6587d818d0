export { type ApiGate, type ApiGateOptions, startApiGate } from './start.js';
export { paymentPipeline } from './payment.js';
export { type ShutdownOutcome, shutdownOutcome, unpublishedUsageLine, untilDeadline } from './shutdown.js';
