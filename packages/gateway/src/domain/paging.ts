import { type Column, and, asc, eq, gt, or, type SQL } from 'drizzle-orm';
import { DomainError } from './errors.js';

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;

export interface PageQuery {
  /** Page size; default 100, at most 1000. */
  limit?: number;
  /** The `cursor` of the previous page. */
  cursor?: string;
}

export interface Page<T> {
  items: T[];
  /** Set when another page follows. */
  cursor?: string;
}

export function pageLimit(limit: number | undefined, what: string): number {
  const n = limit ?? DEFAULT_LIMIT;
  if (!Number.isInteger(n) || n < 1 || n > MAX_LIMIT) {
    throw new DomainError('invalid', 'INVALID_INPUT', `${what}: limit must be a whole number from 1 to ${MAX_LIMIT}`, 'limit');
  }
  return n;
}

/** Pages walk (created_at, id) upwards: stable while rows are added. The cursor is opaque to callers. */
export function afterCursor(cursor: string, createdAt: Column, id: Column, what: string): SQL {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    v = undefined;
  }
  if (!Array.isArray(v) || v.length !== 2 || typeof v[0] !== 'number' || typeof v[1] !== 'string') {
    throw new DomainError('invalid', 'INVALID_INPUT', `${what}: cursor is not one this API returned`, 'cursor');
  }
  // Spelled out rather than a row value, so the time is bound through the column (ms on SQLite, timestamptz on PostgreSQL).
  const at = new Date(v[0]);
  return or(gt(createdAt, at), and(eq(createdAt, at), gt(id, v[1])))!;
}

/** Turns `limit + 1` fetched rows into a page. */
export function toPage<T extends { id: string; createdAt: Date }>(rows: T[], limit: number): Page<T> {
  const items = rows.slice(0, limit);
  if (rows.length <= limit) return { items };
  const last = items[items.length - 1]!;
  return { items, cursor: Buffer.from(JSON.stringify([last.createdAt.getTime(), last.id])).toString('base64url') };
}

/**
 * One page of a table walked by (created_at, id): checks `limit` and `cursor`, adds the cursor
 * condition to `filters`, and lets `fetch` run the query it is given the parts of.
 */
export function listPage<T extends { id: string; createdAt: Date }>(
  q: PageQuery,
  what: string,
  t: { createdAt: Column; id: Column },
  filters: (SQL | undefined)[],
  fetch: (where: SQL | undefined, orderBy: SQL[], limit: number) => PromiseLike<T[]>,
): Promise<Page<T>> {
  const limit = pageLimit(q.limit, what);
  const where = and(...filters, q.cursor !== undefined ? afterCursor(q.cursor, t.createdAt, t.id, what) : undefined);
  return Promise.resolve(fetch(where, [asc(t.createdAt), asc(t.id)], limit + 1)).then((rows) => toPage(rows, limit));
}
