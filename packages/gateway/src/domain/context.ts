import type { SecretKey } from '../store/crypto.js';
import type { AppDatabase } from '../store/db.js';
import type { ChangeEntity, ChangeEvent, ChangeNotifier } from './changes.js';

/** What every repository shares. */
export interface DomainContext {
  db: AppDatabase;
  changes: ChangeNotifier;
  /** The settings encryption key (webhook secrets are encrypted with it). */
  secretKey: SecretKey;
  /** The clock; tests move it to check expiry. */
  now(): Date;
}

export type Tx = Parameters<Parameters<AppDatabase['transaction']>[0]>[0];
type Touch = (entity: ChangeEntity, action: ChangeEvent['action'], id?: string) => void;

/**
 * Runs `body` in an IMMEDIATE transaction (the write lock is taken first, so a check-then-insert
 * cannot race another process), bumping the version of every entity type it `touch`es, and
 * tells the change listeners once it has committed.
 */
export function writeTx<T>(ctx: DomainContext, body: (tx: Tx, touch: Touch) => T): T {
  const pending: { entity: ChangeEntity; action: ChangeEvent['action']; id: string | undefined; version: number }[] = [];
  const result = ctx.db.transaction(
    (tx) =>
      body(tx, (entity, action, id) => {
        pending.push({ entity, action, id, version: ctx.changes.bump(tx, entity) });
      }),
    { behavior: 'immediate' },
  );
  for (const p of pending) ctx.changes.emitted(p.entity, p.action, p.id, p.version);
  return result;
}
