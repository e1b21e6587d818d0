import { createHmac, timingSafeEqual } from 'node:crypto';
import { type Severity, WebhookSignatureError } from '@apigate/kernel';

export const EVENT_ID_HEADER = 'X-APIGate-Event-Id';
export const TIMESTAMP_HEADER = 'X-APIGate-Timestamp';
export const SIGNATURE_HEADER = 'X-APIGate-Signature';

/** The JSON body of every delivery. */
export interface WebhookNotificationPayload {
  id: string;
  /** The event, e.g. `provider.error`. */
  type: string;
  /** When it happened (ISO 8601). The signing time is the X-APIGate-Timestamp header. */
  timestamp: string;
  data: {
    title: string;
    text?: string;
    severity: Severity;
    fields?: Record<string, string | number>;
    url?: string;
  };
}

/** `v1=` + hex HMAC-SHA256 of `<timestamp>.<raw body>`, keyed with the shared secret. */
export function signWebhookPayload(secret: string, timestamp: number | string, rawBody: string | Uint8Array): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.`).update(rawBody).digest('hex')}`;
}

type HeaderBag = Headers | Record<string, string | string[] | undefined>;

function header(headers: HeaderBag, name: string): string | undefined {
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
  const lower = name.toLowerCase();
  const hit = Object.entries(headers).find(([k]) => k.toLowerCase() === lower)?.[1];
  return Array.isArray(hit) ? hit.join(',') : hit;
}

export interface VerifyWebhookOptions {
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
 * Checks a delivery's signature and timestamp and returns the parsed payload. Throws
 * WebhookSignatureError (answer 400) when a header is missing, the timestamp is outside the
 * tolerance, or no `v1=` signature matches. Several comma-separated signatures are accepted,
 * so a receiver can rotate secrets.
 */
export function verifyWebhookSignature(opts: VerifyWebhookOptions): WebhookNotificationPayload {
  const { rawBody, headers, secret, toleranceSeconds = 300, now = Date.now() } = opts;
  const timestamp = header(headers, TIMESTAMP_HEADER)?.trim();
  const signatures = header(headers, SIGNATURE_HEADER);
  if (!timestamp || !/^\d+$/.test(timestamp)) throw new WebhookSignatureError(`${TIMESTAMP_HEADER} header is missing or not a unix time in seconds`);
  if (!signatures) throw new WebhookSignatureError(`${SIGNATURE_HEADER} header is missing`);
  const age = Math.round(now / 1000 - Number(timestamp));
  if (Math.abs(age) > toleranceSeconds) {
    throw new WebhookSignatureError(`${TIMESTAMP_HEADER} is ${age} s off the current time, outside the ${toleranceSeconds} s tolerance (replayed or clock skew)`);
  }
  const expected = Buffer.from(signWebhookPayload(secret, timestamp, rawBody));
  const matches = signatures.split(',').some((s) => {
    const got = Buffer.from(s.trim());
    return got.length === expected.length && timingSafeEqual(got, expected);
  });
  if (!matches) throw new WebhookSignatureError(`${SIGNATURE_HEADER} does not match the body (wrong secret, or the body was changed)`);
  try {
    return JSON.parse(typeof rawBody === 'string' ? rawBody : Buffer.from(rawBody).toString('utf8')) as WebhookNotificationPayload;
  } catch (err) {
    throw new WebhookSignatureError('the signed body is not JSON', { cause: err });
  }
}
