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

/**
 * Per-key fixed-window rate limiter over the cache's atomic increment: one round trip per
 * request, the window's key expiring with the window. When the cache fails it fails open to
 * an in-process limiter (each instance then enforces the limit alone) and reports `degraded`.
 */
export class RateLimiter {
  readonly #circuit: CacheCircuit;
  readonly #prefix: string;
  readonly #windowMs: number;
  readonly #now: () => number;
  readonly #local = new LocalWindows();

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
    let count: number;
    let degraded = false;
    try {
      // The TTL outlives the window a little so a slow clock on another instance still finds it.
      count = await this.#circuit.call((c) => c.increment(key, 1, { ttlMs: this.#windowMs * 2 }));
    } catch {
      count = this.#local.hit(key, window);
      degraded = true;
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
