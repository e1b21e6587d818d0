import type { CacheCircuit } from './circuit.js';

export interface RateLimitResult {
  allowed: boolean;
  /** Requests allowed per window. */
  limit: number;
  remaining: number;
  /** When the current window ends, epoch ms. */
  resetAt: number;
  /** Whole seconds until `resetAt` (at least 1): the `Retry-After` of a 429. */
  retryAfterSec: number;
  /** Counted by this instance alone because the cache is failing. */
  degraded: boolean;
}

export interface RateLimiterOptions {
  /** Prefix of the cache keys; the key id and window number follow. Default `rl:`. */
  prefix?: string;
  /** Window length. Default 60000 ms (limits are per minute). */
  windowMs?: number;
  now?: () => number;
  /**
   * Asked at each hit: true when the cache is one no other process sees (the memory cache), so
   * the counts are kept in this process instead (the same counts, no trip through the cache).
   */
  inProcess?: () => boolean;
}

/** Fixed-window counts kept in this process: the fallback while the cache is down. */
class LocalWindows {
  #window = -1;
  #counts = new Map<string, number>();

  hit(key: string, window: number): number {
    // A later window makes every count kept so far stale (keys carry their window number).
    if (window > this.#window) {
      this.#window = window;
      this.#counts = new Map();
    }
    const n = (this.#counts.get(key) ?? 0) + 1;
    this.#counts.set(key, n);
    return n;
  }
}

/** Who waits for a hit's result (the proxy handler's request, or a promise's resolver for `hit`). */
export interface RateLimitWaiter {
  rateLimited(r: RateLimitResult): void;
}

/** The hits on one window key gathered while the key waits for its turn, sent as one increment. */
interface Batch {
  key: string;
  window: number;
  /** Hits let through before this increment returns (see RateLimiter): they take the batch's first places. */
  admitted: number;
  /** In arrival order: the i-th waiter's place is admitted + i + 1. */
  waiters: RateLimitWaiter[];
  limits: number[];
  /** Sent at the end of the turn (a waiter is in it) or after FLUSH_MS (only admitted hits). */
  soon: boolean;
  later: boolean;
}

/** This instance's view of a key's count in the current window. */
interface KeyView {
  /** The cache's count at the last answer; -1 before one (or after a failure). */
  counted: number;
  /** This instance's hits not in `counted` yet (waiting in a batch or on their way). */
  unconfirmed: number;
}

/** How long hits that were let through wait to be sent, when no hit waits for its count. */
const FLUSH_MS = 20;
/** Hits are let through before their count only while more than max(this, 10% of the limit) are left. */
const LET_THROUGH_MARGIN = 1000;

/** Adapts `hit`'s promise to a waiter. */
class Resolver implements RateLimitWaiter {
  resolve!: (r: RateLimitResult) => void;
  readonly promise = new Promise<RateLimitResult>((r) => {
    this.resolve = r;
  });
  rateLimited(r: RateLimitResult): void {
    this.resolve(r);
  }
}

/**
 * Per-key fixed-window rate limiter over the cache's atomic increment, the window's key expiring
 * with the window. Hits on one key are sent as one `increment(key, n)` (each gets its own place
 * in the count, as n separate increments would): the hits of one event-loop turn, and while an
 * increment of the key is on its way, the hits that arrive meanwhile, sent at the end of the turn
 * it returns in (with that turn's hits).
 * So a key has at most one increment in flight, and a busy key costs one round trip per round
 * trip time rather than one per request (an idle one: no wait beyond the turn). When the cache
 * fails it fails open to an in-process limiter (each instance then enforces the limit alone) and
 * reports `degraded`.
 *
 * A key far from its limit is not made to wait: while the last count this instance saw, plus its
 * own hits since, leaves more than max(1000, 10% of the limit), a hit is let through at once and
 * counted in the next increment (sent within FLUSH_MS). The shared count stays exact; only the
 * decision goes ahead of it, and the view it is made on lags the real count by the hits all
 * instances make within a few milliseconds, far less than the margin (it would take some 50 000
 * requests a second on one key to use it up). Nearer the limit every hit waits for its place.
 *
 * With `inProcess` answering true (a cache no other process sees, like the memory cache) the
 * counts are kept here instead: the same counts the cache would hold, without a round trip
 * through it, and `hitNow` answers at once.
 */
export class RateLimiter {
  readonly #circuit: CacheCircuit;
  readonly #prefix: string;
  readonly #windowMs: number;
  readonly #now: () => number;
  readonly #inProcess: () => boolean;
  readonly #local = new LocalWindows();
  /** The counts of `inProcess`, by key id (the window is LocalWindows' own: no key string per hit). */
  readonly #own = new LocalWindows();
  /** Per key: the batch still taking hits. */
  readonly #open = new Map<string, Batch>();
  /** Keys with an increment in flight. */
  readonly #sending = new Set<string>();
  /** Per key of the current window (#viewWindow): what this instance knows of its count. */
  #views = new Map<string, KeyView>();
  /** Increments on their way (flush waits for them). */
  readonly #inFlight = new Set<Promise<void>>();
  #viewWindow = -1;
  readonly #ttlMs: number;

  constructor(circuit: CacheCircuit, opts: RateLimiterOptions = {}) {
    this.#circuit = circuit;
    this.#prefix = opts.prefix ?? 'rl:';
    this.#windowMs = opts.windowMs ?? 60_000;
    this.#now = opts.now ?? Date.now;
    this.#inProcess = opts.inProcess ?? (() => false);
    // The TTL outlives the window a little so a slow clock on another instance still finds it.
    this.#ttlMs = this.#windowMs * 2;
  }

  #send(b: Batch): void {
    this.#open.delete(b.key);
    this.#sending.add(b.key);
    const sent = this.#circuit
      .call((c) => c.increment(b.key, b.admitted + b.waiters.length, { ttlMs: this.#ttlMs }))
      .then(
        (total) => this.#sent(b, total),
        () => this.#sent(b, undefined),
      );
    this.#inFlight.add(sent);
    void sent.finally(() => this.#inFlight.delete(sent));
  }

  /**
   * Sends every hit still waiting (the ones let through wait up to FLUSH_MS) and resolves once
   * all increments have returned: called when the gateway stops, so a SIGTERM loses no hit from
   * the shared count. A crash still loses the last few milliseconds' hits of busy keys.
   */
  async flush(): Promise<void> {
    while (this.#open.size > 0 || this.#inFlight.size > 0) {
      for (const b of [...this.#open.values()]) if (!this.#sending.has(b.key)) this.#send(b);
      await Promise.all([...this.#inFlight]);
    }
  }

  /** Sends `b` at the end of this turn (`soon`) or within FLUSH_MS, unless the key's increment is on its way. */
  #schedule(b: Batch, soon: boolean): void {
    if (this.#sending.has(b.key)) return; // sent when that one returns
    if (soon) {
      if (b.soon) return;
      b.soon = true;
      setImmediate(() => this.#open.get(b.key) === b && this.#send(b));
    } else if (!b.soon && !b.later) {
      b.later = true;
      setTimeout(() => this.#open.get(b.key) === b && this.#send(b), FLUSH_MS).unref();
    }
  }

  #sent(b: Batch, total: number | undefined): void {
    const now = this.#now();
    const n = b.waiters.length;
    const view = b.window === this.#viewWindow ? this.#views.get(b.key) : undefined;
    if (view) {
      view.unconfirmed -= b.admitted + n;
      view.counted = total === undefined ? -1 : Math.max(view.counted, total);
    }
    // Hits already let through still count here while the cache fails.
    if (total === undefined) for (let i = 0; i < b.admitted; i++) this.#local.hit(b.key, b.window);
    for (let i = 0; i < n; i++) {
      const count = total === undefined ? this.#local.hit(b.key, b.window) : total - n + i + 1;
      b.waiters[i]!.rateLimited(this.#result(count, b.limits[i]!, b.window, now, total === undefined));
    }
    // The hits that came while this one was on its way go out at the end of this turn, not now:
    // the hits still to be read in this turn (the reply is often read before other sockets) join
    // them instead of waiting a whole round trip for the next increment.
    this.#sending.delete(b.key);
    const next = this.#open.get(b.key);
    if (next) this.#schedule(next, next.waiters.length > 0);
  }

  #result(count: number, limit: number, window: number, now: number, degraded: boolean): RateLimitResult {
    const resetAt = (window + 1) * this.#windowMs;
    return {
      allowed: count <= limit,
      limit,
      remaining: Math.max(0, limit - count),
      resetAt,
      retryAfterSec: Math.max(1, Math.ceil((resetAt - now) / 1000)),
      degraded,
    };
  }

  /**
   * Counts one request of `keyId` against `limit` and answers at once when the counts are kept in
   * this process (`inProcess`); undefined otherwise, without counting: then call `hitThen`.
   */
  hitNow(keyId: string, limit: number): RateLimitResult | undefined {
    if (!this.#inProcess()) return undefined;
    const now = this.#now();
    const window = Math.floor(now / this.#windowMs);
    return this.#result(this.#own.hit(keyId, window), limit, window, now, false);
  }

  /**
   * Counts one request of `keyId` against `limit` requests per window and hands the result to
   * `waiter` (possibly before this returns). The proxy's hot path: no promise per request.
   */
  hitThen(keyId: string, limit: number, waiter: RateLimitWaiter): void {
    const counted = this.hitNow(keyId, limit);
    if (counted) return void waiter.rateLimited(counted);
    const now = this.#now();
    const window = Math.floor(now / this.#windowMs);
    const key = `${this.#prefix}${keyId}:${window}`;
    if (window !== this.#viewWindow) {
      this.#viewWindow = window;
      this.#views = new Map();
    }
    let view = this.#views.get(key);
    if (!view) this.#views.set(key, (view = { counted: -1, unconfirmed: 0 }));
    let batch = this.#open.get(key);
    if (!batch) {
      batch = { key, window, admitted: 0, waiters: [], limits: [], soon: false, later: false };
      this.#open.set(key, batch);
    }
    view.unconfirmed++;
    const seen = view.counted + view.unconfirmed;
    if (view.counted >= 0 && limit - seen >= Math.max(LET_THROUGH_MARGIN, Math.ceil(limit / 10))) {
      batch.admitted++;
      this.#schedule(batch, false);
      return void waiter.rateLimited(this.#result(seen, limit, window, now, false));
    }
    batch.waiters.push(waiter);
    batch.limits.push(limit);
    this.#schedule(batch, true);
  }

  /** Counts one request of `keyId` against `limit` requests per window. */
  hit(keyId: string, limit: number): Promise<RateLimitResult> {
    const r = new Resolver();
    this.hitThen(keyId, limit, r);
    return r.promise;
  }
}

/**
 * The headers every proxied answer carries. `X-RateLimit-Reset` is the window's end in Unix
 * seconds (GitHub's convention); `Retry-After` is added on a refusal.
 */
export function rateLimitHeaders(r: RateLimitResult): Record<string, string> {
  const h: Record<string, string> = {
    'x-ratelimit-limit': String(r.limit),
    'x-ratelimit-remaining': String(r.remaining),
    'x-ratelimit-reset': String(Math.ceil(r.resetAt / 1000)),
  };
  if (!r.allowed) h['retry-after'] = String(r.retryAfterSec);
  return h;
}
