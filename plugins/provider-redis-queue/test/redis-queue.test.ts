import { assertValidManifest, createForTest, describeQueueProvider } from '@apigate/provider-testkit';
import { afterAll, describe, expect, it } from 'vitest';
import pkg from '../package.json' with { type: 'json' };
import provider from '../src/index.js';
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
});

describeQueueProvider({
  name: 'redis queue conformance',
  create: async () => (await createForTest(provider, { url: SHARED_REDIS_URL, prefix })).provider,
  features: provider.features,
});

describe('keys', () => {
  it('lives under its prefix only', async () => {
    const { provider: queue } = await createForTest(provider, { url: SHARED_REDIS_URL, prefix });
    await queue.publish('keys-check', { a: 1 });
    const [, keys] = await redis.scan('0', 'MATCH', `${prefix}:keys-check:*`, 'COUNT', 1000);
    expect(keys.length).toBeGreaterThan(0);
    await queue.purge('keys-check');
    await queue.close();
  });
});
