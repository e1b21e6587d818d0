import { describe, expect, it } from 'vitest';
import { instrument, InvalidInputError, type KernelEvent, ProviderError, redact, maskSecret, WebhookSignatureError } from '../src/index.js';

function wrap<T extends object>(obj: T, capability: 'cache' | 'storage' = 'cache') {
  const events: KernelEvent[] = [];
  const { proxy, metrics } = instrument(obj, { capability, provider: 'x', secrets: ['s3cr3t-value-1234'], emit: (e) => events.push(e) });
  return { proxy, metrics, events };
}

describe('instrument', () => {
  it('counts calls and passes results through', async () => {
    const { proxy, metrics } = wrap({ async get(k: string) { return k.toUpperCase(); } });
    expect(await proxy.get('a')).toBe('A');
    expect(await proxy.get('b')).toBe('B');
    expect(metrics.get).toMatchObject({ calls: 2, errors: 0 });
  });

  it('raises failures as ProviderError with retryable classified, secrets masked, and a provider.error event', async () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED with s3cr3t-value-1234'), { code: 'ECONNREFUSED' });
    const { proxy, events, metrics } = wrap({
      async a() { throw refused; },
      async b() { throw Object.assign(new Error('bad key'), { statusCode: 401 }); },
      async c() { throw Object.assign(new Error('slow down'), { status: 429 }); },
      d() { throw new Error('sync failure'); },
    });
    const a = await proxy.a().catch((e: unknown) => e);
    expect(a).toBeInstanceOf(ProviderError);
    expect(a).toMatchObject({ capability: 'cache', provider: 'x', operation: 'a', retryable: true, code: 'ECONNREFUSED' });
    expect((a as Error).message).not.toContain('s3cr3t-value-1234');
    expect((a as Error).cause).toBe(refused);
    expect(await proxy.b().catch((e: ProviderError) => [e.retryable, e.status])).toEqual([false, 401]);
    expect(await proxy.c().catch((e: ProviderError) => e.retryable)).toBe(true);
    expect(() => proxy.d()).toThrow(ProviderError);
    expect(events.filter((e) => e.type === 'provider.error').map((e) => e.operation)).toEqual(['a', 'b', 'c', 'd']);
    expect(metrics.a).toMatchObject({ calls: 1, errors: 1 });
  });

  it('passes caller errors through unwrapped and without an event', async () => {
    const { proxy, events } = wrap({ async parse() { throw new WebhookSignatureError('bad signature'); } });
    await expect(proxy.parse()).rejects.toBeInstanceOf(WebhookSignatureError);
    expect(events).toHaveLength(0);
  });

  it('rejects unsafe storage keys before the provider sees them', async () => {
    const seen: string[] = [];
    const { proxy } = wrap({ async head(k: string) { seen.push(k); }, async list(o: { prefix?: string }) { seen.push(o.prefix ?? ''); } }, 'storage');
    for (const bad of ['../x', 'a/../../b', '/abs', 'a\u0000b', 'a\nb', '', 'a\\b', './a']) {
      await expect(proxy.head(bad)).rejects.toBeInstanceOf(InvalidInputError);
    }
    await expect(proxy.list({ prefix: '../' })).rejects.toBeInstanceOf(InvalidInputError);
    await proxy.head('ok/nested/ключ.txt');
    await proxy.list({ prefix: 'ok/' });
    expect(seen).toEqual(['ok/nested/ключ.txt', 'ok/']);
  });
});

describe('secrets', () => {
  it('masks known secrets and URL passwords', () => {
    expect(maskSecret('short')).toBe('****');
    expect(maskSecret('sk_test_abcdefghijklmnop')).toBe('sk_t…mnop');
    expect(redact('redis://user:pa55word@host:6379/0 failed')).toBe('redis://user:****@host:6379/0 failed');
    expect(redact('key sk_test_abcdefghijklmnop bad', ['sk_test_abcdefghijklmnop'])).toBe('key sk_t…mnop bad');
  });
});
