// The gateway put together: the proxy path over the hot-path blocks, metering into the store,
// quota notices, and the usage export (outbound webhooks: delivery/outbound-webhooks.ts).
export { GateCatalog, type GateCatalogOptions } from './catalog.js';
export { DomainEventWebhooks } from './domain-events.js';
export { exportUsage, USAGE_CSV_COLUMNS, type UsageExport, usageCsv } from './export.js';
export { type Gateway, type GatewayCloseReport, type GatewayOptions, startGateway, USAGE_SPOOL_FILE } from './gateway.js';
export { createProxyHandler, GATEWAY_PREFIXES, ownedByGateway, presentedKey, type ProxyHandlerOptions } from './handler.js';
export { type QuotaNoticeFacts, QuotaNotices, type QuotaNoticesOptions, renderQuotaEmail, type SendEmail } from './notices.js';
export { storeUsageSink } from './usage-sink.js';
