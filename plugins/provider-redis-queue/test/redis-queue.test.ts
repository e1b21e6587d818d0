import { emptySettings, resolveProviderConfig, settingsFromRecord } from '@apigate/kernel';
import { assertValidManifest, createForTest, describeQueueProvider } from '@apigate/provider-testkit';
import { afterAll, describe, expect, it, vi } from 'vitest';
import pkg from '../package.json' with { type: 'json' };
import provider, { fromBullId, toBullId } from '../src/index.js';
import { deletePrefix, rawClient, SHARED_REDIS_URL, testPrefix } from './support/shared.js';

const prefix = testPrefix('suite');
const redis = rawClient();

afterAll(async () => {
  await deletePrefix(redis, prefix);
  await redis.quit();
});

describe('provider-redis-queue', () => {
  it('has a valid manifest', () => {
    assertValidManifest(pkg, provider);
  });

  it('reads QUEUE_REDIS_URL before REDIS_URL, REDIS_PASSWORD as a secret, REDIS_DB, and the prefix setting', () => {
    const env = {
      QUEUE_REDIS_URL: 'redis://queue-host:6380',
      REDIS_URL: 'redis://cache-host:6379',
      REDIS_PASSWORD: 'pw-1234',
      REDIS_DB: '3',
    };
    const r = resolveProviderConfig(provider, env, settingsFromRecord({ 'queue.redis.prefix': 'gw-a' }));
    expect(r.config).toMatchObject({ url: 'redis://queue-host:6380', password: 'pw-1234', db: 3, prefix: 'gw-a' });
    expect(r.sources.url).toEqual({ kind: 'env', name: 'QUEUE_REDIS_URL' });
    expect(r.secretValues).toEqual(['pw-1234']);
    expect(resolveProviderConfig(provider, { REDIS_URL: 'redis://cache-host:6379' }, emptySettings).config).toMatchObject({
      url: 'redis://cache-host:6379',
      prefix: 'apigate',
    });
    expect(() => resolveProviderConfig(provider, { REDIS_URL: 'http://nope' }, emptySettings)).toThrow();
  });

  it('stores any job id under a BullMQ-safe id and reads it back', () => {
    for (const id of ['plain-id', 'order:42', '1234', '-5', '~tilde', '%41', 'naïve:日本', '0012']) {
      const bull = toBullId(id);
      expect(bull.includes(':'), id).toBe(false);
      expect(String(Number.parseInt(bull, 10)) === bull, id).toBe(false);
      expect(fromBullId(bull)).toBe(id);
    }
    expect(toBullId('plain-id')).toBe('plain-id');
  });
});

describe('close()', () => {
  it('lets publishes already under way finish, so nothing published is lost', async () => {
    const { provider: queue } = await createForTest(provider, { url: SHARED_REDIS_URL, prefix });
    const publishes = Array.from({ length: 50 }, (_v, n) => queue.publish('close-publish', { n }));
    const closed = queue.close();
    const results = await Promise.all(publishes);
    await closed;
    expect(new Set(results.map((r) => r.id)).size).toBe(50);
    await expect(queue.publish('close-publish', {})).rejects.toThrow(/closed/);

    const { provider: reader } = await createForTest(provider, { url: SHARED_REDIS_URL, prefix });
    expect((await reader.stats('close-publish')).waiting).toBe(50);
    await reader.purge('close-publish');
    await reader.close();
  });

  it('waits for jobs in flight on every worker, and they are recorded as done', async () => {
    const { provider: queue } = await createForTest(provider, { url: SHARED_REDIS_URL, prefix });
    await queue.publish('close-inflight', { n: 1 });
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let started!: () => void;
    const running = new Promise<void>((resolve) => {
      started = resolve;
    });
    let finished = false;
    queue.process('close-inflight', async () => {
      started();
      await released;
      finished = true;
    });
    await running;
    let closed = false;
    const closing = queue.close().then(() => {
      closed = true;
    });
    for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
    expect(closed, 'close() resolved while a job was still running').toBe(false);
    release();
    await closing;
    expect(finished).toBe(true);
    await queue.close(); // idempotent

    const { provider: reader } = await createForTest(provider, { url: SHARED_REDIS_URL, prefix });
    await vi.waitFor(async () => expect(await reader.stats('close-inflight')).toMatchObject({ active: 0, waiting: 0, completed: 1 }));
    await reader.purge('close-inflight');
    await reader.close();
  });
});

describeQueueProvider(provider, { name: 'redis queue conformance', config: { url: SHARED_REDIS_URL, prefix } });

describe('prefix', () => {
  it("keeps each gateway's jobs under its own prefix", async () => {
    const other = testPrefix('other');
    const { provider: a } = await createForTest(provider, { url: SHARED_REDIS_URL, prefix });
    const { provider: b } = await createForTest(provider, { url: SHARED_REDIS_URL, prefix: other });
    try {
      const r = await a.publish('shared-name', { from: 'a' });
      expect(await redis.exists(`${prefix}:shared-name:${r.id}`)).toBe(1);
      expect((await a.stats('shared-name')).waiting).toBe(1);
      expect((await b.stats('shared-name')).waiting, 'another prefix sees nothing').toBe(0);
    } finally {
      await a.purge('shared-name');
      await Promise.all([a.close(), b.close()]);
      await deletePrefix(redis, other);
    }
  });
});
