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

/** The hits on one window key gathered within one event-loop turn, sent as one increment. */
interface Batch {
  n: number;
  /** The cache's count after adding `n`, or undefined when the cache failed. */
  done: Promise<number | undefined>;
}

/**
 * Per-key fixed-window rate limiter over the cache's atomic increment, the window's key expiring
 * with the window. Hits on the same key that arrive in the same event-loop turn are sent as one
 * `increment(key, n)` (each gets its own place in the count, as n separate increments would),
 * so a busy key costs one round trip per turn rather than one per request. When the cache fails
 * it fails open to an in-process limiter (each instance then enforces the limit alone) and
 * reports `degraded`.
 */
export class RateLimiter {
  readonly #circuit: CacheCircuit;
  readonly #prefix: string;
  readonly #windowMs: number;
  readonly #now: () => number;
  readonly #local = new LocalWindows();
  readonly #batches = new Map<string, Batch>();

  constructor(circuit: CacheCircuit, opts: RateLimiterOptions = {}) {
    this.#circuit = circuit;
    this.#prefix = opts.prefix ?? 'rl:';
    this.#windowMs = opts.windowMs ?? 60_000;
    this.#now = opts.now ?? Date.now;
  }

  /** Counts one request of `keyId` against `limit` requests per window. */
  async hit(keyId: string, limit: number): Promise<RateLimitResult> {
    const now = this.#now();
    const window = Math.floor(now / this.#windowMs);
    const key = `${this.#prefix}${keyId}:${window}`;
    let batch = this.#batches.get(key);
    if (!batch) {
      const b: Batch = { n: 0, done: undefined as unknown as Promise<number | undefined> };
      b.done = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        this.#batches.delete(key);
        // The TTL outlives the window a little so a slow clock on another instance still finds it.
        return this.#circuit.call((c) => c.increment(key, b.n, { ttlMs: this.#windowMs * 2 })).catch(() => undefined);
      });
      this.#batches.set(key, b);
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
