import { EventEmitter } from 'node:events';
import { sql } from 'drizzle-orm';
import type { StoreDb, Tx } from './dialect.js';
import { notifyChangeSql } from './pg-changes.js';

/**
 * Entity types whose in-memory copies must be dropped when they change: the hot path's caches, and
 * `settings` (a running serve reloads its settings snapshot and rebuilds the providers whose settings changed).
 */
export const CHANGE_ENTITIES = ['users', 'plans', 'keys', 'routes', 'webhook_endpoints', 'settings'] as const;
export type ChangeEntity = (typeof CHANGE_ENTITIES)[number];

export interface ChangeEvent {
  entity: ChangeEntity;
  /** What happened; `external` when another process (the CLI, another instance) wrote and `poll()` noticed. */
  action: 'created' | 'updated' | 'deleted' | 'revoked' | 'external';
  /** The entity's id; absent for `external` (reload every entity of that type). */
  id?: string;
  /** The entity type's version after the change. */
  version: number;
}

/**
 * Tells in-process caches when keys, users, plans or routes change.
 *
 * Every write bumps the entity type's row in `change_versions` inside its own transaction and,
 * after commit, emits a `change` event here. Writes by other processes sharing the database
 * are found by `poll()` (one small query): call it on a timer (`watch(ms)`) off the hot path.
 * On PostgreSQL the bump also sends a NOTIFY (delivered at commit), so instances listening
 * (store/pg-changes.ts) poll at once instead of on their next tick.
 * A cache compares `version(entity)` with the version it loaded, or listens to `change`.
 */
export class ChangeNotifier extends EventEmitter<{ change: [ChangeEvent] }> {
  readonly #versions = new Map<ChangeEntity, number>();
  /** Per entity: this process's writes that bumped it and have not settled (committed and emitted, or rolled back). */
  readonly #open = new Map<ChangeEntity, number>();

  constructor(private readonly s: StoreDb) {
    super();
    this.setMaxListeners(0); // every cache may listen
  }

  /** Reads the stored versions without emitting anything (the store calls it once when it opens). */
  async load(): Promise<void> {
    for (const row of await this.s.db.select().from(this.s.t.changeVersions)) this.#versions.set(row.entity as ChangeEntity, row.version);
  }

  /** The last version of `entity` this process knows of (0 before any write). */
  version(entity: ChangeEntity): number {
    return this.#versions.get(entity) ?? 0;
  }

  /** Inside a write transaction: bumps the stored version; returns the new one for `emitted`. */
  async bump(tx: Tx, entity: ChangeEntity): Promise<number> {
    const { changeVersions } = this.s.t;
    const [row] = await tx
      .insert(changeVersions)
      .values({ entity, version: 1 })
      .onConflictDoUpdate({ target: changeVersions.entity, set: { version: sql`${changeVersions.version} + 1` } })
      .returning();
    if (this.s.dialect === 'postgres') await (tx as unknown as { execute(q: unknown): Promise<unknown> }).execute(notifyChangeSql(entity));
    this.#open.set(entity, (this.#open.get(entity) ?? 0) + 1);
    return row!.version;
  }

  /**
   * After a transaction that called `bump` ended (committed, then `emitted`; or rolled back): once
   * per bump. Until then `poll()` leaves the entity for a later poll, so this process's own write,
   * whose NOTIFY can arrive before `emitted` records its version, is not reported as another's.
   */
  settled(entity: ChangeEntity): void {
    const n = (this.#open.get(entity) ?? 0) - 1;
    if (n > 0) this.#open.set(entity, n);
    else this.#open.delete(entity);
  }

  /** After commit: records the version and tells listeners. */
  emitted(entity: ChangeEntity, action: ChangeEvent['action'], id: string | undefined, version: number): void {
    if (version > this.version(entity)) this.#versions.set(entity, version);
    this.emit('change', { entity, action, ...(id !== undefined ? { id } : {}), version });
  }

  /** Reads the stored versions; emits an `external` change for each entity type another process wrote. Returns them. */
  async poll(): Promise<ChangeEntity[]> {
    const changed: ChangeEntity[] = [];
    for (const row of await this.s.db.select().from(this.s.t.changeVersions)) {
      const entity = row.entity as ChangeEntity;
      // Not recorded either: the next poll (or NOTIFY) looks again once this process's write settled.
      if (this.#open.has(entity)) continue;
      if (row.version > this.version(entity)) {
        this.#versions.set(entity, row.version);
        changed.push(entity);
      }
    }
    for (const entity of changed) this.emit('change', { entity, action: 'external', version: this.version(entity) });
    return changed;
  }

  /** Polls every `intervalMs` (timer unref'd, so it never keeps the process alive); returns a stop function. */
  watch(intervalMs = 1000, onError?: (err: unknown) => void): () => void {
    const timer = setInterval(() => {
      this.poll().catch((err: unknown) => onError?.(err)); // the database closed or busy: try again next tick
    }, intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }
}
