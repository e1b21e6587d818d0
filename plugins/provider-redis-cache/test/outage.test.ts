import { type CacheProvider, ConfigError, isRetryable, type KernelEvent, ProviderError, utf8 } from '@apigate/kernel';
import { createForTest, PrivateRedis } from '@apigate/provider-testkit';
import { afterEach, describe, expect, it, vi } from 'vitest';
import provider from '../src/index.js';

const PASSWORD = 'outage-test-password-7f3a9c';
/**
 * "Fails fast" means: far sooner than this, with no queue holding the call until Redis is
 * back. The bound is loose on purpose (the default command timeout is 500 ms) so a busy
 * machine cannot make it flaky; a call held in an offline queue would never settle at all.
 */
const FAIL_BOUND_MS = 5_000;
const RECOVERY = { timeout: 30_000, interval: 100 };

/** Awaits `p` and returns its rejection, failing if it resolves or takes longer than FAIL_BOUND_MS. */
async function failure(p: Promise<unknown>, what: string): Promise<ProviderError> {
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    p.then(
      () => ({ resolved: true as const }),
      (error: unknown) => ({ error }),
    ),
    new Promise<{ late: true }>((resolve) => {
      timer = setTimeout(() => resolve({ late: true }), FAIL_BOUND_MS);
    }),
  ]).finally(() => clearTimeout(timer));
  expect(outcome, `${what} should fail within ${FAIL_BOUND_MS} ms`).not.toHaveProperty('late');
  expect(outcome, `${what} should fail while Redis is down`).not.toHaveProperty('resolved');
  const err = (outcome as { error: unknown }).error;
  expect(err, what).toBeInstanceOf(ProviderError);
  expect((err as ProviderError).retryable, `${what}: ${(err as Error).message}`).toBe(true);
  expect(isRetryable(err)).toBe(true);
  expect((err as Error).message).not.toContain(PASSWORD);
  return err as ProviderError;
}

const check = (cache: CacheProvider) => cache.check(AbortSignal.timeout(FAIL_BOUND_MS));

/** Every operation of the contract, each expected to fail retryably while Redis is away. */
const everyOperation = (cache: CacheProvider): [string, () => Promise<unknown>][] => [
  ['get', () => cache.get('k')],
  ['set', () => cache.set('k', 'v', { ttlMs: 10_000 })],
  ['delete', () => cache.delete('k')],
  ['has', () => cache.has('k')],
  ['increment', () => cache.increment('n', 1, { ttlMs: 10_000 })],
  ['getMany', () => cache.getMany(['a', 'b'])],
  [
    'setMany',
    () =>
      cache.setMany(
        [
          ['a', '1'],
          ['b', '2'],
        ],
        { ttlMs: 10_000 },
      ),
  ],
  ['clear', () => cache.clear('x')],
  ['stats', () => cache.stats()],
];

async function expectWorking(cache: CacheProvider, tag: string): Promise<void> {
  await cache.set(`w:${tag}`, tag, { ttlMs: 60_000 });
  expect(utf8.decode((await cache.get(`w:${tag}`))!)).toBe(tag);
  // The first increment after a restart also proves the script is reloaded (NOSCRIPT fallback).
  expect(await cache.increment(`n:${tag}`, 5, { ttlMs: 60_000 })).toBe(5);
}

describe('provider-redis-cache when Redis goes away (private redis-server)', () => {
  const servers: PrivateRedis[] = [];
  const caches: CacheProvider[] = [];

  afterEach(async () => {
    await Promise.all(caches.splice(0).map((c) => c.close()));
    await Promise.all(servers.splice(0).map((s) => s.kill()));
  });

  async function setup(extra: Record<string, string> = {}) {
    const server = await PrivateRedis.start(['--requirepass', PASSWORD]);
    servers.push(server);
    const t = await createForTest(provider, { url: server.url, password: PASSWORD, connectTimeoutMs: '1000', ...extra });
    caches.push(t.provider);
    return { server, cache: t.provider, events: t.events };
  }

  it(
    'fails fast and retryably while Redis is dead, reports error, and recovers by itself when it is back',
    { timeout: 60_000 },
    async () => {
      const { server, cache, events } = await setup();
      await expectWorking(cache, 'before');
      expect((await check(cache)).status).toBe('connected');

      await server.kill();
      for (const [name, call] of everyOperation(cache)) await failure(call(), name);
      const h = await check(cache);
      expect(h.status).toBe('error');
      expect(h.error).toContain(`127.0.0.1:${server.port}`);
      expect(h.error).not.toContain(PASSWORD);

      const errors = events.filter((e): e is Extract<KernelEvent, { type: 'provider.error' }> => e.type === 'provider.error');
      expect(errors.length).toBeGreaterThanOrEqual(everyOperation(cache).length);
      expect(errors.every((e) => e.retryable && !e.message.includes(PASSWORD))).toBe(true);

      await server.start();
      await vi.waitFor(async () => expect((await check(cache)).status).toBe('connected'), RECOVERY);
      // No offline queue: writes that were reported as failed were not sent later either.
      expect(await cache.getMany(['k', 'n', 'a', 'b'])).toEqual([undefined, undefined, undefined, undefined]);
      await expectWorking(cache, 'after');
    },
  );

  it('fails with a retryable timeout when Redis hangs, and recovers when it answers again', { timeout: 60_000 }, async () => {
    const { server, cache } = await setup({ commandTimeoutMs: '300' });
    await expectWorking(cache, 'before');

    server.freeze();
    try {
      const err = await failure(cache.get('k'), 'get on a frozen server');
      expect(err.code).toBe('REDIS_TIMEOUT');
      expect(err.message).toContain('did not answer within 300 ms');
      await failure(cache.increment('n'), 'increment on a frozen server');
      expect((await check(cache)).status).toBe('error');
    } finally {
      server.thaw();
    }
    await vi.waitFor(async () => expect((await check(cache)).status).toBe('connected'), RECOVERY);
    // Late replies to the timed-out calls must not be handed to later calls.
    await expectWorking(cache, 'after');
    expect(await cache.get('w:before').then((v) => v && utf8.decode(v))).toBe('before');
  });

  it('starts while Redis is not up yet, then connects by itself once it is', { timeout: 60_000 }, async () => {
    const server = await PrivateRedis.start();
    servers.push(server);
    await server.kill();
    const { provider: cache } = await createForTest(provider, { url: server.url, connectTimeoutMs: '300' });
    caches.push(cache);
    expect((await check(cache)).status).toBe('error');
    await failure(cache.get('k'), 'get before Redis is up');

    await server.start();
    await vi.waitFor(async () => expect((await check(cache)).status).toBe('connected'), RECOVERY);
    await expectWorking(cache, 'late');
  });

  it('refuses to start with a wrong password, naming REDIS_PASSWORD and not echoing it', async () => {
    const server = await PrivateRedis.start(['--requirepass', PASSWORD]);
    servers.push(server);
    const wrong = 'definitely-the-wrong-password';
    const err = await createForTest(provider, { url: server.url, password: wrong }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).envVar).toBe('REDIS_PASSWORD');
    expect((err as Error).message).toMatch(/WRONGPASS|invalid/i);
    expect((err as Error).message).not.toContain(wrong);
  });

  it('refuses to start with a db number the server does not have, naming REDIS_DB', async () => {
    const server = await PrivateRedis.start(['--databases', '4']);
    servers.push(server);
    const err = await createForTest(provider, { url: server.url, db: '7' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect(err).toMatchObject({ envVar: 'REDIS_DB', settingKey: 'cache.redis.db' });
  });

  it('accepts the password inside the URL and a db number, and keeps both out of health output', async () => {
    const server = await PrivateRedis.start(['--requirepass', PASSWORD]);
    servers.push(server);
    const { provider: cache } = await createForTest(provider, { url: `redis://:${PASSWORD}@127.0.0.1:${server.port}/2` });
    caches.push(cache);
    await cache.set('in-db-2', 'yes');
    const h = await check(cache);
    expect(h).toMatchObject({ status: 'connected', detail: `redis://127.0.0.1:${server.port}/2` });
    expect(JSON.stringify(h)).not.toContain(PASSWORD);
  });
});
