import { z } from '@apigate/kernel';
import { and, eq, inArray, isNull, or, sql } from 'drizzle-orm';
import { apiKeys, users } from '../store/schema.js';
import { type DomainContext, writeTx } from './context.js';
import { DomainError, notFound } from './errors.js';
import { API_KEY_PREFIX, newId, newSecret, sha256Hex } from './ids.js';
import { listPage, type Page, type PageQuery } from './paging.js';
import type { UserStatus } from './users.js';
import { parseInput } from './validate.js';

export type ApiKeyStatus = 'active' | 'revoked' | 'expired';

/** An API key as shown to people: never the key itself, never its hash. */
export interface ApiKey {
  id: string;
  userId: string;
  name: string;
  /** `ak_` and the first 8 random characters: enough to tell keys apart. */
  prefix: string;
  /** Derived from revokedAt and expiresAt at read time. */
  status: ApiKeyStatus;
  lastUsedAt: Date | null;
  expiresAt: Date | null;
  revokedAt: Date | null;
  createdAt: Date;
}

/** What the hot path needs to authenticate a request, found by the key's hash. */
export interface KeyAuthRecord {
  keyId: string;
  /** Hex SHA-256 of the full key (`hashApiKey`). */
  hash: string;
  userId: string;
  planId: string;
  userStatus: UserStatus;
  expiresAt: Date | null;
  revokedAt: Date | null;
}

export type KeyCheck =
  | { ok: true; record: KeyAuthRecord }
  | { ok: false; reason: 'unknown' | 'revoked' | 'expired' | 'suspended'; record?: KeyAuthRecord };

const createSchema = z
  .object({
    userId: z.string({ error: 'expected a user id' }).min(1, { error: 'expected a user id' }),
    name: z.string({ error: 'expected a name' }).trim().max(100, { error: 'at most 100 characters' }).default(''),
    expiresAt: z.coerce.date({ error: 'expected a date and time (ISO 8601)' }).nullable().default(null),
  })
  .strict();
export type CreateKeyInput = z.input<typeof createSchema>;

export interface KeyQuery extends PageQuery {
  userId?: string;
  /** Include revoked and expired keys; default true. */
  includeInactive?: boolean;
}

/** The lookup hash of a presented key: hex SHA-256. */
export const hashApiKey = (key: string) => sha256Hex(key);

/** Cheap shape check before any lookup: `ak_` and base62 characters. */
export const looksLikeApiKey = (key: string) => key.startsWith(API_KEY_PREFIX) && /^ak_[0-9A-Za-z]{32,128}$/.test(key);

const publicColumns = {
  id: apiKeys.id,
  userId: apiKeys.userId,
  name: apiKeys.name,
  prefix: apiKeys.prefix,
  lastUsedAt: apiKeys.lastUsedAt,
  expiresAt: apiKeys.expiresAt,
  revokedAt: apiKeys.revokedAt,
  createdAt: apiKeys.createdAt,
};

const authColumns = {
  keyId: apiKeys.id,
  hash: apiKeys.hash,
  userId: apiKeys.userId,
  planId: users.planId,
  userStatus: users.status,
  expiresAt: apiKeys.expiresAt,
  revokedAt: apiKeys.revokedAt,
};

/** Not revoked and not expired at `now`. */
const stillWorks = (now: Date) => and(isNull(apiKeys.revokedAt), or(isNull(apiKeys.expiresAt), sql`${apiKeys.expiresAt} > ${now.getTime()}`));

export class ApiKeyRepository {
  constructor(private readonly ctx: DomainContext) {}

  private withStatus(row: Omit<ApiKey, 'status'>): ApiKey {
    const status: ApiKeyStatus = row.revokedAt ? 'revoked' : row.expiresAt && row.expiresAt <= this.ctx.now() ? 'expired' : 'active';
    return { ...row, status };
  }

  /** Makes a key; `key` is the full secret, returned here only: it is stored as a hash. */
  async create(input: CreateKeyInput): Promise<{ apiKey: ApiKey; key: string }> {
    const v = parseInput(createSchema, input, 'api key');
    if (v.expiresAt && v.expiresAt <= this.ctx.now()) {
      throw new DomainError('invalid', 'INVALID_INPUT', 'api key: expires_at: must be in the future', 'expires_at');
    }
    const secret = newSecret(API_KEY_PREFIX);
    return writeTx(this.ctx, (tx, touch) => {
      if (!tx.select({ id: users.id }).from(users).where(eq(users.id, v.userId)).get()) {
        throw new DomainError('invalid', 'USER_NOT_FOUND', `api key: user_id: no user with id ${v.userId}`, 'user_id');
      }
      const id = newId('key');
      tx.insert(apiKeys)
        .values({ id, userId: v.userId, name: v.name, prefix: secret.prefix, hash: secret.hash, expiresAt: v.expiresAt, createdAt: this.ctx.now() })
        .run();
      touch('keys', 'created', id);
      return { apiKey: this.withStatus(tx.select(publicColumns).from(apiKeys).where(eq(apiKeys.id, id)).get()!), key: secret.secret };
    });
  }

  async find(id: string): Promise<ApiKey | undefined> {
    const row = this.ctx.db.select(publicColumns).from(apiKeys).where(eq(apiKeys.id, id)).get();
    return row && this.withStatus(row);
  }

  async get(id: string): Promise<ApiKey> {
    const key = await this.find(id);
    if (!key) throw notFound('api key', id);
    return key;
  }

  /** Oldest first, `limit` at a time. */
  async list(q: KeyQuery = {}): Promise<Page<ApiKey>> {
    const filters = [
      q.userId !== undefined ? eq(apiKeys.userId, q.userId) : undefined,
      q.includeInactive === false ? stillWorks(this.ctx.now()) : undefined,
    ];
    const page = listPage(q, 'api key list', apiKeys, filters, (where, order, n) =>
      this.ctx.db.select(publicColumns).from(apiKeys).where(where).orderBy(...order).limit(n).all(),
    );
    return { ...page, items: page.items.map((r) => this.withStatus(r)) };
  }

  /** Stops the key working at once (the row stays for the record). Revoking twice keeps the first time. */
  async revoke(id: string): Promise<ApiKey> {
    return writeTx(this.ctx, (tx, touch) => {
      const row = tx.select(publicColumns).from(apiKeys).where(eq(apiKeys.id, id)).get();
      if (!row) throw notFound('api key', id);
      if (row.revokedAt) return this.withStatus(row);
      const revokedAt = this.ctx.now();
      tx.update(apiKeys).set({ revokedAt }).where(eq(apiKeys.id, id)).run();
      touch('keys', 'revoked', id);
      return this.withStatus({ ...row, revokedAt });
    });
  }

  /** Hot-path lookup by `hashApiKey(key)`: the key with its user's plan and status, revoked or not. */
  async findByHash(hash: string): Promise<KeyAuthRecord | undefined> {
    return this.ctx.db.select(authColumns).from(apiKeys).innerJoin(users, eq(users.id, apiKeys.userId)).where(eq(apiKeys.hash, hash)).get();
  }

  /** Every key that is not revoked, for a cache that holds them all (reload when `keys` or `users` change). */
  async listForAuth(): Promise<KeyAuthRecord[]> {
    return this.ctx.db.select(authColumns).from(apiKeys).innerJoin(users, eq(users.id, apiKeys.userId)).where(isNull(apiKeys.revokedAt)).all();
  }

  /** Checks a presented key the way the proxy does: unknown, revoked, expired, suspended user, or ok. */
  async check(key: string): Promise<KeyCheck> {
    if (!looksLikeApiKey(key)) return { ok: false, reason: 'unknown' };
    const record = await this.findByHash(hashApiKey(key));
    if (!record) return { ok: false, reason: 'unknown' };
    if (record.revokedAt) return { ok: false, reason: 'revoked', record };
    if (record.expiresAt && record.expiresAt <= this.ctx.now()) return { ok: false, reason: 'expired', record };
    if (record.userStatus !== 'active') return { ok: false, reason: 'suspended', record };
    return { ok: true, record };
  }

  /** How many keys each of these users has that still work. */
  async countActive(userIds: readonly string[]): Promise<Map<string, number>> {
    if (userIds.length === 0) return new Map();
    const rows = this.ctx.db
      .select({ userId: apiKeys.userId, n: sql<number>`count(*)` })
      .from(apiKeys)
      .where(and(inArray(apiKeys.userId, [...userIds]), stillWorks(this.ctx.now())))
      .groupBy(apiKeys.userId)
      .all();
    return new Map(rows.map((r) => [r.userId, r.n]));
  }
}
