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

/** The hits on one window key gathered while the key waits for its turn, sent as one increment. */
interface Batch {
  key: string;
  n: number;
  /** The cache's count after adding `n`, or undefined when the cache failed. */
  done: Promise<number | undefined>;
  resolve: (total: number | undefined) => void;
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
 */
export class RateLimiter {
  readonly #circuit: CacheCircuit;
  readonly #prefix: string;
  readonly #windowMs: number;
  readonly #now: () => number;
  readonly #local = new LocalWindows();
  /** Per key: the batch still taking hits. */
  readonly #open = new Map<string, Batch>();
  /** Keys with an increment in flight. */
  readonly #sending = new Set<string>();
  readonly #ttlMs: number;

  constructor(circuit: CacheCircuit, opts: RateLimiterOptions = {}) {
    this.#circuit = circuit;
    this.#prefix = opts.prefix ?? 'rl:';
    this.#windowMs = opts.windowMs ?? 60_000;
    this.#now = opts.now ?? Date.now;
    // The TTL outlives the window a little so a slow clock on another instance still finds it.
    this.#ttlMs = this.#windowMs * 2;
  }

  #send(b: Batch): void {
    this.#open.delete(b.key);
    this.#sending.add(b.key);
    this.#circuit
      .call((c) => c.increment(b.key, b.n, { ttlMs: this.#ttlMs }))
      .then(
        (total) => this.#sent(b, total),
        () => this.#sent(b, undefined),
      );
  }

  #sent(b: Batch, total: number | undefined): void {
    b.resolve(total);
    // The hits that came while this one was on its way go out at the end of this turn, not now:
    // the hits still to be read in this turn (the reply is often read before other sockets) join
    // them instead of waiting a whole round trip for the next increment. The key stays in
    // #sending until then, so they join this batch rather than start one of their own.
    const next = this.#open.get(b.key);
    if (next) setImmediate(() => this.#send(next));
    else this.#sending.delete(b.key);
  }

  /** Counts one request of `keyId` against `limit` requests per window. */
  async hit(keyId: string, limit: number): Promise<RateLimitResult> {
    const now = this.#now();
    const window = Math.floor(now / this.#windowMs);
    const key = `${this.#prefix}${keyId}:${window}`;
    let batch = this.#open.get(key);
    if (!batch) {
      let resolve!: (total: number | undefined) => void;
      const done = new Promise<number | undefined>((r) => {
        resolve = r;
      });
      const b: Batch = { key, n: 0, done, resolve };
      this.#open.set(key, b);
      // Sent after this turn's other hits joined it, or when the key's increment in flight returns.
      if (!this.#sending.has(key)) setImmediate(() => this.#open.get(key) === b && this.#send(b));
      batch = b;
    }
    const place = ++batch.n;
    const total = await batch.done;
    let count: number;
    let degraded = false;
    if (total === undefined) {
      count = this.#local.hit(key, window);
      degraded = true;
    } else {
      count = total - batch.n + place;
    }
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
