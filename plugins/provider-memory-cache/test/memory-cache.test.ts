import { assertValidManifest, createForTest, describeCacheProvider } from '@apigate/provider-testkit';
import { describe, expect, it } from 'vitest';
import pkg from '../package.json' with { type: 'json' };
import provider from '../src/index.js';

describeCacheProvider(provider, { name: 'provider-memory-cache conformance' });

describe('provider-memory-cache', () => {
  it('has a valid manifest', () => {
    assertValidManifest(pkg, provider);
  });

  it('drops the oldest key past maxEntries', async () => {
    const { provider: cache } = await createForTest(provider, { maxEntries: '2' });
    await cache.set('a', '1');
    await cache.set('b', '2');
    await cache.set('c', '3');
    expect(await cache.has('a')).toBe(false);
    expect(await cache.has('c')).toBe(true);
    await cache.close();
  });
});
