import type { SecretKey } from '../store/crypto.js';
import type { StoreDb, Tx } from '../store/dialect.js';
import type { ChangeEntity, ChangeEvent, ChangeNotifier } from './changes.js';

export type { Tx } from '../store/dialect.js';

/** What every repository shares. */
export interface DomainContext extends StoreDb {
  changes: ChangeNotifier;
  /** The settings encryption key (webhook secrets are encrypted with it). */
  secretKey: SecretKey;
  /** The clock; tests move it to check expiry. */
  now(): Date;
}

type Touch = (entity: ChangeEntity, action: ChangeEvent['action'], id?: string) => Promise<void>;

/**
 * Runs `body` in a write transaction (SQLite: IMMEDIATE, the write lock is taken first, so a
 * check-then-insert cannot race another process), bumping the version of every entity type it
 * `touch`es (await it), and tells the change listeners once it has committed.
 */
export async function writeTx<T>(ctx: DomainContext, body: (tx: Tx, touch: Touch) => Promise<T>): Promise<T> {
  const pending: { entity: ChangeEntity; action: ChangeEvent['action']; id: string | undefined; version: number }[] = [];
  const result = await ctx.tx((tx) =>
    body(tx, async (entity, action, id) => {
      pending.push({ entity, action, id, version: await ctx.changes.bump(tx, entity) });
    }),
  );
  for (const p of pending) ctx.changes.emitted(p.entity, p.action, p.id, p.version);
  return result;
}
