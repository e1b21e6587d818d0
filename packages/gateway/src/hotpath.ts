// The request hot path's building blocks: forwarding, limits, metering. Each takes its
// dependencies (capabilities, plain data, repositories) as arguments; the app wires them.
export {
  type ForwarderOptions,
  type ForwardOptions,
  type ForwardOutcome,
  type ForwardResult,
  Forwarder,
  type ProxyIdentity,
} from './proxy/forward.js';
export { sendJsonError } from './proxy/respond.js';
export { type CompiledRoute, compileRoute, type ProxyRoute, RouteTable, upstreamPath } from './proxy/routes.js';
export { type CacheCircuitOptions, CacheCircuit, CacheUnavailableError, type CircuitStatus, limitsHealth } from './limits/circuit.js';
export { calendarMonth, type QuotaCounterOptions, QuotaCounter, type QuotaPeriod, type QuotaResult } from './limits/quota.js';
export { type RateLimiterOptions, type RateLimitResult, RateLimiter, rateLimitHeaders } from './limits/rate-limit.js';
export { startUsageConsumer, usageBatchHandler } from './metering/consumer.js';
export { type CloseSummary, USAGE_QUEUE, type UsageRecorderOptions, type UsageRecorderStats, UsageRecorder } from './metering/recorder.js';
// Where the metering consumer writes batches (UsageSink); gate/usage-sink.ts writes them into the domain's usage tables.
export {
  addOverhead,
  OVERHEAD_BUCKETS_MS,
  overheadBucket,
  overheadQuantile,
  type UsageBatch,
  type UsageRecord,
  type UsageSink,
  type UsageRow,
  usageBatchSchema,
} from './metering/types.js';
export { sendQuotaExceeded, sendRateLimited } from './limits/responses.js';
