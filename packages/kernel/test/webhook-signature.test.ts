import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { signWebhookPayload, verifySignedWebhook, WEBHOOK_HEADERS, WebhookSignatureError } from '../src/index.js';

const secret = 'whsec-test-secret';
const body = '{"id":"evt_1","type":"test"}';
const now = 1_800_000_000_000;
const ts = String(now / 1000);

describe('signed webhooks', () => {
  it('signs v1 as hex HMAC-SHA256 of "<timestamp>.<body>", as documented', () => {
    const expected = createHmac('sha256', secret).update(`${ts}.${body}`).digest('hex');
    expect(signWebhookPayload(secret, ts, body)).toBe(`v1=${expected}`);
    expect(signWebhookPayload(secret, ts, Buffer.from(body))).toBe(`v1=${expected}`);
  });

  const headers = (over: Record<string, string> = {}) => ({
    [WEBHOOK_HEADERS.timestamp.toLowerCase()]: ts,
    [WEBHOOK_HEADERS.signature.toLowerCase()]: signWebhookPayload(secret, ts, body),
    ...over,
  });

  it('accepts a good delivery, with any header case, and one of several signatures (rotation)', () => {
    expect(() => verifySignedWebhook({ rawBody: body, headers: headers(), secret, now })).not.toThrow();
    const rotated = headers({ [WEBHOOK_HEADERS.signature]: `v1=deadbeef, ${signWebhookPayload(secret, ts, body)}` });
    expect(() =>
      verifySignedWebhook({ rawBody: body, headers: new Headers(rotated as Record<string, string>), secret, now }),
    ).not.toThrow();
  });

  it('refuses a changed body, a wrong secret, a missing header and a stale timestamp', () => {
    const cases: [string, () => void][] = [
      ['changed body', () => verifySignedWebhook({ rawBody: `${body} `, headers: headers(), secret, now })],
      ['wrong secret', () => verifySignedWebhook({ rawBody: body, headers: headers(), secret: 'other', now })],
      ['no signature', () => verifySignedWebhook({ rawBody: body, headers: { [WEBHOOK_HEADERS.timestamp]: ts }, secret, now })],
      ['stale', () => verifySignedWebhook({ rawBody: body, headers: headers(), secret, now: now + 301_000 })],
    ];
    for (const [name, fn] of cases) expect(fn, name).toThrow(WebhookSignatureError);
  });
});
