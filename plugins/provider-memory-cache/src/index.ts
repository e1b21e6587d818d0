import { type CacheIncrementOptions, type CacheProvider, defineProvider, fields, utf8, z } from '@apigate/kernel';

interface Entry {
  value: Uint8Array;
  expiresAt: number;
}

const toBytes = (v: Uint8Array | string): Uint8Array => (typeof v === 'string' ? utf8.encode(v) : new Uint8Array(v));

/** A Map with lazy expiry plus a sweep, bounded by `maxEntries` (oldest inserted goes first). */
export class MemoryCache implements CacheProvider {
  private readonly map = new Map<string, Entry>();
  private hits = 0;
  private misses = 0;
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly maxEntries: number) {
    this.sweeper = setInterval(() => this.sweep(), 30_000);
    this.sweeper.unref();
  }

  private live(key: string): Entry | undefined {
    const e = this.map.get(key);
    if (!e) return undefined;
    if (e.expiresAt !== 0 && e.expiresAt <= Date.now()) {
      this.map.delete(key);
      return undefined;
    }
    return e;
  }

  private put(key: string, value: Uint8Array, ttlMs?: number): void {
    if (ttlMs !== undefined && ttlMs <= 0) {
      this.map.delete(key);
      return;
    }
    this.map.delete(key);
    this.map.set(key, { value, expiresAt: ttlMs ? Date.now() + ttlMs : 0 });
    if (this.map.size > this.maxEntries) this.map.delete(this.map.keys().next().value!);
  }

  private sweep(): void {
    const now = Date.now();
    for (const [k, e] of this.map) if (e.expiresAt !== 0 && e.expiresAt <= now) this.map.delete(k);
  }

  async get(key: string) {
    const e = this.live(key);
    if (e) this.hits++;
    else this.misses++;
    return e ? new Uint8Array(e.value) : undefined;
  }

  async set(key: string, value: Uint8Array | string, opts?: { ttlMs?: number }) {
    this.put(key, toBytes(value), opts?.ttlMs);
  }

  async delete(key: string) {
    const existed = this.live(key) !== undefined;
    this.map.delete(key);
    return existed;
  }

  async has(key: string) {
    return this.live(key) !== undefined;
  }

  async increment(key: string, by = 1, opts?: CacheIncrementOptions) {
    const e = this.live(key);
    if (!e) {
      const created = (opts?.initial ?? 0) + by;
      this.put(key, utf8.encode(String(created)), opts?.ttlMs);
      return created;
    }
    const current = Number(utf8.decode(e.value));
    if (!Number.isInteger(current)) throw new Error(`cache value at "${key}" is not an integer`);
    const next = current + by;
    e.value = utf8.encode(String(next));
    return next;
  }

  async getMany(keys: string[]) {
    return Promise.all(keys.map((k) => this.get(k)));
  }

  async setMany(entries: [string, Uint8Array | string][], opts?: { ttlMs?: number }) {
    for (const [k, v] of entries) this.put(k, toBytes(v), opts?.ttlMs);
  }

  async clear(prefix?: string) {
    let n = 0;
    for (const k of [...this.map.keys()]) {
      if (prefix === undefined || k.startsWith(prefix)) {
        if (this.live(k)) n++;
        this.map.delete(k);
      }
    }
    return n;
  }

  async stats() {
    this.sweep();
    let bytes = 0;
    for (const [k, e] of this.map) bytes += k.length * 2 + e.value.byteLength;
    return { hits: this.hits, misses: this.misses, keys: this.map.size, memoryBytes: bytes };
  }

  async check() {
    return { status: 'connected' as const, detail: `${this.map.size} keys` };
  }

  async close() {
    clearInterval(this.sweeper);
  }
}

export default defineProvider({
  capability: 'cache',
  name: 'memory',
  description: 'In-process cache (single instance only; lost on restart)',
  config: z.object({
    maxEntries: fields.int({ min: 1 }).default(1_000_000).describe('the most keys kept before the oldest are dropped'),
  }),
  env: { maxEntries: 'MEMORY_CACHE_MAX_ENTRIES' },
  features: { shared: false },
  create: (config) => new MemoryCache(config.maxEntries),
});
