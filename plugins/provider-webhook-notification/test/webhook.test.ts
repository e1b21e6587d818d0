import { readFileSync } from 'node:fs';
import { type Notification, type NotificationProvider, WebhookSignatureError } from '@apigate/kernel';
import {
  assertValidManifest,
  describeNotificationProvider,
  providerErrorOf as providerErrorWithout,
  startSilentServer,
  testInstances,
} from '@apigate/provider-testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import pkg from '../package.json' with { type: 'json' };
import provider, { signWebhookPayload, verifyWebhookSignature } from '../src/index.js';
import { type Delivery, type Receiver, startReceiver } from './receiver.js';

const SECRET = 'whsec-test-0123456789abcdef0123456789';
let receiver: Receiver;
const instances = testInstances(provider);

beforeAll(async () => {
  receiver = await startReceiver();
});
afterAll(async () => {
  await instances.closeAll();
  await receiver?.close();
});
afterEach(() => {
  vi.useRealTimers();
});

const webhook = (over: Record<string, string> = {}): Promise<NotificationProvider> =>
  instances.make({ url: `${receiver.origin}/hook`, secret: SECRET, ...over });

const notification = (over: Partial<Notification> = {}): Notification => ({
  id: `ntf_${Math.random().toString(36).slice(2)}`,
  event: 'provider.error',
  title: 'Stripe is failing',
  text: 'Payments fail with 502.',
  severity: 'error',
  fields: { provider: 'stripe', failures: 17 },
  url: 'https://apigate.example.com/admin/providers',
  occurredAt: new Date('2026-03-04T05:06:07.000Z'),
  ...over,
});

/** Sends one notification and returns the request the receiver got for it. */
async function deliver(n = notification()): Promise<Delivery> {
  await (await webhook()).notify(n);
  return receiver.deliveries.find((d) => d.headers['x-apigate-event-id'] === n.id)!;
}

/** The ProviderError `p` rejects with; the signing secret must appear nowhere in it. */
const providerErrorOf = (p: Promise<unknown>) => providerErrorWithout(p, [SECRET]);

/** The README's verification snippet, run exactly as published. */
type VerifySnippet = (rawBody: string | Buffer, headers: Record<string, unknown>, secret: string, toleranceSeconds?: number) => boolean;
const snippetUrl = new URL('../examples/verify.mjs', import.meta.url);
const loadSnippet = async (): Promise<VerifySnippet> => (await import(snippetUrl.href)).verifyApigateWebhook;

describe('provider-webhook-notification', () => {
  it('has a valid manifest', () => {
    assertValidManifest(pkg, provider);
  });

  describeNotificationProvider(provider, {
    name: 'conformance (undici POSTs to a real HTTP receiver)',
    config: () => ({ url: `${receiver.origin}/hook` }),
    secrets: { secret: SECRET },
    received: () => receiver.deliveries.map((d) => JSON.parse(d.raw.toString('utf8'))),
    // 500/503/429/400, no answer, nothing listening, a slow answer, a failing check: the suite's own receiver.
    receiver: { config: (url) => ({ url, timeoutMs: 1000 }), timeoutMs: 1000 },
  });

  describe('delivery', () => {
    it('posts { id, type, timestamp, data } with id, timestamp and signature headers', async () => {
      const n = notification();
      const d = await deliver(n);
      expect(d.method).toBe('POST');
      expect(d.headers['content-type']).toBe('application/json');
      expect(JSON.parse(d.raw.toString('utf8'))).toEqual({
        id: n.id,
        type: 'provider.error',
        timestamp: '2026-03-04T05:06:07.000Z',
        data: {
          title: 'Stripe is failing',
          text: 'Payments fail with 502.',
          severity: 'error',
          fields: { provider: 'stripe', failures: 17 },
          url: 'https://apigate.example.com/admin/providers',
        },
      });
      const ts = d.headers['x-apigate-timestamp'] as string;
      expect(ts).toMatch(/^\d+$/);
      expect(d.headers['x-apigate-signature']).toBe(signWebhookPayload(SECRET, ts, d.raw));
      expect(d.headers['x-apigate-signature']).toMatch(/^v1=[0-9a-f]{64}$/);
    });

    it('leaves out what a notification does not have', async () => {
      const n: Notification = {
        id: `ntf_min_${Date.now()}`,
        event: 'plan.changed',
        title: 'Plan changed',
        severity: 'info',
        occurredAt: new Date(),
      };
      const d = await deliver(n);
      expect(JSON.parse(d.raw.toString('utf8')).data).toEqual({ title: 'Plan changed', severity: 'info' });
    });
  });

  describe('verifyWebhookSignature', () => {
    it('accepts a real delivery and returns its payload', async () => {
      const n = notification();
      const d = await deliver(n);
      const payload = verifyWebhookSignature({ rawBody: d.raw, headers: d.headers, secret: SECRET });
      expect(payload).toMatchObject({ id: n.id, type: n.event, data: { title: n.title } });
      // A fetch Headers object and a string body work too.
      const headers = new Headers(Object.entries(d.headers).map(([k, v]) => [k, String(v)]));
      expect(verifyWebhookSignature({ rawBody: d.raw.toString('utf8'), headers, secret: SECRET }).id).toBe(n.id);
    });

    it('refuses a changed body, a wrong secret and missing headers', async () => {
      const d = await deliver();
      const tampered = Buffer.from(d.raw.toString('utf8').replace('"error"', '"info"'));
      expect(() => verifyWebhookSignature({ rawBody: tampered, headers: d.headers, secret: SECRET })).toThrow(WebhookSignatureError);
      expect(() => verifyWebhookSignature({ rawBody: d.raw, headers: d.headers, secret: `${SECRET}x` })).toThrow(/does not match/);
      const { 'x-apigate-signature': _s, ...unsigned } = d.headers;
      expect(() => verifyWebhookSignature({ rawBody: d.raw, headers: unsigned, secret: SECRET })).toThrow(
        /X-APIGate-Signature header is missing/,
      );
    });

    it('refuses a delivery outside the tolerance (a replay)', async () => {
      const d = await deliver();
      const signedAt = Number(d.headers['x-apigate-timestamp']) * 1000;
      expect(() => verifyWebhookSignature({ rawBody: d.raw, headers: d.headers, secret: SECRET, now: signedAt + 301_000 })).toThrow(
        /outside the 300 s tolerance/,
      );
      expect(
        verifyWebhookSignature({ rawBody: d.raw, headers: d.headers, secret: SECRET, now: signedAt + 301_000, toleranceSeconds: 600 }).id,
      ).toBeTruthy();
    });

    it('accepts any one of several signatures (secret rotation)', async () => {
      const d = await deliver();
      const headers = { ...d.headers, 'x-apigate-signature': `v1=${'0'.repeat(64)}, ${d.headers['x-apigate-signature']}` };
      expect(verifyWebhookSignature({ rawBody: d.raw, headers, secret: SECRET }).id).toBeTruthy();
    });
  });

  describe('README verification snippet (examples/verify.mjs)', () => {
    it('is quoted in the README exactly as tested', () => {
      const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
      expect(readme).toContain(`\`\`\`js\n${readFileSync(snippetUrl, 'utf8')}\`\`\``);
    });

    it('accepts a real delivery', async () => {
      const verify = await loadSnippet();
      const d = await deliver();
      expect(verify(d.raw, d.headers, SECRET)).toBe(true);
      expect(verify(d.raw.toString('utf8'), d.headers, SECRET)).toBe(true);
    });

    it('refuses a tampered body and a wrong secret', async () => {
      const verify = await loadSnippet();
      const d = await deliver();
      expect(verify(Buffer.from(d.raw.toString('utf8').replace('Stripe', 'Paddle')), d.headers, SECRET)).toBe(false);
      expect(verify(d.raw, d.headers, 'some-other-secret-value')).toBe(false);
      expect(verify(d.raw, { ...d.headers, 'x-apigate-signature': undefined }, SECRET)).toBe(false);
    });

    it('refuses an old timestamp, even correctly signed, and a replay later on', async () => {
      const verify = await loadSnippet();
      const d = await deliver();
      const old = String(Math.floor(Date.now() / 1000) - 600);
      expect(
        verify(d.raw, { ...d.headers, 'x-apigate-timestamp': old, 'x-apigate-signature': signWebhookPayload(SECRET, old, d.raw) }, SECRET),
      ).toBe(false);
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(Number(d.headers['x-apigate-timestamp']) * 1000 + 10 * 60_000);
      expect(verify(d.raw, d.headers, SECRET)).toBe(false);
    });
  });

  describe('errors', () => {
    it('5xx and 429 are retryable; 429 says when to retry', async () => {
      const e500 = await providerErrorOf((await webhook({ url: `${receiver.origin}/fail-500` })).notify(notification()));
      expect(e500).toMatchObject({ retryable: true, status: 500 });
      expect(e500.message).toContain('database unavailable');
      const e429 = await providerErrorOf((await webhook({ url: `${receiver.origin}/ratelimited` })).notify(notification()));
      expect(e429).toMatchObject({ retryable: true, status: 429 });
      expect(e429.message).toContain('retry after 12 s');
    });

    it('other 4xx and redirects are final', async () => {
      for (const [path, status] of [
        ['/bad', 400],
        ['/gone', 410],
        ['/moved', 301],
      ] as const) {
        const err = await providerErrorOf((await webhook({ url: `${receiver.origin}${path}` })).notify(notification()));
        expect(err).toMatchObject({ retryable: false, status });
      }
      const moved = await providerErrorOf((await webhook({ url: `${receiver.origin}/moved` })).notify(notification()));
      expect(moved.message).toContain('redirects are not followed');
    });

    it('a receiver that is down or silent: retryable', async () => {
      const gone = await startReceiver();
      await gone.close();
      const down = await providerErrorOf((await webhook({ url: `${gone.origin}/hook` })).notify(notification()));
      expect(down.retryable).toBe(true);
      expect(down.message).toContain('ECONNREFUSED');
      const silent = await providerErrorOf((await webhook({ url: `${receiver.origin}/held`, timeoutMs: '300' })).notify(notification()));
      expect(silent.retryable).toBe(true);
      expect(silent.message).toContain('timed out');
    });
  });

  describe('check() and close()', () => {
    it('check() sends a HEAD only and reports connected', async () => {
      const p = await webhook();
      const delivered = receiver.deliveries.length;
      const health = await p.check(AbortSignal.timeout(15_000));
      expect(health).toMatchObject({ status: 'connected', detail: `${new URL(receiver.origin).host} reachable` });
      expect(receiver.requests.at(-1)?.method).toBe('HEAD');
      expect(receiver.deliveries.length).toBe(delivered);
    });

    it('check() reports an unreachable receiver, and gives up when the signal aborts', async () => {
      const gone = await startReceiver();
      await gone.close();
      expect((await (await webhook({ url: `${gone.origin}/hook` })).check(AbortSignal.timeout(15_000))).status).toBe('error');

      const silent = await startSilentServer();
      try {
        const health = await (await webhook({ url: `http://127.0.0.1:${silent.port}/hook` })).check(silent.signal);
        expect(health.status).toBe('error');
      } finally {
        await silent.close();
      }
    });

    it('close() is idempotent and notify after it fails without retry', async () => {
      const p = await webhook();
      await p.close();
      await p.close();
      expect((await providerErrorOf(p.notify(notification()))).retryable).toBe(false);
    });
  });

  describe('configuration', () => {
    it('wants an http(s) URL and a secret of at least 16 characters, and masks the secret', () => {
      expect(() => provider.config.parse({ url: 'ftp://example.com/x', secret: SECRET })).toThrow(/http/);
      expect(() => provider.config.parse({ url: 'https://example.com/x', secret: 'short' })).toThrow(/16 characters/);
      expect(provider.config.parse({ url: 'https://example.com/x', secret: SECRET })).toMatchObject({ timeoutMs: 10_000 });
      expect(provider.secrets).toEqual(['secret']);
    });
  });
});
