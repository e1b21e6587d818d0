import { describeCacheProvider } from '@apigate/provider-testkit';
import provider from '../src/index.js';
import { deletePrefix, rawClient, SHARED_REDIS_URL, testPrefix } from './support/shared.js';

// The shared Redis on 127.0.0.1:6379 (REDIS_URL overrides), under a key prefix of this run only.
const keyPrefix = testPrefix('conformance');

describeCacheProvider(provider, {
  name: 'provider-redis-cache conformance (shared Redis)',
  config: { url: SHARED_REDIS_URL, keyPrefix },
  // The suite clears each test's keys; this catches anything a failed test left behind.
  afterAll: async () => {
    const raw = rawClient();
    await deletePrefix(raw, keyPrefix);
    raw.disconnect();
  },
});
