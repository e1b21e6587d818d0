// The public surface of @apigate/gateway: what the app (apps/apigate), the pages (@apigate/web) and the
// README samples use. The hot path's building blocks (Forwarder, RouteTable, RateLimiter, ...) are
// `@apigate/gateway/hotpath`. Layers and who may import whom: README.md, "Layers".

// Store: the database, its settings and the domain.
export { KEY_FILE_NAME, MIN_SECRET_KEY_LENGTH, SECRET_KEY_ENV } from './store/crypto.js';
export { type AppDatabase, type AppSchema, DATABASE_FILE, MIGRATIONS_DIR } from './store/db.js';
export type { MappingQuery, MappingStore, NewProviderMapping, ProviderMapping } from './store/mappings.js';
export * as schema from './store/schema.js';
export type { SettingEntry, SettingsStore } from './store/settings.js';
export { installPrefixDefaults } from './store/install.js';
export { affectedRows, type Dialect, type StoreDb, type Tables, type Tx } from './store/dialect.js';
export { copySqliteToPostgres, sqliteMigrationStatus } from './store/db-admin.js';
export { connectPostgres, isPostgresUrl, type MigrationStatus, openPostgres, postgresMigrationStatus } from './store/pg.js';
export { CHANGE_ENTITIES, type ChangeEntity, type ChangeEvent, type ChangeNotifier } from './store/changes.js';
export { DATABASE_URL_ENV, openStore, type Store, type StoreOptions } from './domain/open-store.js';

// Domain: what `store.domain` reads and writes.
export type { Domain } from './domain/domain.js';
export type { AdminToken } from './domain/admin-tokens.js';
export { DomainError, type DomainErrorKind, isDomainError } from './domain/errors.js';
export { ADMIN_TOKEN_PREFIX, API_KEY_PREFIX } from './domain/ids.js';
export type { ApiKey, ApiKeyStatus, CreateKeyInput, KeyQuery } from './domain/keys.js';
export type { Page, PageQuery } from './domain/paging.js';
export type { CreatePlanInput, Plan, UpdatePlanInput } from './domain/plans.js';
export { type CreateRouteInput, HTTP_METHODS, type Route, type UpdateRouteInput } from './domain/routes.js';
export type { CreateSubscriptionInput, Subscription, SyncSubscriptionInput, UpdateSubscriptionInput } from './domain/subscriptions.js';
export { type KeyUsage, type MinuteUsage, monthBounds, monthOf, type UsageSummary, type UserUsage } from './domain/usage.js';
export type { KeyTraffic, OverheadSummary, RouteTraffic, TrafficMinute, TrafficOverview } from './domain/traffic.js';
export type { CreateUserInput, UpdateUserInput, User, UserQuery, UserStatus } from './domain/users.js';
export {
  type CreateWebhookEndpointInput,
  type UpdateWebhookEndpointInput,
  WEBHOOK_EVENT_TYPES,
  type WebhookDelivery,
  type WebhookEndpoint,
} from './domain/webhook-endpoints.js';
export { fromWire, toWire } from './domain/wire.js';

// The running gateway: startApiGate puts everything below together; serve adds listeners and signals.
export { type ApiGate, type ApiGateOptions, startApiGate } from './app/start.js';
export { createHttpApp, type HttpAppOptions } from './app/http-app.js';
export {
  DEFAULT_USAGE_RETENTION_DAYS,
  type HousekeepingResult,
  runHousekeeping,
  startHousekeeping,
  USAGE_RETENTION_SETTING,
} from './app/housekeeping.js';
export { type ShutdownOutcome, shutdownOutcome, unpublishedUsageLine, untilDeadline } from './app/shutdown.js';
export type { ErrorBody } from './proxy/respond.js';
export type { CloseSummary } from './metering/recorder.js';
export { type RunningServer, type StartServerOptions, startServer } from './http/server.js';
export { ADMIN_TOKEN_ENV, checkAdminToken, MIN_ADMIN_TOKEN_LENGTH } from './admin/api.js';
export { type Gateway, type GatewayCloseReport, type GatewayOptions, startGateway } from './gate/gateway.js';
export { exportUsage, USAGE_CSV_COLUMNS, type UsageExport, usageCsv } from './gate/export.js';
export { GATEWAY_SETTINGS, type GatewaySetting } from './settings-registry.js';
export { DEFAULT_SHUTDOWN_TIMEOUT_MS, readShutdownTimeout, SHUTDOWN_TIMEOUT_ENV, SHUTDOWN_TIMEOUT_SETTING } from './shutdown-settings.js';

// Delivery: email and notification outbox, outbound webhooks.
export {
  createOutbox,
  type Delivery,
  type DeliveryOutcome,
  DeliveryWorkers,
  type Enqueued,
  Outbox,
  startDelivery,
  startDeliveryWorkers,
} from './delivery/index.js';
export { WebhookDispatcher, type WebhookEvent } from './delivery/outbound-webhooks.js';

// Billing: customer billing, the payment webhook inbox and its worker.
export { BillingError, CustomerBilling, customerBillingFor } from './billing/customer-billing.js';
export { PaymentInbox, type PaymentEventStatus, type RecordedPaymentEvent } from './billing/events.js';
export { PaymentProcessor } from './billing/processor.js';
export { createPaymentWebhookApp, paymentWebhookPath, selectedPayment } from './billing/inbound-webhooks.js';
export { findPaymentEvent, type PaymentWorker, replayPaymentEvent, startPaymentWorker } from './billing/worker.js';
export { parseEventStatus, paymentEventDetail } from './billing/events-admin.js';
export { syncPlanPrices } from './billing/plans-sync.js';
export type { ReconcileResult } from './billing/reconcile.js';
export { usageReportsFor } from './billing/usage-report.js';

// Customer portal.
export { CSRF_HEADER, MIN_PASSWORD_LENGTH, type PortalOptions, SESSION_COOKIE } from './portal/api.js';
export type { PortalMailer } from './portal/mail.js';
export { hashPassword, verifyPassword } from './portal/password.js';

// TLS certificates.
export { startChallengeServer } from './tls/challenges.js';
export { CertificateStore, type StoredCertificate } from './tls/certificates.js';
export { CertificateManager, type CertificateManagerOptions, parseTlsDomains } from './tls/manager.js';
