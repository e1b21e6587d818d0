import { type Logger, utf8 } from '@apigate/kernel';
import type { CacheCircuit } from './circuit.js';

/** A quota period: calendar month by default, or a subscription's billing period. */
export interface QuotaPeriod {
  /** Part of the cache key, e.g. `2026-11`. */
  id: string;
  /** Epoch ms, inclusive. */
  start: number;
  /** Epoch ms when the next period starts and the count begins again. */
  resetAt: number;
}

/** The UTC calendar month containing `now`. */
export function calendarMonth(now: number): QuotaPeriod {
  const d = new Date(now);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  return { id: `${y}-${String(m + 1).padStart(2, '0')}`, start: Date.UTC(y, m, 1), resetAt: Date.UTC(y, m + 1, 1) };
}

export interface QuotaResult {
  allowed: boolean;
  /** Requests per period; null is unlimited. */
  limit: number | null;
  /** Requests counted this period, this one included when allowed. */
  used: number;
  remaining: number | null;
  resetAt: number;
  period: string;
  /**
   * Thresholds (fractions of the limit, e.g. 0.8 and 1) this request reached. Reported at most
   * once per subject and period by this process; several instances (or a restart right at the
   * boundary) may each report one, so notify through a durable, idempotent id such as
   * `quota:<subject>:<period>:<threshold>`.
   */
  crossed: number[];
  /** The count may be behind: the cache is failing and this instance's increments are buffered. */
  degraded: boolean;
}

export interface QuotaCounterOptions {
  /** Prefix of the cache keys; subject and period id follow. Default `quota:`. */
  prefix?: string;
  /** How often buffered increments are written to the cache. Default 1000 ms. */
  syncIntervalMs?: number;
  /** Fractions of the limit reported in `crossed`. Default [0.8, 1]. */
  thresholds?: number[];
  /** How long a period's key outlives the period (for reports). Default 7 days. */
  retainMs?: number;
  /**
   * The durable count (the usage store's, shared by every instance on the database) for a subject
   * and period. Read when this process first sees the pair and the cache has no key for it (or
   * cannot be read), and before a write when this process's view of the total is older than
   * `reseedIntervalMs` (the subject was idle here while other instances may have counted). Every
   * write re-seeds a key the cache lost (restart, FLUSHALL, eviction) atomically: the increment
   * carries `initial` = the larger of that count and the last total this process saw, applied
   * only when the write re-creates the key (so instances never add a seed twice).
   */
  seed?: (subject: string, period: QuotaPeriod) => Promise<number>;
  /** A view of the total older than this is refreshed from `seed` before the next write. Default 5 s. */
  reseedIntervalMs?: number;
  now?: () => number;
  logger?: Logger;
}

/** `crossed` of nearly every result: shared, never written to. */
const NONE_CROSSED: number[] = Object.freeze([]) as unknown as number[];

interface Entry {
  key: string;
  subject: string;
  period: QuotaPeriod;
  /** The cache's total when last read or written (includes everything flushed so far). */
  shared: number;
  /** Counted here, not yet sent. */
  pending: number;
  /** Being written right now. */
  inflight: number;
  /** The cache could not be read: `shared` is a guess until the next successful write. */
  unsynced: boolean;
  /** The durable count (seed) when last read; a floor for re-creating the key. */
  durable: number;
  /** When `shared` or `durable` was last brought up to date. */
  freshAt: number;
  /** A write could not be made: the increments waiting are an outage's backlog, not normal buffering. */
  failing: boolean;
  loading: Promise<void> | null;
  /** Highest count already considered for threshold reports. */
  reportedUpTo: number;
}

/**
 * Monthly quota counts, shared through the cache but kept off the hot path's round trip: a
 * subject's total is read once per process and period, requests are counted in process, and
 * the increments are written in the background every `syncIntervalMs` (each write returns the
 * cache's total, which brings in other instances' counts). While the cache fails, increments
 * stay buffered and are replayed when it answers again: a count is never dropped. Across
 * instances a quota can overshoot by what the others served within one sync interval.
 */
export class QuotaCounter {
  readonly #circuit: CacheCircuit;
  readonly #prefix: string;
  readonly #thresholds: number[];
  readonly #retainMs: number;
  readonly #now: () => number;
  readonly #logger: Logger | undefined;
  readonly #seed: QuotaCounterOptions['seed'];
  readonly #reseedMs: number;
  readonly #entries = new Map<string, Entry>();
  readonly #timer: NodeJS.Timeout;
  readonly #unsubscribe: () => void;
  #month: QuotaPeriod = calendarMonth(0);
  #last: Entry | null = null;
  #flushing: Promise<void> | null = null;
  #closed = false;

  constructor(circuit: CacheCircuit, opts: QuotaCounterOptions = {}) {
    this.#circuit = circuit;
    this.#prefix = opts.prefix ?? 'quota:';
    this.#thresholds = [...(opts.thresholds ?? [0.8, 1])].sort((a, b) => a - b);
    this.#retainMs = opts.retainMs ?? 7 * 24 * 3600_000;
    this.#now = opts.now ?? Date.now;
    this.#logger = opts.logger;
    this.#seed = opts.seed;
    this.#reseedMs = opts.reseedIntervalMs ?? 5_000;
    this.#timer = setInterval(() => void this.flush(), opts.syncIntervalMs ?? 1_000);
    this.#timer.unref();
    this.#unsubscribe = circuit.onRecover(() => void this.flush());
  }

  #currentMonth(now: number): QuotaPeriod {
    if (now >= this.#month.resetAt || now < this.#month.start) this.#month = calendarMonth(now);
    return this.#month;
  }

  async #load(e: Entry, subject: string): Promise<void> {
    let missing = true;
    try {
      const raw = await this.#circuit.call((c) => c.get(e.key));
      const n = raw ? Number(utf8.decode(raw)) : 0;
      e.shared = Number.isFinite(n) ? n : 0;
      missing = raw === undefined;
    } catch {
      e.unsynced = true; // fail open: count from the durable count here, the next write brings the real total
    }
    e.freshAt = this.#now();
    if (missing) {
      await this.#reseed(e, subject);
      e.shared = Math.max(e.shared, e.durable); // the next write creates the key from it (increment's `initial`)
    }
    e.reportedUpTo = e.shared + e.pending; // what happened before this process knew is not reported again
    e.loading = null;
  }

  /** Reads the durable count into `e.durable`; a failure keeps the last one. */
  async #reseed(e: Entry, subject: string): Promise<void> {
    if (!this.#seed) return;
    e.freshAt = this.#now();
    try {
      e.durable = Math.max(e.durable, await this.#seed(subject, e.period));
    } catch (err) {
      this.#logger?.warn(
        { subject, period: e.period.id, err: (err as Error)?.message },
        'quota seed failed; counting from the cache alone',
      );
    }
  }

  /**
   * Counts one request of `subject` (a user id or key id) against `limit` per period, unless
   * the quota is used up. Reads the cache only the first time a subject is seen in a period.
   */
  async consume(subject: string, limit: number | null, period?: QuotaPeriod): Promise<QuotaResult> {
    const e = this.#entry(subject, period);
    if (e.loading) await e.loading;
    return this.#count(e, limit);
  }

  /**
   * `consume` without a promise, for the hot path: the result at once when this process already
   * knows the subject's count for the period, else undefined and nothing counted (call `consume`).
   */
  consumeNow(subject: string, limit: number | null, period?: QuotaPeriod): QuotaResult | undefined {
    const e = this.#entry(subject, period);
    return e.loading ? undefined : this.#count(e, limit);
  }

  /** The subject's entry for the period; starts loading its count when this process has none. */
  #entry(subject: string, period: QuotaPeriod | undefined): Entry {
    const p = period ?? this.#currentMonth(this.#now());
    // The last entry used (one map lookup and no key string while the same subject keeps calling).
    const last = this.#last;
    if (last !== null && last.subject === subject && last.period === p) return last;
    const key = `${this.#prefix}${subject}:${p.id}`;
    let e = this.#entries.get(key);
    if (!e) {
      e = {
        key,
        subject,
        period: p,
        shared: 0,
        pending: 0,
        inflight: 0,
        unsynced: false,
        durable: 0,
        freshAt: 0,
        failing: false,
        loading: null,
        reportedUpTo: 0,
      };
      e.loading = this.#load(e, subject);
      this.#entries.set(key, e);
    }
    this.#last = e;
    return e;
  }

  #count(e: Entry, limit: number | null): QuotaResult {
    const p = e.period;
    const before = e.shared + e.inflight + e.pending;
    const allowed = limit === null || before < limit;
    if (allowed) e.pending++;
    const used = allowed ? before + 1 : before;
    let crossed = NONE_CROSSED;
    if (limit !== null && used > e.reportedUpTo) {
      for (const t of this.#thresholds) {
        const mark = Math.ceil(limit * t);
        if (e.reportedUpTo < mark && used >= mark) (crossed === NONE_CROSSED ? (crossed = []) : crossed).push(t);
      }
      e.reportedUpTo = used;
    }
    return {
      allowed,
      limit,
      used,
      remaining: limit === null ? null : Math.max(0, limit - used),
      resetAt: p.resetAt,
      period: p.id,
      crossed,
      degraded: e.unsynced || this.#circuit.degraded,
    };
  }

  /** Increments counted here and not yet in the cache (normal buffering between writes included). */
  pending(): number {
    let n = 0;
    for (const e of this.#entries.values()) n += e.pending + e.inflight;
    return n;
  }

  /**
   * Increments waiting because a write to the cache failed (an outage's backlog). Normal buffering
   * (counted since the last write, or being written) is not a backlog: health stays healthy.
   */
  backlog(): number {
    let n = 0;
    for (const e of this.#entries.values()) if (e.failing) n += e.pending + e.inflight;
    return n;
  }

  /** Writes buffered increments now (the timer and cache recovery call this too). Never throws. */
  flush(): Promise<void> {
    this.#flushing ??= this.#flushAll().finally(() => {
      this.#flushing = null;
    });
    return this.#flushing;
  }

  async #flushAll(): Promise<void> {
    const now = this.#now();
    const writes: Promise<void>[] = [];
    for (const e of this.#entries.values()) {
      if (e.pending > 0 || (e.unsynced && !e.loading)) writes.push(this.#write(e, now));
      else if (e.inflight === 0 && !e.loading && now >= e.period.resetAt) {
        this.#entries.delete(e.key);
        if (this.#last === e) this.#last = null;
      }
    }
    // In parallel: a pipelining client (ioredis) turns these into one round trip.
    await Promise.all(writes);
  }

  async #write(e: Entry, now: number): Promise<void> {
    // Idle here for a while: other instances' counts since are only in the store (and the cache).
    if (this.#seed && now - e.freshAt >= this.#reseedMs) await this.#reseed(e, e.subject);
    const n = e.pending;
    e.pending = 0;
    e.inflight += n;
    try {
      // No timeout: an abandoned increment may still land, and replaying it would count twice.
      const ttlMs = Math.max(60_000, e.period.resetAt + this.#retainMs - now);
      // `initial` re-seeds a key the cache lost since the last write; an existing key ignores it.
      const initial = Math.max(e.shared, e.durable);
      e.shared = await this.#circuit.call((c) => c.increment(e.key, n, { ttlMs, initial }), { timeout: false });
      e.freshAt = now;
      e.unsynced = false;
      e.failing = false;
    } catch {
      e.pending += n; // kept for the next try
      e.failing = true;
    } finally {
      e.inflight -= n;
    }
  }

  /** Stops the timer and writes what is buffered. Idempotent; logs what could not be written. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#unsubscribe();
    await this.flush();
    const left = this.pending();
    if (left > 0) {
      const why = this.#circuit.status().lastError;
      this.#logger?.error(
        `${left} quota increments could not be written to the cache${why ? ` (${why})` : ''}; usage records still hold them`,
      );
    }
  }
}
