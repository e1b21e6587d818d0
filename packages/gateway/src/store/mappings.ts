import { ApigateError, InvalidInputError } from '@apigate/kernel';
import { and, asc, eq, type SQL, sql } from 'drizzle-orm';
import type { StoreDb } from './dialect.js';

/** Our id of an entity and a provider's id for the same entity (a Stripe customer, say). */
export interface ProviderMapping {
  provider: string;
  entityType: string;
  localId: string;
  externalId: string;
  createdAt: Date;
}

export type NewProviderMapping = Omit<ProviderMapping, 'createdAt'>;

export interface MappingQuery {
  provider?: string;
  entityType?: string;
  /** Page size; default 100, at most 1000. */
  limit?: number;
  /** The `cursor` of the previous page. */
  cursor?: string;
}

export interface MappingStore {
  /** Idempotent for the same pair; a local or external id already paired with another is a MAPPING_CONFLICT. */
  put(m: NewProviderMapping): Promise<ProviderMapping>;
  findExternal(provider: string, entityType: string, localId: string): Promise<ProviderMapping | undefined>;
  findLocal(provider: string, entityType: string, externalId: string): Promise<ProviderMapping | undefined>;
  /** Ordered by provider, entity type, local id; `cursor` is set when another page follows. */
  list(q: MappingQuery): Promise<{ items: ProviderMapping[]; cursor?: string }>;
  delete(provider: string, entityType: string, localId: string): Promise<boolean>;
}

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

function requireText(name: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') throw new InvalidInputError(`provider mapping: ${name} must be a non-empty string`);
  return value;
}

// Cursors are opaque to callers: the last row's key, so pages stay stable while rows are added.
function encodeCursor(m: ProviderMapping): string {
  return Buffer.from(JSON.stringify([m.provider, m.entityType, m.localId])).toString('base64url');
}

function decodeCursor(cursor: string): [string, string, string] {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'string')) return v as [string, string, string];
  } catch {
    // fall through to the one-line error
  }
  throw new InvalidInputError('provider mapping list: cursor is not one this store returned');
}

/** Provider mappings in the database (SQLite or PostgreSQL). */
export class DbMappingStore implements MappingStore {
  constructor(private readonly s: StoreDb) {}

  private get t() {
    return this.s.t.providerMappings;
  }

  async put(m: NewProviderMapping): Promise<ProviderMapping> {
    const provider = requireText('provider', m.provider);
    const entityType = requireText('entityType', m.entityType);
    const localId = requireText('localId', m.localId);
    const externalId = requireText('externalId', m.externalId);
    const where = `${provider} ${entityType}`;
    // SQLite: IMMEDIATE takes the write lock first, so a concurrent CLI cannot slip in between the reads and the insert;
    // PostgreSQL: the unique indexes make a concurrent instance's insert of the same mapping fail instead.
    const t = this.t;
    return this.s.tx(async (tx) => {
      const [byLocal] = await tx
        .select()
        .from(t)
        .where(and(eq(t.provider, provider), eq(t.entityType, entityType), eq(t.localId, localId)));
      if (byLocal) {
        if (byLocal.externalId === externalId) return byLocal;
        throw new ApigateError(
          'MAPPING_CONFLICT',
          `${where} mapping: local id ${localId} is already mapped to external id ${byLocal.externalId}, not ${externalId}; delete it first to remap`,
        );
      }
      const [byExternal] = await tx
        .select()
        .from(t)
        .where(and(eq(t.provider, provider), eq(t.entityType, entityType), eq(t.externalId, externalId)));
      if (byExternal) {
        throw new ApigateError(
          'MAPPING_CONFLICT',
          `${where} mapping: external id ${externalId} is already mapped to local id ${byExternal.localId}, not ${localId}`,
        );
      }
      const [row] = await tx.insert(t).values({ provider, entityType, localId, externalId, createdAt: new Date() }).returning();
      return row!;
    });
  }

  async findExternal(provider: string, entityType: string, localId: string): Promise<ProviderMapping | undefined> {
    const t = this.t;
    return (
      await this.s.db
        .select()
        .from(t)
        .where(and(eq(t.provider, provider), eq(t.entityType, entityType), eq(t.localId, localId)))
    )[0];
  }

  async findLocal(provider: string, entityType: string, externalId: string): Promise<ProviderMapping | undefined> {
    const t = this.t;
    return (
      await this.s.db
        .select()
        .from(t)
        .where(and(eq(t.provider, provider), eq(t.entityType, entityType), eq(t.externalId, externalId)))
    )[0];
  }

  async list(q: MappingQuery = {}): Promise<{ items: ProviderMapping[]; cursor?: string }> {
    const limit = q.limit ?? DEFAULT_PAGE_SIZE;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
      throw new InvalidInputError(`provider mapping list: limit must be a whole number from 1 to ${MAX_PAGE_SIZE}`);
    }
    const t = this.t;
    const conds: SQL[] = [];
    if (q.provider !== undefined) conds.push(eq(t.provider, q.provider));
    if (q.entityType !== undefined) conds.push(eq(t.entityType, q.entityType));
    if (q.cursor !== undefined) {
      const [p, e, l] = decodeCursor(q.cursor);
      // Row-value comparison walks the primary key's order (SQLite >= 3.15 and PostgreSQL both have it).
      conds.push(sql`(${t.provider}, ${t.entityType}, ${t.localId}) > (${p}, ${e}, ${l})`);
    }
    const rows = await this.s.db
      .select()
      .from(t)
      .where(conds.length ? and(...conds) : undefined)
      .orderBy(asc(t.provider), asc(t.entityType), asc(t.localId))
      .limit(limit + 1);
    const items = rows.slice(0, limit);
    return rows.length > limit ? { items, cursor: encodeCursor(items[items.length - 1]!) } : { items };
  }

  async delete(provider: string, entityType: string, localId: string): Promise<boolean> {
    const t = this.t;
    const rows = await this.s.db
      .delete(t)
      .where(and(eq(t.provider, provider), eq(t.entityType, entityType), eq(t.localId, localId)))
      .returning({ p: t.provider });
    return rows.length > 0;
  }
}
