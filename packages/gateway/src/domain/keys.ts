import { z } from '@apigate/kernel';
import { and, count, eq, gt, inArray, isNull, or } from 'drizzle-orm';
import type { Tables } from '../store/dialect.js';
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

const publicColumns = ({ apiKeys }: Tables) => ({
  id: apiKeys.id,
  userId: apiKeys.userId,
  name: apiKeys.name,
  prefix: apiKeys.prefix,
  lastUsedAt: apiKeys.lastUsedAt,
  expiresAt: apiKeys.expiresAt,
  revokedAt: apiKeys.revokedAt,
  createdAt: apiKeys.createdAt,
});

const authColumns = ({ apiKeys, users }: Tables) => ({
  keyId: apiKeys.id,
  hash: apiKeys.hash,
  userId: apiKeys.userId,
  planId: users.planId,
  userStatus: users.status,
  expiresAt: apiKeys.expiresAt,
  revokedAt: apiKeys.revokedAt,
});

/** Not revoked and not expired at `now`. */
const stillWorks = ({ apiKeys }: Tables, now: Date) =>
  and(isNull(apiKeys.revokedAt), or(isNull(apiKeys.expiresAt), gt(apiKeys.expiresAt, now)));

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
    const { apiKeys, users } = this.ctx.t;
    return writeTx(this.ctx, async (tx, touch) => {
      if ((await tx.select({ id: users.id }).from(users).where(eq(users.id, v.userId))).length === 0) {
        throw new DomainError('invalid', 'USER_NOT_FOUND', `api key: user_id: no user with id ${v.userId}`, 'user_id');
      }
      const id = newId('key');
      const [row] = await tx
        .insert(apiKeys)
        .values({
          id,
          userId: v.userId,
          name: v.name,
          prefix: secret.prefix,
          hash: secret.hash,
          expiresAt: v.expiresAt,
          createdAt: this.ctx.now(),
        })
        .returning(publicColumns(this.ctx.t));
      await touch('keys', 'created', id);
      return { apiKey: this.withStatus(row!), key: secret.secret };
    });
  }

  async find(id: string): Promise<ApiKey | undefined> {
    const { apiKeys } = this.ctx.t;
    const [row] = await this.ctx.db.select(publicColumns(this.ctx.t)).from(apiKeys).where(eq(apiKeys.id, id));
    return row && this.withStatus(row);
  }

  async get(id: string): Promise<ApiKey> {
    const key = await this.find(id);
    if (!key) throw notFound('api key', id);
    return key;
  }

  /** Oldest first, `limit` at a time. */
  async list(q: KeyQuery = {}): Promise<Page<ApiKey>> {
    const { apiKeys } = this.ctx.t;
    const filters = [
      q.userId !== undefined ? eq(apiKeys.userId, q.userId) : undefined,
      q.includeInactive === false ? stillWorks(this.ctx.t, this.ctx.now()) : undefined,
    ];
    const page = await listPage(q, 'api key list', apiKeys, filters, (where, order, n) =>
      this.ctx.db
        .select(publicColumns(this.ctx.t))
        .from(apiKeys)
        .where(where)
        .orderBy(...order)
        .limit(n),
    );
    return { ...page, items: page.items.map((r) => this.withStatus(r)) };
  }

  /** Stops the key working at once (the row stays for the record). Revoking twice keeps the first time. */
  async revoke(id: string): Promise<ApiKey> {
    const { apiKeys } = this.ctx.t;
    return writeTx(this.ctx, async (tx, touch) => {
      const [row] = await tx.select(publicColumns(this.ctx.t)).from(apiKeys).where(eq(apiKeys.id, id));
      if (!row) throw notFound('api key', id);
      if (row.revokedAt) return this.withStatus(row);
      const revokedAt = this.ctx.now();
      await tx.update(apiKeys).set({ revokedAt }).where(eq(apiKeys.id, id));
      await touch('keys', 'revoked', id);
      return this.withStatus({ ...row, revokedAt });
    });
  }

  /** Hot-path lookup by `hashApiKey(key)`: the key with its user's plan and status, revoked or not. */
  async findByHash(hash: string): Promise<KeyAuthRecord | undefined> {
    const { apiKeys, users } = this.ctx.t;
    return (
      await this.ctx.db
        .select(authColumns(this.ctx.t))
        .from(apiKeys)
        .innerJoin(users, eq(users.id, apiKeys.userId))
        .where(eq(apiKeys.hash, hash))
    )[0];
  }

  /** Every key that is not revoked, for a cache that holds them all (reload when `keys` or `users` change). */
  async listForAuth(): Promise<KeyAuthRecord[]> {
    const { apiKeys, users } = this.ctx.t;
    return this.ctx.db
      .select(authColumns(this.ctx.t))
      .from(apiKeys)
      .innerJoin(users, eq(users.id, apiKeys.userId))
      .where(isNull(apiKeys.revokedAt));
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
    const { apiKeys } = this.ctx.t;
    const rows = await this.ctx.db
      .select({ userId: apiKeys.userId, n: count() })
      .from(apiKeys)
      .where(and(inArray(apiKeys.userId, [...userIds]), stillWorks(this.ctx.t, this.ctx.now())))
      .groupBy(apiKeys.userId);
    return new Map(rows.map((r) => [r.userId, r.n]));
  }
}
