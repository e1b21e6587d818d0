import {
  type Severity,
  signWebhookPayload,
  type VerifySignedWebhookOptions,
  verifySignedWebhook,
  WEBHOOK_HEADERS,
  WebhookSignatureError,
} from '@apigate/kernel';

// The signing scheme is the kernel's, shared with the gateway's outbound webhooks.
export { signWebhookPayload };
export const EVENT_ID_HEADER = WEBHOOK_HEADERS.eventId;
export const TIMESTAMP_HEADER = WEBHOOK_HEADERS.timestamp;
export const SIGNATURE_HEADER = WEBHOOK_HEADERS.signature;
export type VerifyWebhookOptions = VerifySignedWebhookOptions;

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

/**
 * Checks a delivery's signature and timestamp (the kernel's `verifySignedWebhook`) and returns
 * the parsed payload. Throws WebhookSignatureError (answer 400) on any mismatch.
 */
export function verifyWebhookSignature(opts: VerifyWebhookOptions): WebhookNotificationPayload {
  verifySignedWebhook(opts);
  const { rawBody } = opts;
  try {
    return JSON.parse(typeof rawBody === 'string' ? rawBody : Buffer.from(rawBody).toString('utf8')) as WebhookNotificationPayload;
  } catch (err) {
    throw new WebhookSignatureError('the signed body is not JSON', { cause: err });
  }
}
