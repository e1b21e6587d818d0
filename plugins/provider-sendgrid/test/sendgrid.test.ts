import { inspect } from 'node:util';
import { type EmailMessage, type EmailProvider, ProviderError } from '@apigate/kernel';
import { assertValidManifest, describeEmailProvider, testInstances } from '@apigate/provider-testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pkg from '../package.json' with { type: 'json' };
import provider from '../src/index.js';
import { type FakeSendGrid, FULL_KEY, inboxOf, READ_ONLY_KEY, startFakeSendGrid } from './fake-sendgrid.js';

const FROM = '"APIGate" <noreply@apigate.test>';
let fake: FakeSendGrid;
const instances = testInstances(provider);

beforeAll(async () => {
  fake = await startFakeSendGrid();
});
afterAll(async () => {
  await instances.closeAll();
  await fake?.close();
});

const settings = (over: Record<string, string> = {}) => ({ apiKey: FULL_KEY, from: FROM, baseUrl: fake.url, ...over });

const sendgrid = (over: Record<string, string> = {}): Promise<EmailProvider> => instances.make(settings(over));

const message = (over: Partial<EmailMessage> = {}): EmailMessage => ({
  to: 'alice@example.com',
  subject: `sendgrid test ${Math.random().toString(36).slice(2)}`,
  text: 'Hello from SendGrid.',
  ...over,
});

/** The ProviderError `p` rejects with (fails the test if it resolves), checked to carry no API key. */
async function providerErrorOf(p: Promise<unknown>, key = FULL_KEY): Promise<ProviderError> {
  const outcome = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(outcome).toBeInstanceOf(ProviderError);
  expect(inspect(outcome, { depth: 10 })).not.toContain(key);
  return outcome as ProviderError;
}

describe('provider-sendgrid', () => {
  it('has a valid manifest', () => {
    assertValidManifest(pkg, provider);
  });

  describeEmailProvider(provider, {
    name: 'conformance (official client against a fake v3 API)',
    config: settings,
    inbox: () => inboxOf(fake),
    defaultFrom: FROM,
  });

  it('posts a v3 mail/send body with the key as a Bearer token', async () => {
    const p = await sendgrid();
    const msg = message({
      from: 'Billing <billing@apigate.test>',
      cc: ['cc@example.com'],
      bcc: ['audit@example.com'],
      replyTo: 'support@apigate.test',
      html: '<p>Hi</p>',
      headers: { 'X-Apigate-Invoice': 'inv_42' },
      attachments: [{ filename: 'invoice.pdf', content: Uint8Array.from([37, 80, 68, 70, 0, 255]), contentType: 'application/pdf' }],
    });
    const { messageId } = await p.send(msg);
    const req = fake.requests.find((r) => r.body?.personalizations[0]?.subject === msg.subject || r.body?.subject === msg.subject)!;
    expect(req).toMatchObject({ method: 'POST', path: '/v3/mail/send' });
    expect(req.headers.authorization).toBe(`Bearer ${FULL_KEY}`);
    expect(req.headers['content-type']).toContain('application/json');
    expect(req.body).toMatchObject({
      from: { email: 'billing@apigate.test', name: 'Billing' },
      reply_to: { email: 'support@apigate.test' },
      personalizations: [
        { to: [{ email: 'alice@example.com' }], cc: [{ email: 'cc@example.com' }], bcc: [{ email: 'audit@example.com' }] },
      ],
      content: [
        { type: 'text/plain', value: 'Hello from SendGrid.' },
        { type: 'text/html', value: '<p>Hi</p>' },
      ],
      headers: { 'X-Apigate-Invoice': 'inv_42' },
      attachments: [{ filename: 'invoice.pdf', type: 'application/pdf', disposition: 'attachment', content: 'JVBERgD/' }],
    });
    expect(fake.accepted.find((a) => a.messageId === messageId)).toBeDefined();
  });

  it('rejects a message without text or html before calling SendGrid', async () => {
    const p = await sendgrid();
    const before = fake.requests.length;
    const { text: _t, ...empty } = message();
    await expect(p.send(empty)).rejects.toThrow(/text or html/);
    expect(fake.requests.length).toBe(before);
  });

  describe('errors', () => {
    it('400: final, with SendGrid’s message and field', async () => {
      const err = await providerErrorOf((await sendgrid()).send(message({ from: 'unverified@apigate.test' })));
      expect(err.retryable).toBe(false);
      expect(err.status).toBe(400);
      expect(err.message).toContain('does not match a verified Sender Identity');
      expect(err.message).toContain('(field: from)');
    });

    it('401: final, and the key appears nowhere', async () => {
      const badKey = 'SG.revoked-key.abcdefghijklmnopqrstuvwxyz0123';
      const p = await sendgrid({ apiKey: badKey });
      const err = await providerErrorOf(p.send(message()), badKey);
      expect(err.retryable).toBe(false);
      expect(err.status).toBe(401);
      expect(err.message).toContain('API key was rejected');
      const health = await p.check(AbortSignal.timeout(15_000));
      expect(health.status).toBe('error');
      expect(health.error).toContain('401');
      expect(health.error).not.toContain(badKey);
    });

    it('403 for a key without mail.send: final, and check() says degraded', async () => {
      const p = await sendgrid({ apiKey: READ_ONLY_KEY });
      const err = await providerErrorOf(p.send(message()), READ_ONLY_KEY);
      expect(err).toMatchObject({ retryable: false, status: 403 });
      const health = await p.check(AbortSignal.timeout(15_000));
      expect(health.status).toBe('degraded');
      expect(health.detail).toContain('mail.send');
    });

    it('429: retryable, saying when to retry', async () => {
      const err = await providerErrorOf((await sendgrid()).send(message({ to: 'ratelimited@example.com' })));
      expect(err).toMatchObject({ retryable: true, status: 429 });
      expect(err.message).toMatch(/rate limited, retry after \d+ s/);
    });

    it('500: retryable', async () => {
      const err = await providerErrorOf((await sendgrid()).send(message({ to: 'servererror@example.com' })));
      expect(err).toMatchObject({ retryable: true, status: 500 });
    });

    it('SendGrid unreachable: retryable, and the key is not in the error', async () => {
      const gone = await startFakeSendGrid();
      await gone.close();
      const p = await sendgrid({ baseUrl: gone.url });
      const err = await providerErrorOf(p.send(message()));
      expect(err.retryable).toBe(true);
      expect(err.message).toContain('could not reach SendGrid');
      expect((await p.check(AbortSignal.timeout(15_000))).status).toBe('error');
    });

    it('a request that gets no answer times out as retryable', async () => {
      const slow = await startFakeSendGrid();
      slow.hold = true;
      try {
        const p = await sendgrid({ baseUrl: slow.url, timeoutMs: '300' });
        const err = await providerErrorOf(p.send(message()));
        expect(err.retryable).toBe(true);
      } finally {
        await slow.close();
      }
    });
  });

  describe('check()', () => {
    it('validates the key with GET /v3/scopes and sends nothing', async () => {
      const p = await sendgrid();
      const sendsBefore = fake.accepted.length;
      const health = await p.check(AbortSignal.timeout(15_000));
      expect(health).toMatchObject({ status: 'connected', detail: new URL(fake.url).host });
      expect(fake.requests.at(-1)).toMatchObject({ method: 'GET', path: '/v3/scopes' });
      expect(fake.accepted.length).toBe(sendsBefore);
    });

    it('returns an error as soon as the signal aborts', async () => {
      const slow = await startFakeSendGrid();
      slow.hold = true;
      const controller = new AbortController();
      slow.onHeld = () => controller.abort();
      try {
        const p = await sendgrid({ baseUrl: slow.url });
        const health = await p.check(controller.signal);
        expect(health.status).toBe('error');
      } finally {
        await slow.close();
      }
    });
  });

  describe('configuration', () => {
    it('defaults to the global API endpoint', () => {
      expect(provider.config.parse({ apiKey: FULL_KEY, from: FROM })).toMatchObject({
        baseUrl: 'https://api.sendgrid.com',
        timeoutMs: 30_000,
      });
    });

    it('rejects a key that is not a SendGrid key, and a from that is not an address', () => {
      expect(() => provider.config.parse(settings({ apiKey: 'not-a-key' }))).toThrow(/SendGrid API key/);
      expect(() => provider.config.parse(settings({ from: 'nobody' }))).toThrow(/email address/);
    });
  });
});
