import { describe, expect, it } from 'vitest';
import {
  CAPABILITIES,
  CAPABILITY_OPERATIONS,
  type CapabilityName,
  checkOne,
  describeError,
  type EmailMessage,
  instrument,
  InvalidInputError,
  type KernelEvent,
  maskSecret,
  type ProviderInstance,
  ProviderError,
  redact,
  sendEach,
  serializeError,
  WebhookSignatureError,
} from '../src/index.js';

function wrap<T extends object>(obj: T, capability: 'cache' | 'storage' = 'cache') {
  const events: KernelEvent[] = [];
  const { proxy, metrics } = instrument(obj, { capability, provider: 'x', secrets: ['s3cr3t-value-1234'], emit: (e) => events.push(e) });
  return { proxy, metrics, events };
}

describe('instrument', () => {
  it('counts calls and passes results through', async () => {
    const { proxy, metrics } = wrap({
      async get(k: string) {
        return k.toUpperCase();
      },
    });
    expect(await proxy.get('a')).toBe('A');
    expect(await proxy.get('b')).toBe('B');
    expect(metrics.get).toMatchObject({ calls: 2, errors: 0 });
  });

  it('raises failures as ProviderError with retryable classified, secrets masked, and a provider.error event', async () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED with s3cr3t-value-1234'), { code: 'ECONNREFUSED' });
    const { proxy, events, metrics } = wrap({
      async a() {
        throw refused;
      },
      async b() {
        throw Object.assign(new Error('bad key'), { statusCode: 401 });
      },
      async c() {
        throw Object.assign(new Error('slow down'), { status: 429 });
      },
      d() {
        throw new Error('sync failure');
      },
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
    const { proxy, events } = wrap({
      async parse() {
        throw new WebhookSignatureError('bad signature');
      },
    });
    await expect(proxy.parse()).rejects.toBeInstanceOf(WebhookSignatureError);
    expect(events).toHaveLength(0);
  });

  it('rejects unsafe storage keys before the provider sees them', async () => {
    const seen: string[] = [];
    const { proxy } = wrap(
      {
        async head(k: string) {
          seen.push(k);
        },
        async list(o: { prefix?: string }) {
          seen.push(o.prefix ?? '');
        },
      },
      'storage',
    );
    for (const bad of ['../x', 'a/../../b', '/abs', 'a\u0000b', 'a\nb', '', 'a\\b', './a']) {
      await expect(proxy.head(bad)).rejects.toBeInstanceOf(InvalidInputError);
    }
    await expect(proxy.list({ prefix: '../' })).rejects.toBeInstanceOf(InvalidInputError);
    await proxy.head('ok/nested/ключ.txt');
    await proxy.list({ prefix: 'ok/' });
    expect(seen).toEqual(['ok/nested/ключ.txt', 'ok/']);
  });
});

describe('instrument: what every provider gets without writing it', () => {
  // Not registered with the kernel: only the instance's own secret list can mask it.
  const SECRET = 'sk_live_only-this-instance-knows-1234';
  const wrapAs = <T extends object>(capability: CapabilityName, obj: T) => {
    const events: KernelEvent[] = [];
    const { proxy, metrics } = instrument(obj, { capability, provider: 'p', secrets: [SECRET], emit: (e) => events.push(e) });
    return { proxy, metrics, events };
  };

  it('masks the secrets in the message and the whole cause chain of whatever the provider throws', async () => {
    const root = new Error(`socket said ${SECRET}`);
    const sdk = Object.assign(new Error(`request with key ${SECRET} failed`, { cause: root }), { status: 401 });
    const own = new ProviderError({
      capability: 'email',
      provider: 'p',
      operation: 'send',
      retryable: false,
      message: `rejected ${SECRET}`,
      cause: sdk,
    });
    const { proxy, events } = wrapAs('email', {
      async send() {
        throw sdk;
      },
      async sendBulk() {
        throw own;
      },
    });
    for (const err of [await proxy.send().catch((e: unknown) => e), await proxy.sendBulk().catch((e: unknown) => e)]) {
      expect(err).toBeInstanceOf(ProviderError);
      // serializeError/describeError are given no secrets here: the error itself must be clean.
      const shown = `${JSON.stringify(serializeError(err))} ${describeError(err)} ${(err as Error).stack}`;
      expect(shown).not.toContain(SECRET);
      expect(shown).toContain(maskSecret(SECRET));
    }
    expect(await proxy.send().catch((e: Error) => e.cause)).toBe(sdk); // masked in place: still the SDK's error
    expect(sdk.message).toBe(`request with key ${maskSecret(SECRET)} failed`);
    expect(root.message).not.toContain(SECRET);
    expect(JSON.stringify(events)).not.toContain(SECRET);
  });

  it('masks caller errors too, and still passes them through as they are', async () => {
    const { proxy } = wrapAs('cache', {
      async get() {
        throw new InvalidInputError(`bad key ${SECRET}`);
      },
    });
    const err = await proxy.get().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidInputError);
    expect((err as Error).message).toBe(`bad key ${maskSecret(SECRET)}`);
  });

  it('rejects every capability method after close() with ProviderError PROVIDER_CLOSED, and closes the provider once', async () => {
    for (const capability of CAPABILITIES) {
      const ops = CAPABILITY_OPERATIONS[capability] as Record<string, 'async' | 'sync' | 'iterable'>;
      const called: string[] = [];
      let closes = 0;
      const impl: Record<string, unknown> = {
        async check() {
          return { status: 'connected' };
        },
        async close() {
          closes++;
        },
      };
      for (const op of Object.keys(ops))
        impl[op] = () => {
          called.push(op);
          return Promise.resolve();
        };
      const { proxy, events } = wrapAs(capability, impl);
      const p = proxy as Record<string, (...a: unknown[]) => unknown> & { close(): Promise<void> };
      await p.close();
      await expect(p.close()).resolves.toBeUndefined();
      expect(closes, `${capability}: provider close() calls`).toBe(1);
      for (const [op, shape] of Object.entries(ops)) {
        let err: unknown;
        if (shape === 'sync') {
          try {
            p[op]!('q', async () => undefined);
          } catch (e) {
            err = e;
          }
        } else if (shape === 'iterable') {
          err = await (async () => {
            for await (const _ of p[op]!({}) as AsyncIterable<unknown>) return undefined;
          })().catch((e: unknown) => e);
        } else {
          const r = p[op]!('k', 'v');
          expect(r, `${capability}.${op} after close returns a promise`).toBeInstanceOf(Promise);
          err = await (r as Promise<unknown>).catch((e: unknown) => e);
        }
        expect(err, `${capability}.${op} after close`).toBeInstanceOf(ProviderError);
        expect(err, `${capability}.${op} after close`).toMatchObject({
          code: 'PROVIDER_CLOSED',
          capability,
          provider: 'p',
          operation: op,
          retryable: false,
        });
      }
      expect(called, `${capability}: methods the closed provider saw`).toEqual([]);
      expect(events.filter((e) => e.type === 'provider.error').length).toBe(Object.keys(ops).length);
    }
  });

  it('fills latencyMs when a check leaves it out, masks its texts, and turns a throwing check into an error health', async () => {
    let fail = false;
    const { proxy } = wrapAs<ProviderInstance>('cache', {
      async check() {
        await new Promise((r) => setTimeout(r, 5));
        if (fail) throw new Error(`PING with ${SECRET} refused`);
        return { status: 'connected' as const, detail: `as ${SECRET}` };
      },
      async close() {},
    });
    const ok = await proxy.check(AbortSignal.timeout(1000));
    expect(ok.status).toBe('connected');
    expect(ok.latencyMs).toBeGreaterThan(0);
    expect(ok.detail).toBe(`as ${maskSecret(SECRET)}`);
    fail = true;
    const bad = await proxy.check(AbortSignal.timeout(1000));
    expect(bad).toMatchObject({ status: 'error', error: `PING with ${maskSecret(SECRET)} refused` });
    expect(bad.latencyMs).toBeGreaterThan(0);
    await proxy.close();
    expect(await proxy.check(AbortSignal.timeout(1000))).toMatchObject({ status: 'error', error: 'the provider is closed' });
    // The kernel's health aggregation measures a raw instance's check the same way.
    const h = await checkOne(
      {
        capability: 'cache',
        provider: 'p',
        secrets: [SECRET],
        instance: { check: async () => ({ status: 'degraded' }), close: async () => {} },
      },
      1000,
    );
    expect(h.latencyMs).toBeGreaterThanOrEqual(0);
  });

  it('sendEach sends every message, reports failures by index in order, and the kernel masks them', async () => {
    const msg = (subject: string): EmailMessage => ({ to: 'a@example.com', subject, text: 'x' });
    const sent: string[] = [];
    const send = async (m: EmailMessage) => {
      await new Promise((r) => setTimeout(r, m.subject === 'b' ? 10 : 1));
      if (m.subject.startsWith('bad')) throw new Error(`${m.subject}: refused for ${SECRET}`);
      sent.push(m.subject);
    };
    const msgs = [msg('bad-0'), msg('b'), msg('bad-2'), msg('d')];
    expect(await sendEach([], send)).toEqual({ sent: 0, failed: [] });
    const { proxy } = wrapAs('email', { sendBulk: (m: EmailMessage[]) => sendEach(m, send, { concurrency: 3 }) });
    const result = await proxy.sendBulk(msgs);
    expect(result.sent).toBe(2);
    expect(result.failed).toEqual([
      { index: 0, error: `bad-0: refused for ${maskSecret(SECRET)}` },
      { index: 2, error: `bad-2: refused for ${maskSecret(SECRET)}` },
    ]);
    expect(sent.sort()).toEqual(['b', 'd']);
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
