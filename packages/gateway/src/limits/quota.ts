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
   * The durable count (the usage store's) for a subject and period the cache has no key for:
   * a memory cache after a restart, or a flushed Redis. Called once per subject and period.
   * Its value is added to the cache with the next write (if two instances seed the same lost
   * key at once, both add it: the count errs high, never low).
   */
  seed?: (subject: string, period: QuotaPeriod) => Promise<number>;
  now?: () => number;
  logger?: Logger;
}

interface Entry {
  key: string;
  period: QuotaPeriod;
  /** The cache's total when last read or written (includes everything flushed so far). */
  shared: number;
  /** Counted here, not yet sent. */
  pending: number;
  /** Being written right now. */
  inflight: number;
  /** The cache could not be read: `shared` is a guess until the next successful write. */
  unsynced: boolean;
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
  readonly #entries = new Map<string, Entry>();
  readonly #timer: NodeJS.Timeout;
  readonly #unsubscribe: () => void;
  #month: QuotaPeriod = calendarMonth(0);
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
    this.#timer = setInterval(() => void this.flush(), opts.syncIntervalMs ?? 1_000);
    this.#timer.unref();
    this.#unsubscribe = circuit.onRecover(() => void this.flush());
  }

  #currentMonth(now: number): QuotaPeriod {
    if (now >= this.#month.resetAt || now < this.#month.start) this.#month = calendarMonth(now);
    return this.#month;
  }

  async #load(e: Entry, subject: string): Promise<void> {
    let missing = false;
    try {
      const raw = await this.#circuit.call((c) => c.get(e.key));
      const n = raw ? Number(utf8.decode(raw)) : 0;
      e.shared = Number.isFinite(n) ? n : 0;
      missing = raw === undefined;
    } catch {
      e.unsynced = true; // fail open: count from zero here, the next write brings the real total
    }
    if (missing && this.#seed) {
      try {
        e.pending += await this.#seed(subject, e.period); // written to the cache with the next flush
      } catch (err) {
        this.#logger?.warn({ subject, period: e.period.id, err: (err as Error)?.message }, 'quota seed failed; counting from the cache alone');
      }
    }
    e.reportedUpTo = e.shared + e.pending; // what happened before this process knew is not reported again
    e.loading = null;
  }

  /**
   * Counts one request of `subject` (a user id or key id) against `limit` per period, unless
   * the quota is used up. Reads the cache only the first time a subject is seen in a period.
   */
  async consume(subject: string, limit: number | null, period?: QuotaPeriod): Promise<QuotaResult> {
    const now = this.#now();
    const p = period ?? this.#currentMonth(now);
    const key = `${this.#prefix}${subject}:${p.id}`;
    let e = this.#entries.get(key);
    if (!e) {
      e = { key, period: p, shared: 0, pending: 0, inflight: 0, unsynced: false, loading: null, reportedUpTo: 0 };
      e.loading = this.#load(e, subject);
      this.#entries.set(key, e);
    }
    if (e.loading) await e.loading;
    const before = e.shared + e.inflight + e.pending;
    const allowed = limit === null || before < limit;
    if (allowed) e.pending++;
    const used = allowed ? before + 1 : before;
    const crossed: number[] = [];
    if (limit !== null && used > e.reportedUpTo) {
      for (const t of this.#thresholds) {
        const mark = Math.ceil(limit * t);
        if (e.reportedUpTo < mark && used >= mark) crossed.push(t);
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

  /** Increments counted here and not yet in the cache. */
  pending(): number {
    let n = 0;
    for (const e of this.#entries.values()) n += e.pending + e.inflight;
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
      else if (e.inflight === 0 && !e.loading && now >= e.period.resetAt) this.#entries.delete(e.key);
    }
    // In parallel: a pipelining client (ioredis) turns these into one round trip.
    await Promise.all(writes);
  }

  async #write(e: Entry, now: number): Promise<void> {
    const n = e.pending;
    e.pending = 0;
    e.inflight += n;
    try {
      // No timeout: an abandoned increment may still land, and replaying it would count twice.
      const ttlMs = Math.max(60_000, e.period.resetAt + this.#retainMs - now);
      e.shared = await this.#circuit.call((c) => c.increment(e.key, n, { ttlMs }), { timeout: false });
      e.unsynced = false;
    } catch {
      e.pending += n; // kept for the next try
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
      this.#logger?.error(`${left} quota increments could not be written to the cache${why ? ` (${why})` : ''}; usage records still hold them`);
    }
  }
}
