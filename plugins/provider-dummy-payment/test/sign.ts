import { createHmac } from 'node:crypto';
import type { SignedWebhook, SignWebhookOptions, WebhookEventSpec } from '@apigate/provider-testkit';
import type { DummyEvent } from '../src/index.js';

/** The suite's generic event in the dummy's own body format (the normalised event; `ignored` as an unknown type). */
export const toDummyEvent = ({ type, ...rest }: WebhookEventSpec): DummyEvent => ({
  ...rest,
  type: type === 'ignored' ? 'customer.updated' : type,
});

/**
 * The `Apigate-Dummy-Signature` value for `rawBody`: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`,
 * made here from the documented format, independently of the provider's own signer.
 */
export function dummySignature(rawBody: string, secret: string, t = Math.floor(Date.now() / 1000)): string {
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${rawBody}`).digest('hex')}`;
}

/** The payment suite's `signWebhook` for the dummy created with `secret`: a live event is the other mode. */
export const signWebhookWith =
  (secret: string) =>
  (event: WebhookEventSpec, { wrongSecret, otherMode, signedAt }: SignWebhookOptions): SignedWebhook => {
    const rawBody = JSON.stringify({ ...toDummyEvent(event), ...(otherMode ? { livemode: true } : {}) });
    const signature = dummySignature(rawBody, wrongSecret ? `${secret}-wrong` : secret, Math.floor(signedAt.getTime() / 1000));
    return { rawBody, headers: { 'Content-Type': 'application/json', 'Apigate-Dummy-Signature': signature } };
  };
