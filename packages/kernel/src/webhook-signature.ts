import { createHmac, timingSafeEqual } from 'node:crypto';
import { WebhookSignatureError } from './errors.js';

/**
 * APIGate's own signed webhooks (the webhook notification provider and the gateway's outbound
 * webhooks) share one scheme, so one receiver verifies both the same way:
 * `X-APIGate-Signature: v1=<hex HMAC-SHA256 of "<X-APIGate-Timestamp>.<raw body>">`.
 */
export const WEBHOOK_HEADERS = {
  eventId: 'X-APIGate-Event-Id',
  eventType: 'X-APIGate-Event-Type',
  timestamp: 'X-APIGate-Timestamp',
  signature: 'X-APIGate-Signature',
} as const;

/** `v1=` + hex HMAC-SHA256 of `<timestamp>.<raw body>`, keyed with the shared secret. */
export function signWebhookPayload(secret: string, timestamp: number | string, rawBody: string | Uint8Array): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.`).update(rawBody).digest('hex')}`;
}

export type HeaderBag = Headers | Record<string, string | string[] | undefined>;

function header(headers: HeaderBag, name: string): string | undefined {
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
  const lower = name.toLowerCase();
  const hit = Object.entries(headers).find(([k]) => k.toLowerCase() === lower)?.[1];
  return Array.isArray(hit) ? hit.join(',') : hit;
}

export interface VerifySignedWebhookOptions {
  /** The body exactly as received, before any JSON parsing. */
  rawBody: string | Uint8Array;
  /** The request headers (Node's `req.headers`, a fetch `Headers`, or any name -> value map). */
  headers: HeaderBag;
  secret: string;
  /** Deliveries signed longer ago (or further ahead) than this are refused as replays. Default 300. */
  toleranceSeconds?: number;
  /** Current time in ms, for tests. */
  now?: number;
}

/**
 * Throws WebhookSignatureError (answer 400) when a header is missing, the timestamp is outside
 * the tolerance, or no `v1=` signature matches. Several comma-separated signatures are
 * accepted, so a receiver can rotate secrets.
 */
export function verifySignedWebhook(opts: VerifySignedWebhookOptions): void {
  const { rawBody, headers, secret, toleranceSeconds = 300, now = Date.now() } = opts;
  const { timestamp: TS, signature: SIG } = WEBHOOK_HEADERS;
  const timestamp = header(headers, TS)?.trim();
  const signatures = header(headers, SIG);
  if (!timestamp || !/^\d+$/.test(timestamp)) throw new WebhookSignatureError(`${TS} header is missing or not a unix time in seconds`);
  if (!signatures) throw new WebhookSignatureError(`${SIG} header is missing`);
  const age = Math.round(now / 1000 - Number(timestamp));
  if (Math.abs(age) > toleranceSeconds) {
    throw new WebhookSignatureError(
      `${TS} is ${age} s off the current time, outside the ${toleranceSeconds} s tolerance (replayed or clock skew)`,
    );
  }
  const expected = Buffer.from(signWebhookPayload(secret, timestamp, rawBody));
  const matches = signatures.split(',').some((s) => {
    const got = Buffer.from(s.trim());
    return got.length === expected.length && timingSafeEqual(got, expected);
  });
  if (!matches) throw new WebhookSignatureError(`${SIG} does not match the body (wrong secret, or the body was changed)`);
}
