import { ApigateError, type CacheProvider, describeError, type Health, type Logger } from '@apigate/kernel';

export interface CacheCircuitOptions {
  /** After a failure, calls skip the cache for this long before one call probes it again. Default 1000 ms. */
  retryAfterMs?: number;
  /** Hot-path calls that take longer than this count as failures. Default 500 ms. */
  callTimeoutMs?: number;
  now?: () => number;
  logger?: Logger;
}

/** The cache is known to be down (or just failed); the caller falls back. */
export class CacheUnavailableError extends ApigateError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CACHE_UNAVAILABLE', message, options);
  }
}

export interface CircuitStatus {
  degraded: boolean;
  /** When the cache last started failing (while degraded). */
  since?: Date;
  /** One line about the last failure; no secrets (provider errors are already masked by the kernel). */
  lastError?: string;
  failures: number;
}

/**
 * Tracks whether the cache backend is usable, shared by the rate limiter and the quota counter.
 * After a failure every call fails fast (no waiting on a dead backend on the hot path) until
 * `retryAfterMs` has passed; then the next call probes, and a success closes the circuit and
 * wakes the `onRecover` listeners (the quota counter replays its buffered counts there).
 */
export class CacheCircuit {
  readonly cache: CacheProvider;
  readonly #retryAfterMs: number;
  readonly #callTimeoutMs: number;
  readonly #now: () => number;
  readonly #logger: Logger | undefined;
  readonly #recover = new Set<() => void>();
  #degradedSince = 0;
  #nextProbeAt = 0;
  #lastError: string | undefined;
  #failures = 0;

  constructor(cache: CacheProvider, opts: CacheCircuitOptions = {}) {
    this.cache = cache;
    this.#retryAfterMs = opts.retryAfterMs ?? 1_000;
    this.#callTimeoutMs = opts.callTimeoutMs ?? 500;
    this.#now = opts.now ?? Date.now;
    this.#logger = opts.logger;
  }

  get degraded(): boolean {
    return this.#degradedSince !== 0;
  }

  /**
   * Runs `fn` against the cache. Throws CacheUnavailableError at once while the circuit is open,
   * or when `fn` fails. `timeout: false` is for background writes that must not be abandoned
   * half-done (an increment that times out may still have been applied).
   */
  async call<T>(fn: (cache: CacheProvider) => Promise<T>, opts?: { timeout?: boolean }): Promise<T> {
    if (this.#degradedSince !== 0) {
      const now = this.#now();
      if (now < this.#nextProbeAt) throw new CacheUnavailableError(`cache unavailable: ${this.#lastError ?? 'failing'}`);
      this.#nextProbeAt = now + this.#retryAfterMs; // one probe at a time
    }
    let result: T;
    try {
      result = opts?.timeout === false ? await fn(this.cache) : await this.#withTimeout(fn(this.cache));
    } catch (err) {
      this.#fail(err);
      throw new CacheUnavailableError(`cache unavailable: ${describeError(err)}`, { cause: err });
    }
    if (this.#degradedSince !== 0) this.#close();
    return result;
  }

  // One promise and one timer a call (the rate limiter makes one call per event-loop turn).
  #withTimeout<T>(p: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer within ${this.#callTimeoutMs} ms`)), this.#callTimeoutMs);
      p.then(
        (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err);
        },
      );
    });
  }

  #fail(err: unknown): void {
    this.#failures++;
    this.#lastError = describeError(err);
    const now = this.#now();
    this.#nextProbeAt = now + this.#retryAfterMs;
    if (this.#degradedSince === 0) {
      this.#degradedSince = now;
      this.#logger?.warn({ err: this.#lastError }, 'cache unavailable: rate limits fall back to this instance, quota counts are buffered');
    }
  }

  #close(): void {
    const downMs = this.#now() - this.#degradedSince;
    this.#degradedSince = 0;
    this.#logger?.info({ downMs }, 'cache available again');
    for (const listener of this.#recover) {
      try {
        listener();
      } catch (err) {
        this.#logger?.error({ err: describeError(err) }, 'cache recovery listener failed');
      }
    }
  }

  /** Called (synchronously) each time the cache answers again after failing. Returns an unsubscribe. */
  onRecover(listener: () => void): () => void {
    this.#recover.add(listener);
    return () => this.#recover.delete(listener);
  }

  status(): CircuitStatus {
    return {
      degraded: this.degraded,
      ...(this.#degradedSince ? { since: new Date(this.#degradedSince) } : {}),
      ...(this.degraded && this.#lastError ? { lastError: this.#lastError } : {}),
      failures: this.#failures,
    };
  }
}

/**
 * The limits' part of `/admin/health`: `degraded` while the cache is failing (limits are then
 * per instance) or quota counts wait because a write to it failed. Counts buffered between two
 * normal writes (every request adds some) are not a fault. Plain data, no I/O.
 */
export function limitsHealth(circuit: CacheCircuit, quota?: { backlog(): number }): Health {
  const s = circuit.status();
  const pending = quota?.backlog() ?? 0;
  if (!s.degraded && pending === 0) return { status: 'connected', latencyMs: 0, detail: 'rate limits and quotas shared through the cache' };
  const parts: string[] = [];
  if (s.degraded) parts.push(`cache failing since ${s.since!.toISOString()}: rate limits are per instance`);
  if (pending > 0) parts.push(`${pending} quota increments buffered until the cache is back`);
  return { status: 'degraded', latencyMs: 0, detail: parts.join('; '), ...(s.lastError ? { error: s.lastError } : {}) };
}
