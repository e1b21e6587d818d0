import {
  describeError,
  InvalidInputError,
  type Kernel,
  type Logger,
  type PaymentEvent,
  type PaymentProvider,
  type QueueProvider,
  WebhookSignatureError,
} from '@apigate/kernel';
import { Hono } from 'hono';
import type { Store } from '../store/store.js';
import { PAYMENT_QUEUE, PaymentEventLog, toJob } from './events.js';

export interface PaymentWebhookOptions {
  /** The payment provider's name (stripe, paddle, dummy...): the `provider` of recorded events and mappings. */
  providerName: string;
  payment: Pick<PaymentProvider, 'parseWebhook'>;
  queue: Pick<QueueProvider, 'publish'>;
  store: Store;
  logger: Logger;
  /** Tries per processing job. Default 5. */
  attempts?: number;
}

/** Where the provider's webhook is mounted: its `features.webhookPath`, else `/webhooks/<name>`. */
export function paymentWebhookPath(providerName: string, features?: { webhookPath?: string }): string {
  return features?.webhookPath ?? `/webhooks/${providerName}`;
}

const bad = (code: string, message: string) => ({ error: { code, message } });

/**
 * `POST /` of the provider's webhook: verifies the raw body, records the event id, queues the
 * processing job and answers at once, so the provider never waits on our processing (and
 * never times out and retries because of it).
 */
export function createPaymentWebhookApp(o: PaymentWebhookOptions): Hono {
  const log = new PaymentEventLog(o.store.db);
  const app = new Hono();
  app.post('/', async (c) => {
    // The signature covers the exact bytes: read them before anything parses the body.
    const rawBody = new Uint8Array(await c.req.arrayBuffer());
    const headers: Record<string, string> = {};
    c.req.raw.headers.forEach((v, k) => {
      headers[k.toLowerCase()] = v;
    });
    let event: PaymentEvent;
    try {
      event = await o.payment.parseWebhook({ rawBody, headers });
    } catch (err) {
      // The reason is logged, not answered: a caller probing signatures learns nothing.
      if (err instanceof WebhookSignatureError) {
        o.logger.warn({ provider: o.providerName }, `payment webhook refused: ${describeError(err)}`);
        return c.json(bad('WEBHOOK_SIGNATURE_INVALID', 'webhook signature did not verify'), 400);
      }
      if (err instanceof InvalidInputError) {
        o.logger.warn({ provider: o.providerName }, `payment webhook refused: ${describeError(err)}`);
        return c.json(bad('WEBHOOK_INVALID', 'webhook body is not a valid event'), 400);
      }
      throw err;
    }
    if (!log.record(o.providerName, event)) {
      o.logger.info({ provider: o.providerName, eventId: event.id }, 'payment webhook: duplicate event ignored');
      return c.json({ received: true, duplicate: true });
    }
    try {
      await o.queue.publish(PAYMENT_QUEUE, toJob(o.providerName, event), {
        jobId: `${o.providerName}:${event.id}`,
        attempts: o.attempts ?? 5,
        backoff: { type: 'exponential', delayMs: 1000 },
      });
    } catch (err) {
      // Not queued: forget the id so the provider's retry (after our 5xx) is taken, not dropped as a duplicate.
      log.forget(o.providerName, event.id);
      throw err;
    }
    return c.json({ received: true, duplicate: false });
  });
  return app;
}

/** The selected payment provider with its webhook path, or undefined when payments are off. */
export function selectedPayment(kernel: Kernel): { name: string; payment: PaymentProvider; path: string } | undefined {
  const payment = kernel.tryGet('payment');
  const active = kernel.active.find((a) => a.capability === 'payment');
  if (!payment || !active) return undefined;
  return { name: active.name, payment, path: paymentWebhookPath(active.name, active.definition.features as { webhookPath?: string } | undefined) };
}
