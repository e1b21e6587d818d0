import type { ProviderInstance } from './common.js';

export interface CacheSetOptions {
  /** Time to live in milliseconds; absent means no expiry. */
  ttlMs?: number;
}

export interface CacheIncrementOptions extends CacheSetOptions {
  /**
   * The value a key this call creates starts from, before `by` is added (default 0): a counter
   * whose key the cache lost (restart, flush, eviction) comes back at a durable total instead of
   * at `by`. Ignored when the key exists. Like `ttlMs`, part of the same atomic step.
   */
  initial?: number;
}

export interface CacheStats {
  hits: number;
  misses: number;
  keys?: number;
  memoryBytes?: number;
}

/** Values are bytes; strings are stored as UTF-8. JSON helpers live in the kernel (`getJSON`/`setJSON`). */
export interface CacheProvider extends ProviderInstance {
  get(key: string): Promise<Uint8Array | undefined>;
  set(key: string, value: Uint8Array | string, opts?: CacheSetOptions): Promise<void>;
  delete(key: string): Promise<boolean>;
  has(key: string): Promise<boolean>;
  /** Atomic, one round trip. `ttlMs` and `initial` apply only when this call creates the key. Returns the new value. */
  increment(key: string, by?: number, opts?: CacheIncrementOptions): Promise<number>;
  getMany(keys: string[]): Promise<(Uint8Array | undefined)[]>;
  setMany(entries: [string, Uint8Array | string][], opts?: CacheSetOptions): Promise<void>;
  /** Deletes every key starting with `prefix` (all keys of this provider when absent). Returns how many. */
  clear(prefix?: string): Promise<number>;
  stats(): Promise<CacheStats>;
}

export interface CacheFeatures {
  /** Several processes see the same keys (Redis yes, memory no). */
  shared?: boolean;
}
