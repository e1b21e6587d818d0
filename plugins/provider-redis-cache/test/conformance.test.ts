import { createForTest, describeCacheProvider } from '@apigate/provider-testkit';
import { afterAll } from 'vitest';
import provider from '../src/index.js';
import { deletePrefix, rawClient, SHARED_REDIS_URL, testPrefix } from './support/shared.js';

// The shared Redis on 127.0.0.1:6379 (REDIS_URL overrides), under a key prefix of this run only.
const keyPrefix = testPrefix('conformance');

describeCacheProvider({
  name: 'provider-redis-cache conformance (shared Redis)',
  create: async () => (await createForTest(provider, { url: SHARED_REDIS_URL, keyPrefix })).provider,
  features: provider.features,
});

afterAll(async () => {
  // The suite clears each test's keys; this catches anything a failed test left behind.
  const raw = rawClient();
  await deletePrefix(raw, keyPrefix);
  raw.disconnect();
});
