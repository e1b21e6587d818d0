import { describeError, type Logger, silentLogger } from '@apigate/kernel';
import { isNotNull } from 'drizzle-orm';
import type { ChangeEntity, ChangeEvent } from '../store/changes.js';
import { hashApiKey, type KeyAuthRecord, looksLikeApiKey } from '../domain/keys.js';
import type { Plan } from '../domain/plans.js';
import { type CompiledRoute, RouteTable } from '../proxy/routes.js';
import type { Store } from '../domain/open-store.js';

/** What each cached group is rebuilt from: a change to any of these entity types reloads it. */
const GROUPS = {
  keys: ['keys', 'users'],
  plans: ['plans'],
  routes: ['routes'],
} as const satisfies Record<string, readonly ChangeEntity[]>;
type Group = keyof typeof GROUPS;

/** Most presented keys whose hash the catalog remembers at once. */
const MAX_MEMOISED_HASHES = 100_000;

export interface GateCatalogOptions {
  /**
   * How often the database's change versions are read to notice writes by other processes (the
   * CLI, another instance): the staleness bound for those. Changes made through this process
   * (admin API, portal) are applied at once. Default 1000 ms.
   */
  pollIntervalMs?: number;
  logger?: Logger;
}

/**
 * The hot path's in-process copy of keys (by hash), plans and routes: requests read plain Maps,
 * never the database. Each group is reloaded whole when the domain reports a change to it
 * (several changes in one tick reload once); writes by other processes are found by polling the
 * domain's change versions (one small query per interval, off the hot path).
 */
export class GateCatalog {
  readonly #store: Store;
  readonly #logger: Logger;
  #keys = new Map<string, KeyAuthRecord>();
  /** Hashes of revoked keys, so a revoked key gets its own 401 message without a query. */
  #revoked = new Set<string>();
  /** Presented key -> its hash, for known keys (see hashOf). */
  #hashes = new Map<string, string>();
  #plans = new Map<string, Plan>();
  #routes = new RouteTable([]);
  readonly #dirty = new Set<Group>();
  #reloading: Promise<void> | null = null;
  #stopWatch: () => void = () => {};
  readonly #onChange = (e: ChangeEvent) => this.#invalidate(e.entity);
  #closed = false;

  private constructor(store: Store, logger: Logger) {
    this.#store = store;
    this.#logger = logger;
  }

  /** Loads everything, then follows changes until close(). */
  static async open(store: Store, opts: GateCatalogOptions = {}): Promise<GateCatalog> {
    const c = new GateCatalog(store, opts.logger ?? silentLogger());
    await c.#load(['keys', 'plans', 'routes']);
    store.domain.changes.on('change', c.#onChange);
    c.#stopWatch = store.domain.changes.watch(opts.pollIntervalMs ?? 1000, (err) =>
      c.#logger.warn({ err: describeError(err) }, 'cannot read change versions; cached keys, plans and routes may be stale'),
    );
    return c;
  }

  /**
   * `hashApiKey(key)` for a presented key, undefined when it does not look like one. Memoised for
   * keys the catalog knows (live or revoked): a SHA-256 less on every request of a known key.
   * Forgotten at each reload of the keys, and capped, so unknown keys cannot grow it.
   */
  hashOf(key: string): string | undefined {
    const known = this.#hashes.get(key);
    if (known !== undefined) return known;
    if (!looksLikeApiKey(key)) return undefined;
    const hash = hashApiKey(key);
    if ((this.#keys.has(hash) || this.#revoked.has(hash)) && this.#hashes.size < MAX_MEMOISED_HASHES) this.#hashes.set(key, hash);
    return hash;
  }

  /** The key with this `hashApiKey` hash, unless revoked. */
  key(hash: string): KeyAuthRecord | undefined {
    return this.#keys.get(hash);
  }

  isRevoked(hash: string): boolean {
    return this.#revoked.has(hash);
  }

  plan(id: string): Plan | undefined {
    return this.#plans.get(id);
  }

  route(target: string): CompiledRoute | undefined {
    return this.#routes.match(target);
  }

  get size(): { keys: number; plans: number; routes: number } {
    return { keys: this.#keys.size, plans: this.#plans.size, routes: this.#routes.size };
  }

  /** Resolves once pending reloads are done (tests and the CLI-driven e2e wait on it). */
  settled(): Promise<void> {
    return this.#reloading ?? Promise.resolve();
  }

  #invalidate(entity: ChangeEntity): void {
    this.#invalidateGroups((Object.keys(GROUPS) as Group[]).filter((g) => (GROUPS[g] as readonly ChangeEntity[]).includes(entity)));
  }

  #invalidateGroups(groups: readonly Group[]): void {
    if (this.#closed || groups.length === 0) return;
    for (const g of groups) this.#dirty.add(g);
    // One reload for a burst of changes; the next burst waits for it and reloads again.
    this.#reloading ??= new Promise<void>((resolve) => queueMicrotask(resolve)).then(() => this.#drain());
  }

  async #drain(): Promise<void> {
    try {
      while (this.#dirty.size > 0 && !this.#closed) {
        const groups = [...this.#dirty];
        this.#dirty.clear();
        await this.#load(groups);
      }
    } finally {
      this.#reloading = null;
    }
  }

  async #load(groups: readonly Group[]): Promise<void> {
    const d = this.#store.domain;
    try {
      if (groups.includes('keys')) {
        const rows = await d.keys.listForAuth();
        const { apiKeys } = this.#store.t;
        const revoked = await this.#store.db.select({ hash: apiKeys.hash }).from(apiKeys).where(isNotNull(apiKeys.revokedAt));
        this.#keys = new Map(rows.map((r) => [r.hash, r]));
        this.#revoked = new Set(revoked.map((r) => r.hash));
        this.#hashes = new Map();
      }
      if (groups.includes('plans')) this.#plans = new Map((await d.plans.list()).map((p) => [p.id, p]));
      if (groups.includes('routes')) {
        const routes = await d.routes.list({ enabledOnly: true });
        this.#routes = new RouteTable(routes.map((r) => ({ ...r, timeoutMs: r.timeoutMs ?? undefined })));
      }
    } catch (err) {
      // Keep serving from the last good copy and try again in a second.
      setTimeout(() => this.#invalidateGroups(groups), 1000).unref();
      this.#logger.error({ err: describeError(err), groups }, 'cannot reload cached keys, plans or routes; serving the previous copy');
    }
  }

  /** Stops following changes. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopWatch();
    this.#store.domain.changes.off('change', this.#onChange);
    await this.#reloading;
  }
}
