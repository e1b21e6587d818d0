import { describeError, type Kernel, type Logger, type PaymentProvider, type QueueProvider, type VerifiedWebhook } from '@apigate/kernel';
import { Hono } from 'hono';
import type { Store } from '../domain/open-store.js';
import { PaymentInbox } from './events.js';
import { enqueuePaymentEvent } from './worker.js';

/** Setting (and env var) for the largest webhook body read, in bytes. */
export const WEBHOOK_MAX_BYTES_SETTING = 'payment.webhook_max_bytes';
export const WEBHOOK_MAX_BYTES_ENV = 'APIGATE_PAYMENT_WEBHOOK_MAX_BYTES';
export const DEFAULT_WEBHOOK_MAX_BYTES = 1024 * 1024;

export interface PaymentWebhookOptions {
  /** The payment provider's name (stripe, paddle, dummy...): the `provider` of recorded events and mappings. */
  providerName: string;
  payment: Pick<PaymentProvider, 'verifyWebhook'>;
  queue: Pick<QueueProvider, 'publish'>;
  store: Store;
  logger: Logger;
  /** Largest body read; default: env APIGATE_PAYMENT_WEBHOOK_MAX_BYTES, setting payment.webhook_max_bytes, else 1 MiB. */
  maxBytes?: number;
}

/** Where the provider's webhook is mounted: its `features.webhookPath`, else `/webhooks/<name>`. */
export function paymentWebhookPath(providerName: string, features?: { webhookPath?: string }): string {
  return features?.webhookPath ?? `/webhooks/${providerName}`;
}

/** The body limit in force: env, then setting, then 1 MiB (a bad value is refused by `settings set`; here it falls back). */
export function webhookMaxBytes(store: Pick<Store, 'settings'>): number {
  const raw = process.env[WEBHOOK_MAX_BYTES_ENV]?.trim() || store.settings.get(WEBHOOK_MAX_BYTES_SETTING)?.trim();
  return raw && /^\d+$/.test(raw) && Number(raw) > 0 ? Number(raw) : DEFAULT_WEBHOOK_MAX_BYTES;
}

export function checkWebhookMaxBytes(value: string): string | undefined {
  return /^\d+$/.test(value.trim()) && Number(value) >= 1024 && Number(value) <= 64 * 1024 * 1024
    ? undefined
    : 'expected a whole number of bytes from 1024 to 67108864 (largest payment webhook body read)';
}

const bad = (code: string, message: string) => ({ error: { code, message } });

/**
 * Reads at most `max` bytes of the body: undefined as soon as it is longer (Content-Length
 * first, then counted while streaming), so an oversized body is never buffered whole.
 */
export async function readBounded(req: Request, max: number): Promise<Uint8Array | undefined> {
  const declared = req.headers.get('content-length');
  if (declared !== null && /^\d+$/.test(declared) && Number(declared) > max) return undefined;
  if (!req.body) return new Uint8Array(0);
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(value);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/**
 * `POST /` of the provider's webhook: reads a bounded body, verifies it (`verifyWebhook`: no
 * network call), stores it in the payment inbox, publishes a job naming the row, and answers
 * 200 at once. Normalising (which may call the provider) and applying happen in the worker.
 */
export function createPaymentWebhookApp(o: PaymentWebhookOptions): Hono {
  const inbox = new PaymentInbox(o.store);
  const app = new Hono();
  app.post('/', async (c) => {
    const max = o.maxBytes ?? webhookMaxBytes(o.store);
    // The signature covers the exact bytes: read them before anything parses the body.
    const rawBody = await readBounded(c.req.raw, max);
    if (!rawBody) {
      o.logger.warn({ provider: o.providerName, maxBytes: max }, 'payment webhook refused: body larger than the limit');
      return c.json(bad('PAYLOAD_TOO_LARGE', `webhook body is larger than ${max} bytes`), 413);
    }
    const headers: Record<string, string> = {};
    c.req.raw.headers.forEach((v, k) => {
      headers[k.toLowerCase()] = v;
    });
    const input = { rawBody, headers };
    let verified: VerifiedWebhook;
    try {
      verified = await o.payment.verifyWebhook(input);
    } catch (err) {
      // The reason is logged, not answered: a caller probing signatures learns nothing.
      const code = (err as { code?: unknown } | null)?.code;
      const answer =
        code === 'WEBHOOK_SIGNATURE_INVALID'
          ? bad('WEBHOOK_SIGNATURE_INVALID', 'webhook signature did not verify')
          : code === 'WEBHOOK_MODE_MISMATCH'
            ? bad('WEBHOOK_MODE_MISMATCH', 'webhook event is from the other mode (test vs live) than the configured key')
            : code === 'INVALID_INPUT'
              ? bad('WEBHOOK_INVALID', 'webhook body is not a valid event')
              : undefined;
      if (!answer) throw err;
      o.logger.warn({ provider: o.providerName, code }, `payment webhook refused: ${describeError(err)}`);
      return c.json(answer, 400);
    }
    if (!(await inbox.record(o.providerName, verified, input))) {
      o.logger.info({ provider: o.providerName, eventId: verified.id }, 'payment webhook: duplicate event ignored');
      return c.json({ received: true, duplicate: true });
    }
    try {
      await enqueuePaymentEvent(o.queue, { provider: o.providerName, eventId: verified.id, attempts: 0, nextAttemptAt: null });
    } catch (err) {
      // The event is safe in the inbox: the worker's sweep (or next start) queues it. Answering
      // 200 stops the provider retrying an event we already hold.
      o.logger.warn(
        { provider: o.providerName, eventId: verified.id },
        `payment webhook: stored, but not queued (the worker sweep will): ${describeError(err)}`,
      );
    }
    return c.json({ received: true, duplicate: false });
  });
  return app;
}

/** The selected payment provider with its webhook path, or undefined when payments are off. */
export function selectedPayment(kernel: Kernel): { name: string; payment: PaymentProvider; path: string } | undefined {
  const payment = kernel.tryGet('payment');
  const selected = kernel.selected('payment');
  if (!payment || !selected) return undefined;
  return { name: selected.name, payment, path: paymentWebhookPath(selected.name, selected.features) };
}

/** True for addresses only this machine reaches. */
export function isLoopbackHost(host: string | undefined): boolean {
  if (!host) return false;
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || h === '::ffff:127.0.0.1';
}

/**
 * Why the payment webhook route is not served, or undefined when it is. The dummy provider signs
 * with a published development secret by default, so anyone could forge its events: its route
 * is served only when it has a secret of its own (PAYMENT_DUMMY_WEBHOOK_SECRET or setting
 * payment.dummy.webhook_secret) or the server binds a loopback address only.
 */
export function paymentWebhookRefusal(kernel: Kernel, providerName: string, bindHost: string | undefined): string | undefined {
  if (providerName !== 'dummy') return undefined;
  const raw = kernel.selected('payment')?.instance as { usesDevelopmentSecret?: boolean } | undefined;
  if (raw?.usesDevelopmentSecret === false || isLoopbackHost(bindHost)) return undefined;
  return `payment webhooks of the dummy provider are NOT served (404): it signs with the public development secret and the server binds ${bindHost ?? 'an unknown address'}, so anyone could forge a paid plan; set PAYMENT_DUMMY_WEBHOOK_SECRET (or setting payment.dummy.webhook_secret) or bind 127.0.0.1`;
}
