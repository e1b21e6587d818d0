import {
  type CacheProvider,
  ConfigError,
  InvalidInputError,
  ProviderError,
  resolveProviderConfig,
  settingsFromRecord,
  utf8,
} from '@apigate/kernel';
import { assertValidManifest, createForTest } from '@apigate/provider-testkit';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pkg from '../package.json' with { type: 'json' };
import provider from '../src/index.js';
import { deletePrefix, rawClient, SHARED_REDIS_URL, testPrefix } from './support/shared.js';

describe('provider-redis-cache: manifest and config', () => {
  it('has a valid manifest', () => {
    assertValidManifest(pkg, provider);
  });

  it('reads the spec env vars, with REDIS_KEY_PREFIX and the password kept as a secret', () => {
    const { config, sources, secretValues } = resolveProviderConfig(
      provider,
      { REDIS_URL: 'rediss://cache.internal:6380', REDIS_PASSWORD: 'pa55-word-very-secret', REDIS_DB: '3', REDIS_KEY_PREFIX: 'gw1:' },
      settingsFromRecord({}),
    );
    expect(config).toMatchObject({ url: 'rediss://cache.internal:6380', password: 'pa55-word-very-secret', db: 3, keyPrefix: 'gw1:' });
    expect(sources.url).toEqual({ kind: 'env', name: 'REDIS_URL' });
    expect(secretValues).toEqual(['pa55-word-very-secret']);
  });

  it('defaults to redis://localhost:6379, prefix apigate:cache: and a 500 ms command timeout', () => {
    const { config } = resolveProviderConfig(provider, {}, settingsFromRecord({}));
    expect(config).toMatchObject({ url: 'redis://localhost:6379', keyPrefix: 'apigate:cache:', commandTimeoutMs: 500 });
    expect(config.db).toBeUndefined();
  });

  it('takes settings keys cache.redis.* when no env var is set', () => {
    const { config, sources } = resolveProviderConfig(
      provider,
      {},
      settingsFromRecord({ 'cache.redis.key_prefix': 'tenant-a:', 'cache.redis.command_timeout_ms': '250', 'cache.redis.db': '1' }),
    );
    expect(config).toMatchObject({ keyPrefix: 'tenant-a:', commandTimeoutMs: 250, db: 1 });
    expect(sources.keyPrefix).toEqual({ kind: 'setting', key: 'cache.redis.key_prefix' });
  });

  it('rejects a URL that is not redis:// or rediss://, naming REDIS_URL and not echoing it', () => {
    let thrown: unknown;
    try {
      resolveProviderConfig(provider, { REDIS_URL: 'http://user:hunter2-secret@host', REDIS_DB: 'two' }, settingsFromRecord({}));
    } catch (e) {
      thrown = e;
    }
    const errors = thrown as ConfigError[];
    expect(errors.map((e) => e.envVar).sort()).toEqual(['REDIS_DB', 'REDIS_URL']);
    expect(errors.every((e) => e instanceof ConfigError)).toBe(true);
    expect(errors.map((e) => e.message).join('\n')).not.toContain('hunter2-secret');
  });
});

describe('provider-redis-cache against the shared Redis', () => {
  const prefix = testPrefix('unit');
  let raw: Redis;
  let cache: CacheProvider;
  let other: CacheProvider;

  beforeAll(async () => {
    raw = rawClient();
    cache = (await createForTest(provider, { url: SHARED_REDIS_URL, keyPrefix: `${prefix}a:` })).provider;
    other = (await createForTest(provider, { url: SHARED_REDIS_URL, keyPrefix: `${prefix}b:` })).provider;
  });

  afterAll(async () => {
    await cache?.close();
    await other?.close();
    await deletePrefix(raw, prefix);
    raw.disconnect();
  });

  it('stores keys under its prefix, so two gateways with different prefixes do not see each other', async () => {
    await cache.set('user:1', 'alpha');
    await other.set('user:1', 'beta');
    expect(await raw.get(`${prefix}a:user:1`)).toBe('alpha');
    expect(utf8.decode((await other.get('user:1'))!)).toBe('beta');
    expect(await other.clear()).toBe(1);
    expect(utf8.decode((await cache.get('user:1'))!)).toBe('alpha');
  });

  it('keeps bytes exact, including zero bytes and invalid UTF-8', async () => {
    const bytes = new Uint8Array([0, 255, 254, 0, 1, 0xc3]);
    // A view into a bigger buffer: only the viewed bytes must be stored.
    const view = new Uint8Array([9, 9, ...bytes, 9]).subarray(2, 2 + bytes.length);
    await cache.set('bin', view);
    const back = await cache.get('bin');
    expect(back).toBeInstanceOf(Uint8Array);
    expect([...back!]).toEqual([...bytes]);
  });

  it('sets the TTL on the key with PX', async () => {
    await cache.set('ttl', 'v', { ttlMs: 60_000 });
    const pttl = await raw.pttl(`${prefix}a:ttl`);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(60_000);
    await cache.setMany(
      [
        ['m1', 'x'],
        ['m2', 'y'],
      ],
      { ttlMs: 30_000 },
    );
    for (const k of ['m1', 'm2']) expect(await raw.pttl(`${prefix}a:${k}`)).toBeGreaterThan(0);
    await cache.setMany([['m3', 'z']]);
    expect(await raw.pttl(`${prefix}a:m3`)).toBe(-1);
  });

  it('increment applies the TTL only when it creates the key', async () => {
    expect(await cache.increment('hits', 2, { ttlMs: 60_000 })).toBe(2);
    // Make the TTL recognisably different, then increment again with a TTL: it must not be reset.
    await raw.pexpire(`${prefix}a:hits`, 5_000_000);
    expect(await cache.increment('hits', 3, { ttlMs: 60_000 })).toBe(5);
    expect(await raw.pttl(`${prefix}a:hits`)).toBeGreaterThan(60_000);
    // A key set without TTL keeps having none.
    await cache.set('plain', '10');
    expect(await cache.increment('plain', 1, { ttlMs: 60_000 })).toBe(11);
    expect(await raw.pttl(`${prefix}a:plain`)).toBe(-1);
    expect(await cache.increment('neg', -4)).toBe(-4);
  });

  it('clear(prefix) matches the prefix literally, glob characters included', async () => {
    await cache.setMany([
      ['g*1', '1'],
      ['g*2', '2'],
      ['gX1', '3'],
      ['g[a]', '4'],
      ['ga', '5'],
      ['g?', '6'],
      ['gZ', '7'],
      ['g\\x', '8'],
    ]);
    expect(await cache.clear('g*')).toBe(2);
    expect(await cache.clear('g[a]')).toBe(1);
    expect(await cache.clear('g?')).toBe(1);
    expect(await cache.clear('g\\')).toBe(1);
    expect((await cache.getMany(['gX1', 'ga', 'gZ'])).map((v) => v && utf8.decode(v))).toEqual(['3', '5', '7']);
  });

  it('clear removes thousands of keys in SCAN batches and counts them exactly', async () => {
    const entries = Array.from({ length: 2500 }, (_, i): [string, string] => [`bulk:${i}`, String(i)]);
    await cache.setMany(entries, { ttlMs: 120_000 });
    await cache.set('bulkier', 'not under bulk:');
    expect(await cache.clear('bulk:')).toBe(2500);
    expect(await raw.exists(`${prefix}a:bulk:7`, `${prefix}a:bulkier`)).toBe(1);
  });

  it('stats counts hits and misses of this process, keys of its prefix only, and server memory', async () => {
    const fresh = (await createForTest(provider, { url: SHARED_REDIS_URL, keyPrefix: `${prefix}s:` })).provider;
    try {
      await fresh.setMany([
        ['a', '1'],
        ['b', '2'],
        ['c', '3'],
      ]);
      await fresh.get('a');
      await fresh.get('missing');
      await fresh.getMany(['b', 'c', 'nope']);
      const s = await fresh.stats();
      expect(s).toMatchObject({ hits: 3, misses: 2, keys: 3 });
      expect(s.memoryBytes).toBeGreaterThan(0);
    } finally {
      await fresh.close();
    }
  });

  it('reports a wrong value type as a final (non-retryable) ProviderError', async () => {
    await cache.set('text', 'not a number');
    const err = await cache.increment('text').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ retryable: false, operation: 'increment', code: 'REDIS_ERR' });
    await raw.rpush(`${prefix}a:list`, 'x');
    await expect(cache.get('list')).rejects.toMatchObject({ retryable: false, code: 'REDIS_WRONGTYPE' });
  });

  it('rejects (never throws) bad input as InvalidInputError, before Redis sees it', async () => {
    const fractional = cache.increment('frac', 1.5);
    await expect(fractional).rejects.toBeInstanceOf(InvalidInputError);
    await expect(cache.set('nan', 'v', { ttlMs: Number.NaN })).rejects.toBeInstanceOf(InvalidInputError);
    expect(await raw.exists(`${prefix}a:frac`, `${prefix}a:nan`)).toBe(0);
  });

  it('check reports connected with the address and no credentials', async () => {
    const h = await cache.check(AbortSignal.timeout(10_000));
    expect(h.status).toBe('connected');
    expect(h.detail).toMatch(/^redis:\/\/[^@]+:\d+\/\d+$/);
  });
});
