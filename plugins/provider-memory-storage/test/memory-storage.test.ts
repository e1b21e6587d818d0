import { Readable } from 'node:stream';
import { assertValidManifest, createForTest, describeStorageProvider, streamToBuffer } from '@apigate/provider-testkit';
import { describe, expect, it } from 'vitest';
import pkg from '../package.json' with { type: 'json' };
import provider from '../src/index.js';

describeStorageProvider(provider, { name: 'provider-memory-storage conformance' });

describe('provider-memory-storage', () => {
  it('has a valid manifest', () => {
    assertValidManifest(pkg, provider);
  });

  it('refuses objects past maxBytes, counting overwrites and deletes', async () => {
    const { provider: store } = await createForTest(provider, { maxBytes: '10' });
    await store.put('a', '123456');
    await expect(store.put('b', '12345')).rejects.toMatchObject({
      name: 'ProviderError',
      retryable: false,
      message: expect.stringContaining('MEMORY_STORAGE_MAX_BYTES'),
    });
    await store.put('a', '1234567890');
    await expect(store.put('c', Readable.from([Buffer.alloc(6), Buffer.alloc(6)]))).rejects.toThrow(/at most 10 bytes/);
    expect(await store.delete('a')).toBe(true);
    await store.put('b', '12345');
    expect((await store.check(AbortSignal.timeout(1000))).detail).toBe('1 objects, 5 bytes');
    await store.close();
  });

  it('rejects a stream whose length differs from contentLength and keeps nothing', async () => {
    const { provider: store } = await createForTest(provider);
    await expect(store.put('short', Readable.from([Buffer.from('abc')]), { contentLength: 4 })).rejects.toThrow(
      /3 bytes but contentLength said 4/,
    );
    expect(await store.head('short')).toBeUndefined();
    await store.close();
  });

  it('rejects a range that starts past the end as the caller’s mistake', async () => {
    const { provider: store } = await createForTest(provider);
    await store.put('r', 'abc');
    await expect(store.get('r', { range: { start: 3 } })).rejects.toMatchObject({ name: 'InvalidInputError' });
    await expect(store.get('r', { range: { start: 2, end: 1 } })).rejects.toMatchObject({ name: 'InvalidInputError' });
    const got = await store.get('r', { range: { start: 1 } });
    expect((await streamToBuffer(got!.body)).toString()).toBe('bc');
    await store.close();
  });

  it('keeps paging correctly when objects are added and removed between pages', async () => {
    const { provider: store } = await createForTest(provider);
    for (const key of ['p/1', 'p/3', 'p/5', 'p/7']) await store.put(key, key);
    const first = await store.list({ prefix: 'p/', limit: 2 });
    expect(first.items.map((i) => i.key)).toEqual(['p/1', 'p/3']);
    await store.put('p/0', 'before the cursor');
    await store.put('p/4', 'after the cursor');
    await store.delete('p/1');
    const rest = await store.list({ prefix: 'p/', cursor: first.cursor! });
    expect(rest.items.map((i) => i.key)).toEqual(['p/4', 'p/5', 'p/7']);
    expect(rest.cursor).toBeUndefined();
    await store.close();
  });
});
