/**
 * The gateway's tables. One section per domain area; later work (users, plans, api keys,
 * subscriptions, usage, webhook events, certificates) adds its tables here, then runs
 * `pnpm run db:generate` to write the next migration into ../../drizzle.
 *
 * Conventions: snake_case column names; times are integer epoch milliseconds (`timestamp_ms`);
 * booleans are integers (`mode: 'boolean'`).
 */
import { integer, primaryKey, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';

// --- store internals --------------------------------------------------------------------

/** Small key/value facts about the store itself (the secret-key check value, say). */
export const meta = sqliteTable('meta', {
  key: text('key').primaryKey(),
  value: text('value').notNull(),
});

// --- configuration ----------------------------------------------------------------------

/**
 * Settings written with `apigate settings set`. Secret values hold the `v1:` ciphertext
 * (see store/crypto.ts), never the plaintext.
 */
export const settings = sqliteTable('settings', {
  key: text('key').primaryKey(),
  value: text('value').notNull(),
  secret: integer('secret', { mode: 'boolean' }).notNull().default(false),
  updatedAt: integer('updated_at', { mode: 'timestamp_ms' }).notNull(),
});

// --- provider integration ---------------------------------------------------------------

/**
 * Our id of an entity (user, plan, subscription...) and the provider's id for it, unique
 * both ways so a webhook's external id finds exactly one local entity and back.
 */
export const providerMappings = sqliteTable(
  'provider_mappings',
  {
    provider: text('provider').notNull(),
    entityType: text('entity_type').notNull(),
    localId: text('local_id').notNull(),
    externalId: text('external_id').notNull(),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
  },
  (t) => [
    // The primary key is UNIQUE(provider, entity_type, local_id) and the order listings page by.
    primaryKey({ name: 'provider_mappings_pk', columns: [t.provider, t.entityType, t.localId] }),
    uniqueIndex('provider_mappings_external_uq').on(t.provider, t.entityType, t.externalId),
  ],
);
