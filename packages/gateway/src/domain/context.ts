import { type SQL, sql } from 'drizzle-orm';
import type { SecretKey } from '../store/crypto.js';
import type { StoreDb, Tx } from '../store/dialect.js';
import type { ChangeEntity, ChangeEvent, ChangeNotifier } from '../store/changes.js';

export type { Tx } from '../store/dialect.js';

/** What every repository shares. */
export interface DomainContext extends StoreDb {
  changes: ChangeNotifier;
  /** The settings encryption key (webhook secrets are encrypted with it). */
  secretKey: SecretKey;
  /** The clock; tests move it to check expiry. */
  now(): Date;
}

/** The transaction-scoped advisory lock domain writes take on PostgreSQL ('apigwr' as ASCII, 48 bits). */
const DOMAIN_WRITE_LOCK = '107135432619890';

type Touch = (entity: ChangeEntity, action: ChangeEvent['action'], id?: string) => Promise<void>;

/**
 * Runs `body` in a write transaction (SQLite: IMMEDIATE, the write lock is taken first, so a
 * check-then-insert cannot race another process), bumping the version of every entity type it
 * `touch`es (await it), and tells the change listeners once it has committed.
 */
export async function writeTx<T>(ctx: DomainContext, body: (tx: Tx, touch: Touch) => Promise<T>): Promise<T> {
  const pending: { entity: ChangeEntity; action: ChangeEvent['action']; id: string | undefined; version: number }[] = [];
  const bumped: ChangeEntity[] = [];
  try {
    const result = await ctx.tx(async (tx) => {
      // PostgreSQL: one domain write at a time across instances, like SQLite's IMMEDIATE, so the
      // checks a write makes first (email taken, prefix taken, the one default plan) hold until it commits.
      if (ctx.dialect === 'postgres')
        await (tx as unknown as { execute(q: SQL): Promise<unknown> }).execute(sql`SELECT pg_advisory_xact_lock(${DOMAIN_WRITE_LOCK})`);
      return body(tx, async (entity, action, id) => {
        const version = await ctx.changes.bump(tx, entity);
        bumped.push(entity);
        pending.push({ entity, action, id, version });
      });
    });
    for (const p of pending) ctx.changes.emitted(p.entity, p.action, p.id, p.version);
    return result;
  } finally {
    for (const e of bumped) ctx.changes.settled(e);
  }
}
