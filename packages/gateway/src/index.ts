export { createHttpApp, type HttpAppOptions } from './app/http-app.js';
export type { ErrorBody } from './proxy/respond.js';
export { type RunningServer, type StartServerOptions, startServer } from './http/server.js';
export { KEY_FILE_NAME, MIN_SECRET_KEY_LENGTH, SECRET_KEY_ENV } from './store/crypto.js';
export { type AppDatabase, type AppSchema, DATABASE_FILE, MIGRATIONS_DIR } from './store/db.js';
export {
  DEFAULT_PAGE_SIZE,
  MAX_PAGE_SIZE,
  type MappingQuery,
  type MappingStore,
  type NewProviderMapping,
  type ProviderMapping,
} from './store/mappings.js';
export * as schema from './store/schema.js';
export type { SettingEntry, SettingsStore } from './store/settings.js';
export { installPrefixDefaults } from './store/install.js';
export { DATABASE_URL_ENV, openStore, type Store, type StoreOptions } from './domain/open-store.js';
export { affectedRows, type Dialect, type StoreDb, type Tables, type Tx } from './store/dialect.js';
export { copySqliteToPostgres, sqliteMigrationStatus } from './store/db-admin.js';
export { connectPostgres, isPostgresUrl, type MigrationStatus, openPostgres, postgresMigrationStatus } from './store/pg.js';
export * from './domain/index.js';
export { ADMIN_TOKEN_ENV, type AdminApiOptions, checkAdminToken, createAdminApi, MIN_ADMIN_TOKEN_LENGTH } from './admin/api.js';
export * from './delivery/index.js';
export * from './hotpath.js';
export * from './app/index.js';
export * from './gate/index.js';
export * from './portal/index.js';
export * from './billing/index.js';
export * from './tls/index.js';
export * from './settings-registry.js';
export * from './shutdown-settings.js';
