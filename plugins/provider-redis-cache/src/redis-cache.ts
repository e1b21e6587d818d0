import {
  type CacheIncrementOptions,
  type CacheProvider,
  type CacheSetOptions,
  type CacheStats,
  ConfigError,
  type Health,
  InvalidInputError,
  type ProviderContext,
  ProviderError,
  redact,
} from '@apigate/kernel';
import { Redis } from 'ioredis';
import { classify, type ConnectionConfig, messageOf, redisOptions } from './connection.js';

export interface RedisCacheConfig extends ConnectionConfig {
  keyPrefix: string;
}

type Value = Uint8Array | string;

/**
 * INCRBY plus, only when this call creates the key, a starting value and PEXPIRE, atomically in
 * one round trip (sent as EVALSHA; ioredis falls back to EVAL once after a server restart empties
 * the script cache). ARGV[2] is '' for "no TTL"; a TTL <= 0 on creation leaves no key, as `set`
 * does. ARGV[3] is the initial value ('' or absent for 0): a lost counter comes back re-seeded.
 */
export const INCREMENT_LUA = `
local created = redis.call('EXISTS', KEYS[1]) == 0
if created and ARGV[3] and ARGV[3] ~= '' then redis.call('SET', KEYS[1], ARGV[3]) end
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if created and ARGV[2] ~= '' then
  local ttl = tonumber(ARGV[2])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) else redis.call('DEL', KEYS[1]) end
end
return v`;

interface ScriptedRedis extends Redis {
  apigateIncrement(key: string, by: number, ttlMs: string, initial: string): Promise<number>;
}

/** SCAN batch size: big enough to keep round trips few, small enough that one UNLINK stays short. */
const SCAN_COUNT = 1000;

/** ioredis stringifies anything that is not a Buffer or a string, so wrap bytes without copying. */
const toArg = (v: Value): Buffer | string =>
  typeof v === 'string' || Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);

/** Plain Uint8Array view over the reply (no copy), as the contract promises. */
const toBytes = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

/** Backslash-escapes Redis glob characters so a prefix is matched literally by SCAN MATCH. */
const escapeGlob = (s: string): string => s.replace(/[*?[\]\\]/g, '\\$&');

const nothing = (): void => {};
const positive = (n: number): boolean => n > 0;

function ttlOf(opts: CacheSetOptions | undefined): number | undefined {
  const ttl = opts?.ttlMs;
  if (ttl === undefined) return undefined;
  if (typeof ttl !== 'number' || Number.isNaN(ttl) || ttl === Number.POSITIVE_INFINITY) {
    throw new InvalidInputError(`cache ttlMs must be a finite number of milliseconds, got ${String(ttl)}`);
  }
  return ttl > 0 ? Math.ceil(ttl) : 0;
}

export class RedisCache implements CacheProvider {
  /** The ioredis client; exposed for tests and benchmarks, not part of the contract. */
  readonly redis: ScriptedRedis;
  private readonly prefix: string;
  private readonly where: string;
  /** The password (field or URL), masked in the start-up error: create() throws it before the kernel's instrument sees it. */
  private readonly startSecrets: string[];
  private readonly commandTimeoutMs: number;
  private hits = 0;
  private misses = 0;
  /** Last connection error, for messages while disconnected. */
  private lastError: string | undefined;
  private down = false;
  private closing: Promise<void> | undefined;

  constructor(
    cfg: RedisCacheConfig,
    private readonly ctx: Pick<ProviderContext, 'capability' | 'provider' | 'logger'>,
  ) {
    const { options, where } = redisOptions(cfg);
    this.where = where;
    this.prefix = cfg.keyPrefix;
    this.commandTimeoutMs = cfg.commandTimeoutMs;
    this.startSecrets = [cfg.password, options.password].filter((s): s is string => !!s);
    this.redis = new Redis(options) as ScriptedRedis;
    this.redis.defineCommand('apigateIncrement', { numberOfKeys: 1, lua: INCREMENT_LUA });
    // Log transitions only: while Redis is down ioredis reports every reconnect attempt. The kernel's
    // logger masks the secrets in what is logged, its instrument those in errors and health answers.
    this.redis.on('error', (err: unknown) => {
      this.lastError = messageOf(err);
      if (!this.down && !this.closing) ctx.logger.warn(`Redis at ${this.where} failed: ${this.lastError}; reconnecting`);
      this.down = true;
    });
    this.redis.on('ready', () => {
      if (this.down) ctx.logger.info(`Redis at ${this.where} is connected again`);
      this.down = false;
      this.lastError = undefined;
    });
  }

  /**
   * Waits up to `timeoutMs` for the first connection so the first calls do not fail. Wrong
   * credentials or db number throw (no retry fixes them); an unreachable server does not:
   * the gateway starts, health reports `error`, and the client keeps reconnecting.
   */
  async connect(timeoutMs: number): Promise<void> {
    if (this.redis.status === 'ready') return;
    const redis = this.redis;
    const fatal = await new Promise<unknown>((resolve) => {
      const finish = (v: unknown) => {
        clearTimeout(timer);
        redis.off('ready', onReady);
        redis.off('error', onError);
        resolve(v);
      };
      const onReady = () => finish(undefined);
      const onError = (err: unknown) => {
        const c = classify(err);
        if (c.kind === 'reply' && c.config) finish(err);
      };
      const timer = setTimeout(() => finish(undefined), timeoutMs);
      redis.on('ready', onReady);
      redis.on('error', onError);
    });
    if (fatal) {
      await this.close();
      const msg = redact(messageOf(fatal), this.startSecrets);
      const isDb = /DB index/i.test(msg);
      throw new ConfigError({
        field: isDb ? 'db' : 'password',
        envVar: isDb ? 'REDIS_DB' : 'REDIS_PASSWORD',
        settingKey: isDb ? 'cache.redis.db' : 'cache.redis.password',
        expected: `Redis at ${this.where} refused it: ${msg}`,
      });
    }
    if (redis.status !== 'ready') {
      this.ctx.logger.warn(
        `Redis at ${this.where} is not reachable yet (${this.lastError ?? redis.status}); cache calls fail until it is, reconnecting in the background`,
      );
    }
  }

  // The single-key calls are the hot path (every rate-limited request): plain promise chains
  // with handlers made once, no async frame per call. Bad input still arrives as a rejection.
  private readonly onGet = (v: Buffer | null): Uint8Array | undefined => {
    if (v === null) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    return toBytes(v);
  };
  private readonly failGet = this.failWith('get');
  private readonly failSet = this.failWith('set');
  private readonly failDelete = this.failWith('delete');
  private readonly failHas = this.failWith('has');
  private readonly failIncrement = this.failWith('increment');

  get(key: string): Promise<Uint8Array | undefined> {
    return this.redis.getBuffer(this.prefix + key).then(this.onGet, this.failGet);
  }

  set(key: string, value: Value, opts?: CacheSetOptions): Promise<void> {
    try {
      const ttl = ttlOf(opts);
      const k = this.prefix + key;
      const sent =
        ttl === undefined ? this.redis.set(k, toArg(value)) : ttl > 0 ? this.redis.set(k, toArg(value), 'PX', ttl) : this.redis.unlink(k);
      return sent.then(nothing, this.failSet);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  delete(key: string): Promise<boolean> {
    return this.redis.unlink(this.prefix + key).then(positive, this.failDelete);
  }

  has(key: string): Promise<boolean> {
    return this.redis.exists(this.prefix + key).then(positive, this.failHas);
  }

  increment(key: string, by = 1, opts?: CacheIncrementOptions): Promise<number> {
    try {
      if (!Number.isSafeInteger(by)) throw new InvalidInputError(`cache increment: "by" must be a whole number, got ${String(by)}`);
      const initial = opts?.initial;
      if (initial !== undefined && !Number.isSafeInteger(initial)) {
        throw new InvalidInputError(`cache increment: "initial" must be a whole number, got ${String(initial)}`);
      }
      const ttl = ttlOf(opts);
      return this.redis
        .apigateIncrement(this.prefix + key, by, ttl === undefined ? '' : String(ttl), initial ? String(initial) : '')
        .catch(this.failIncrement);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  async getMany(keys: string[]): Promise<(Uint8Array | undefined)[]> {
    if (keys.length === 0) return [];
    try {
      const values = await this.redis.mgetBuffer(keys.map((k) => this.prefix + k));
      return values.map((v) => {
        if (v === null) {
          this.misses++;
          return undefined;
        }
        this.hits++;
        return toBytes(v);
      });
    } catch (err) {
      throw this.fail('getMany', err);
    }
  }

  async setMany(entries: [string, Value][], opts?: CacheSetOptions): Promise<void> {
    const ttl = ttlOf(opts);
    if (entries.length === 0) return;
    try {
      if (ttl === undefined) {
        // No TTL: one MSET, atomic.
        await this.redis.mset(entries.flatMap(([k, v]) => [this.prefix + k, toArg(v)]));
      } else if (ttl === 0) {
        await this.redis.unlink(entries.map(([k]) => this.prefix + k));
      } else {
        // MSET has no TTL: one SET PX per key, sent together in one pipeline (one round trip).
        const pipeline = this.redis.pipeline();
        for (const [k, v] of entries) pipeline.set(this.prefix + k, toArg(v), 'PX', ttl);
        const results = (await pipeline.exec()) ?? [];
        const failed = results.find(([err]) => err);
        if (failed) throw failed[0];
      }
    } catch (err) {
      throw this.fail('setMany', err);
    }
  }

  /** SCAN (never KEYS, which blocks the server) for this provider's keys under `prefix`, UNLINKed page by page. */
  async clear(prefix = ''): Promise<number> {
    let removed = 0;
    try {
      for await (const keys of this.scan(prefix)) removed += await this.redis.unlink(keys);
      return removed;
    } catch (err) {
      throw this.fail('clear', err);
    }
  }

  /** Pages of this provider's keys under `prefix` (matched literally), without blocking Redis. */
  private async *scan(prefix: string): AsyncGenerator<string[]> {
    const pattern = `${escapeGlob(this.prefix + prefix)}*`;
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT);
      cursor = next;
      if (keys.length) yield keys;
    } while (cursor !== '0');
  }

  /**
   * hits/misses are this process's own `get`/`getMany` results. `keys` counts this provider's
   * prefix with SCAN (DBSIZE when the prefix is empty); `memoryBytes` is the whole server's
   * `used_memory` from INFO memory, since Redis does not account memory per prefix.
   */
  async stats(): Promise<CacheStats> {
    try {
      const [info, keys] = await Promise.all([this.redis.info('memory'), this.countKeys()]);
      const used = /^used_memory:(\d+)/m.exec(info)?.[1];
      return { hits: this.hits, misses: this.misses, keys, ...(used ? { memoryBytes: Number(used) } : {}) };
    } catch (err) {
      throw this.fail('stats', err);
    }
  }

  private async countKeys(): Promise<number> {
    if (this.prefix === '') return this.redis.dbsize();
    let n = 0;
    for await (const keys of this.scan('')) n += keys.length;
    return n;
  }

  /** One PING, bounded by the command timeout and the kernel's signal; no PING at all while disconnected. */
  async check(signal: AbortSignal): Promise<Health> {
    const started = performance.now();
    const elapsed = () => performance.now() - started;
    if (this.redis.status !== 'ready') return { status: 'error', latencyMs: elapsed(), error: this.notConnected() };
    let onAbort: (() => void) | undefined;
    try {
      await Promise.race([
        this.redis.ping(),
        new Promise<never>((_, reject) => {
          onAbort = () => reject(signal.reason ?? new Error('health check aborted'));
          if (signal.aborted) onAbort();
          else signal.addEventListener('abort', onAbort, { once: true });
        }),
      ]);
      const latencyMs = elapsed();
      // Answering, but so slowly that calls are close to their deadline.
      const slow = latencyMs > this.commandTimeoutMs / 2;
      return { status: slow ? 'degraded' : 'connected', latencyMs, detail: slow ? `${this.where} (slow PING)` : this.where };
    } catch (err) {
      return { status: 'error', latencyMs: elapsed(), error: this.describeFailure(err) };
    } finally {
      if (onAbort) signal.removeEventListener('abort', onAbort);
    }
  }

  /** Idempotent. QUIT when connected (bounded by the command timeout), then stop reconnecting. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        if (this.redis.status === 'ready') await this.redis.quit();
      } catch {
        // Closing anyway; nothing to report.
      } finally {
        this.redis.disconnect();
      }
    })();
    return this.closing;
  }

  private notConnected(): string {
    const status = this.redis.status;
    const why = this.lastError ?? (status === 'connecting' || status === 'connect' ? 'still connecting' : 'connection lost');
    return `Redis at ${this.where} is unreachable (${why}); reconnecting in the background`;
  }

  private describeFailure(err: unknown): string {
    const msg = messageOf(err);
    if (msg === 'Command timed out') return `Redis at ${this.where} did not answer within ${this.commandTimeoutMs} ms`;
    if (this.redis.status !== 'ready') return this.notConnected();
    return `Redis at ${this.where}: ${msg}`;
  }

  private failWith(operation: string): (err: unknown) => never {
    return (err) => {
      throw this.fail(operation, err);
    };
  }

  /** Maps what ioredis threw to a ProviderError; only the error path pays for this. */
  private fail(operation: string, err: unknown): Error {
    if (err instanceof ProviderError || err instanceof InvalidInputError) return err;
    const base = { capability: this.ctx.capability, provider: this.ctx.provider, operation, cause: err };
    if (this.closing) return new ProviderError({ ...base, retryable: false, code: 'PROVIDER_CLOSED', message: 'the cache is closed' });
    const c = classify(err);
    if (c.kind === 'reply') {
      return new ProviderError({
        ...base,
        retryable: c.retryable,
        code: `REDIS_${c.code}`,
        message: `Redis at ${this.where} answered: ${messageOf(err)}`,
      });
    }
    const timedOut = messageOf(err) === 'Command timed out';
    return new ProviderError({
      ...base,
      retryable: true,
      code: timedOut ? 'REDIS_TIMEOUT' : 'REDIS_UNAVAILABLE',
      message: this.describeFailure(err),
    });
  }
}
