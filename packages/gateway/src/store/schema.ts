/**
 * The gateway's tables. One section per domain area; later work (users, plans, api keys,
 * subscriptions, usage, webhook events, certificates) adds its tables here, then runs
 * `pnpm run db:generate` to write the next migration into ../../drizzle.
 *
 * Conventions: snake_case column names; times are integer epoch milliseconds (`timestamp_ms`);
 * booleans are integers (`mode: 'boolean'`).
 */
import { sql } from 'drizzle-orm';
import { blob, index, integer, primaryKey, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';

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

// --- domain: customers, plans, keys, routes ---------------------------------------------
// Ids are `<prefix>_<random base62>` (usr_, plan_, key_, rt_, sub_, whe_, whd_, tok_).

/** Plans: per-minute rate limit, monthly quota and price. Exactly one is the default (partial unique index). */
export const plans = sqliteTable(
  'plans',
  {
    id: text('id').primaryKey(),
    name: text('name').notNull(),
    /** null: no per-minute limit. */
    requestsPerMinute: integer('requests_per_minute'),
    /** null: no monthly quota. */
    requestsPerMonth: integer('requests_per_month'),
    priceCents: integer('price_cents').notNull().default(0),
    currency: text('currency').notNull().default('usd'),
    trialDays: integer('trial_days').notNull().default(0),
    /** Price of each request over the quota in millionths of a cent (integer, so sums are exact); null: no overage, requests stop at the quota. */
    overagePriceMicrocents: integer('overage_price_microcents'),
    /** Yearly price in the currency's smallest unit; null: the plan is sold monthly only. */
    yearlyPriceCents: integer('yearly_price_cents'),
    isDefault: integer('is_default', { mode: 'boolean' }).notNull().default(false),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
    updatedAt: integer('updated_at', { mode: 'timestamp_ms' }).notNull(),
  },
  (t) => [
    uniqueIndex('plans_name_uq').on(t.name),
    // At most one row with is_default = 1; the repository keeps it at exactly one once a plan exists.
    uniqueIndex('plans_one_default_uq')
      .on(t.isDefault)
      .where(sql`${t.isDefault} = 1`),
  ],
);

export const users = sqliteTable(
  'users',
  {
    id: text('id').primaryKey(),
    /** Lower-cased and trimmed before it is stored, so uniqueness ignores case. */
    email: text('email').notNull(),
    name: text('name').notNull().default(''),
    status: text('status', { enum: ['active', 'suspended'] })
      .notNull()
      .default('active'),
    planId: text('plan_id')
      .notNull()
      .references(() => plans.id, { onDelete: 'restrict' }),
    /** Written by the customer portal (scrypt/argon2 string); null for users created by an admin. */
    passwordHash: text('password_hash'),
    emailVerified: integer('email_verified', { mode: 'boolean' }).notNull().default(false),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
    updatedAt: integer('updated_at', { mode: 'timestamp_ms' }).notNull(),
  },
  (t) => [
    uniqueIndex('users_email_uq').on(t.email),
    index('users_plan_idx').on(t.planId),
    index('users_created_idx').on(t.createdAt, t.id),
  ],
);

/** API keys: only the SHA-256 of the full key is kept; `prefix` is what people recognise a key by. */
export const apiKeys = sqliteTable(
  'api_keys',
  {
    id: text('id').primaryKey(),
    userId: text('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    name: text('name').notNull().default(''),
    prefix: text('prefix').notNull(),
    /** Hex SHA-256 of the full key: a random 190+ bit key needs no slow hash. */
    hash: text('hash').notNull(),
    lastUsedAt: integer('last_used_at', { mode: 'timestamp_ms' }),
    expiresAt: integer('expires_at', { mode: 'timestamp_ms' }),
    revokedAt: integer('revoked_at', { mode: 'timestamp_ms' }),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
  },
  (t) => [uniqueIndex('api_keys_hash_uq').on(t.hash), index('api_keys_user_idx').on(t.userId, t.createdAt)],
);

export const routes = sqliteTable(
  'routes',
  {
    id: text('id').primaryKey(),
    /** Normalised: starts with '/', no trailing '/' (except the catch-all '/'). */
    pathPrefix: text('path_prefix').notNull(),
    upstreamUrl: text('upstream_url').notNull(),
    stripPrefix: integer('strip_prefix', { mode: 'boolean' }).notNull().default(false),
    /** Upper-case methods; empty accepts every method. */
    methods: text('methods', { mode: 'json' }).$type<string[]>().notNull().default(sql`'[]'`),
    /** null: the proxy's default timeout. */
    timeoutMs: integer('timeout_ms'),
    enabled: integer('enabled', { mode: 'boolean' }).notNull().default(true),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
    updatedAt: integer('updated_at', { mode: 'timestamp_ms' }).notNull(),
  },
  (t) => [uniqueIndex('routes_path_prefix_uq').on(t.pathPrefix)],
);

/** Admin API tokens made with `apigate admin token create`; SHA-256 only, like API keys. */
export const adminTokens = sqliteTable(
  'admin_tokens',
  {
    id: text('id').primaryKey(),
    name: text('name').notNull().default(''),
    prefix: text('prefix').notNull(),
    hash: text('hash').notNull(),
    lastUsedAt: integer('last_used_at', { mode: 'timestamp_ms' }),
    revokedAt: integer('revoked_at', { mode: 'timestamp_ms' }),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
  },
  (t) => [uniqueIndex('admin_tokens_hash_uq').on(t.hash)],
);

/**
 * One counter per cached entity type (users, plans, keys, routes...), bumped in the same
 * transaction as every write, so another process (the CLI, another instance) can tell
 * that its in-memory copies are stale by reading a handful of rows.
 */
export const changeVersions = sqliteTable('change_versions', {
  entity: text('entity').primaryKey(),
  version: integer('version').notNull(),
});

// --- domain: usage ----------------------------------------------------------------------
// Aggregates written by metering batches. No foreign keys: history outlives deleted keys.

const usageCounters = {
  requests: integer('requests').notNull().default(0),
  bytesIn: integer('bytes_in').notNull().default(0),
  bytesOut: integer('bytes_out').notNull().default(0),
  errors: integer('errors').notNull().default(0),
};

export const usageMinutely = sqliteTable(
  'usage_minutely',
  {
    keyId: text('key_id').notNull(),
    userId: text('user_id').notNull(),
    /** Start of the UTC minute. */
    minute: integer('minute', { mode: 'timestamp_ms' }).notNull(),
    ...usageCounters,
  },
  (t) => [primaryKey({ name: 'usage_minutely_pk', columns: [t.keyId, t.minute] }), index('usage_minutely_user_idx').on(t.userId, t.minute)],
);

export const usageMonthly = sqliteTable(
  'usage_monthly',
  {
    keyId: text('key_id').notNull(),
    userId: text('user_id').notNull(),
    /** UTC month, `YYYY-MM`. */
    month: text('month').notNull(),
    ...usageCounters,
  },
  (t) => [primaryKey({ name: 'usage_monthly_pk', columns: [t.keyId, t.month] }), index('usage_monthly_user_idx').on(t.userId, t.month)],
);

/**
 * All keys' traffic per route and minute (the admin overview's top routes and error rate).
 * `route_id` '' holds requests refused before a route matched (unknown path, bad key...).
 */
export const usageRouteMinutely = sqliteTable(
  'usage_route_minutely',
  {
    routeId: text('route_id').notNull(),
    /** Start of the UTC minute. */
    minute: integer('minute', { mode: 'timestamp_ms' }).notNull(),
    ...usageCounters,
  },
  (t) => [
    primaryKey({ name: 'usage_route_minutely_pk', columns: [t.routeId, t.minute] }),
    index('usage_route_minutely_minute_idx').on(t.minute),
  ],
);

/**
 * The gateway's added latency per route and minute as a histogram: `count` requests fell in bucket
 * `bucket` (an index into OVERHEAD_BUCKETS_MS of metering/types.ts). One row per non-empty bucket,
 * so batches add to it with a plain upsert on every dialect.
 */
export const usageOverheadMinutely = sqliteTable(
  'usage_overhead_minutely',
  {
    routeId: text('route_id').notNull(),
    minute: integer('minute', { mode: 'timestamp_ms' }).notNull(),
    bucket: integer('bucket').notNull(),
    count: integer('count').notNull().default(0),
  },
  (t) => [
    primaryKey({ name: 'usage_overhead_minutely_pk', columns: [t.routeId, t.minute, t.bucket] }),
    index('usage_overhead_minutely_minute_idx').on(t.minute),
  ],
);

/**
 * Batch ids already added into the aggregates: a batch replayed after a crash is skipped, not counted
 * twice. Indexed by `applied_at` for housekeeping, which prunes old ids in chunks (each chunk would
 * otherwise scan the table).
 */
export const usageBatches = sqliteTable(
  'usage_batches',
  {
    id: text('id').primaryKey(),
    entries: integer('entries').notNull(),
    appliedAt: integer('applied_at', { mode: 'timestamp_ms' }).notNull(),
  },
  (t) => [index('usage_batches_applied_at_idx').on(t.appliedAt)],
);

// --- domain: billing and outbound webhooks ----------------------------------------------

export const subscriptions = sqliteTable(
  'subscriptions',
  {
    id: text('id').primaryKey(),
    userId: text('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    planId: text('plan_id')
      .notNull()
      .references(() => plans.id, { onDelete: 'restrict' }),
    /** Payment provider name (stripe, paddle, dummy...). */
    provider: text('provider').notNull(),
    externalCustomerId: text('external_customer_id'),
    externalSubscriptionId: text('external_subscription_id'),
    status: text('status').notNull(),
    currentPeriodEnd: integer('current_period_end', { mode: 'timestamp_ms' }),
    cancelAtPeriodEnd: integer('cancel_at_period_end', { mode: 'boolean' }).notNull().default(false),
    /** Time of the provider event this row reflects: an older event never overwrites a newer state. */
    lastEventAt: integer('last_event_at', { mode: 'timestamp_ms' }),
    /** The provider's sequence of that event (where it has one): the tie-break between events of the same instant. */
    lastEventSeq: text('last_event_seq'),
    /** When the subscription became past_due (null otherwise): the grace period runs from here. */
    pastDueSince: integer('past_due_since', { mode: 'timestamp_ms' }),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
    updatedAt: integer('updated_at', { mode: 'timestamp_ms' }).notNull(),
  },
  (t) => [index('subscriptions_user_idx').on(t.userId), uniqueIndex('subscriptions_external_uq').on(t.provider, t.externalSubscriptionId)],
);

export const webhookEndpoints = sqliteTable('webhook_endpoints', {
  id: text('id').primaryKey(),
  url: text('url').notNull(),
  description: text('description').notNull().default(''),
  /** Signing secret, encrypted like secret settings (context `webhook_endpoint:<id>`). */
  secret: text('secret').notNull(),
  /** Event types or patterns (`subscription.*`, `*`). */
  events: text('events', { mode: 'json' }).$type<string[]>().notNull(),
  enabled: integer('enabled', { mode: 'boolean' }).notNull().default(true),
  createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
  updatedAt: integer('updated_at', { mode: 'timestamp_ms' }).notNull(),
});

export const webhookDeliveries = sqliteTable(
  'webhook_deliveries',
  {
    id: text('id').primaryKey(),
    endpointId: text('endpoint_id')
      .notNull()
      .references(() => webhookEndpoints.id, { onDelete: 'cascade' }),
    eventId: text('event_id').notNull(),
    eventType: text('event_type').notNull(),
    payload: text('payload'),
    status: text('status', { enum: ['pending', 'succeeded', 'failed'] })
      .notNull()
      .default('pending'),
    attempts: integer('attempts').notNull().default(0),
    responseStatus: integer('response_status'),
    lastError: text('last_error'),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
    updatedAt: integer('updated_at', { mode: 'timestamp_ms' }).notNull(),
    lastAttemptAt: integer('last_attempt_at', { mode: 'timestamp_ms' }),
    deliveredAt: integer('delivered_at', { mode: 'timestamp_ms' }),
  },
  (t) => [
    // One delivery per event per endpoint: a re-queued event finds its row instead of making another.
    uniqueIndex('webhook_deliveries_event_uq').on(t.endpointId, t.eventId),
    index('webhook_deliveries_endpoint_idx').on(t.endpointId, t.createdAt),
  ],
);

// --- customer portal: sessions and emailed tokens -----------------------------------------
// Only SHA-256 hashes of the secrets are kept: a copy of the database logs nobody in.

/** Logged-in portal sessions (the `apigate_session` cookie). Absolute expiry; deleted on log out and on password reset. */
export const portalSessions = sqliteTable(
  'portal_sessions',
  {
    id: text('id').primaryKey(),
    userId: text('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    /** Hex SHA-256 of the cookie's token. */
    hash: text('hash').notNull(),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
    expiresAt: integer('expires_at', { mode: 'timestamp_ms' }).notNull(),
  },
  (t) => [
    uniqueIndex('portal_sessions_hash_uq').on(t.hash),
    index('portal_sessions_user_idx').on(t.userId),
    index('portal_sessions_expires_idx').on(t.expiresAt),
  ],
);

/** Single-use tokens sent by email: verify the address, reset the password. */
export const portalTokens = sqliteTable(
  'portal_tokens',
  {
    id: text('id').primaryKey(),
    userId: text('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    purpose: text('purpose', { enum: ['verify_email', 'reset_password'] }).notNull(),
    /** Hex SHA-256 of the emailed token. */
    hash: text('hash').notNull(),
    /** The address the token was sent to: it proves that address only. */
    email: text('email').notNull(),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
    expiresAt: integer('expires_at', { mode: 'timestamp_ms' }).notNull(),
    /** Set once, when the token is used (or made void by a newer one or a reset). */
    usedAt: integer('used_at', { mode: 'timestamp_ms' }),
  },
  (t) => [
    uniqueIndex('portal_tokens_hash_uq').on(t.hash),
    index('portal_tokens_user_idx').on(t.userId, t.purpose),
    index('portal_tokens_expires_idx').on(t.expiresAt),
  ],
);

// --- billing: metered usage reported to the payment provider --------------------------------

/**
 * Each overage report sent (or being sent) to the payment provider. The id is the idempotency
 * key `<subscription id>:<period>:<cumulative overage>`, so the same report is never made twice:
 * a `pending` row left by a crash is retried with the same key, which the provider dedupes.
 */
export const usageReports = sqliteTable(
  'usage_reports',
  {
    id: text('id').primaryKey(),
    subscriptionId: text('subscription_id')
      .notNull()
      .references(() => subscriptions.id, { onDelete: 'cascade' }),
    provider: text('provider').notNull(),
    /** The quota period (UTC month, YYYY-MM) the overage belongs to. */
    period: text('period').notNull(),
    /** Overage requests of the period reported so far, this report included. */
    cumulative: integer('cumulative').notNull(),
    /** Requests this report adds. */
    quantity: integer('quantity').notNull(),
    status: text('status', { enum: ['pending', 'reported', 'failed'] })
      .notNull()
      .default('pending'),
    error: text('error'),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
    reportedAt: integer('reported_at', { mode: 'timestamp_ms' }),
  },
  (t) => [index('usage_reports_subscription_idx').on(t.subscriptionId, t.period)],
);

// --- billing: inbound payment webhooks ------------------------------------------------------

/**
 * The payment webhook inbox: every event the route verified, unique per (provider, event id), with
 * the verified raw body (and the headers normalisation needs), written before the 200. The worker
 * applies rows from here, so a lost queue job (memory queue, crash) is re-queued from the row at start.
 * A provider's retry of an event already recorded is acknowledged and not processed again.
 */
export const paymentEvents = sqliteTable(
  'payment_events',
  {
    provider: text('provider').notNull(),
    eventId: text('event_id').notNull(),
    type: text('type').notNull(),
    /** The provider's event time: processing order. */
    occurredAt: integer('occurred_at', { mode: 'timestamp_ms' }).notNull(),
    /** queued -> applied | skipped (older than the stored state, or nothing to apply) | failed. */
    status: text('status', { enum: ['queued', 'applied', 'skipped', 'failed'] })
      .notNull()
      .default('queued'),
    receivedAt: integer('received_at', { mode: 'timestamp_ms' }).notNull(),
    /** The verified body, byte for byte (null on rows from before the inbox). */
    rawBody: blob('raw_body', { mode: 'buffer' }),
    /** JSON object of the lower-cased headers normalisation needs (the signature headers). */
    headers: text('headers'),
    /** Processing tries so far. */
    attempts: integer('attempts').notNull().default(0),
    /** The last failure, masked (no secret, no body). */
    lastError: text('last_error'),
    /** When a retryable failure is due again (null: not waiting). */
    nextAttemptAt: integer('next_attempt_at', { mode: 'timestamp_ms' }),
    appliedAt: integer('applied_at', { mode: 'timestamp_ms' }),
  },
  (t) => [
    primaryKey({ name: 'payment_events_pk', columns: [t.provider, t.eventId] }),
    index('payment_events_received_idx').on(t.receivedAt),
    index('payment_events_status_idx').on(t.status, t.nextAttemptAt),
  ],
);

// --- TLS certificates -------------------------------------------------------------------

/**
 * Certificates obtained over ACME, one per set of names (`domains_key`: the names lowercased,
 * sorted and comma-joined). `key_pem` holds the `v1:` ciphertext of the private key (see
 * tls/certificates.ts), never the PEM; the certificate and chain are public and stored as is.
 */
export const certificates = sqliteTable(
  'certificates',
  {
    domainsKey: text('domains_key').primaryKey(),
    certPem: text('cert_pem').notNull(),
    chainPem: text('chain_pem').notNull(),
    keyPem: text('key_pem').notNull(),
    serial: text('serial').notNull(),
    issuer: text('issuer').notNull(),
    notBefore: integer('not_before', { mode: 'timestamp_ms' }).notNull(),
    notAfter: integer('not_after', { mode: 'timestamp_ms' }).notNull(),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
    updatedAt: integer('updated_at', { mode: 'timestamp_ms' }).notNull(),
  },
  (t) => [index('certificates_not_after_idx').on(t.notAfter)],
);
