import { randomUUID } from 'node:crypto';
import {
  ApigateError,
  describeError,
  isRetryable,
  type Job,
  type Logger,
  NonRetryableJobError,
  type QueueProvider,
  signWebhookPayload,
  silentLogger,
  WEBHOOK_HEADERS,
  type Worker,
} from '@apigate/kernel';
import { request } from 'undici';
import type { Domain } from '../domain/domain.js';
import type { WebhookDelivery, WebhookEndpoint } from '../domain/webhook-endpoints.js';

/** The queue outbound webhook deliveries travel on (one job per delivery). */
export const WEBHOOK_QUEUE = 'webhook.deliver';

/**
 * The kernel's signed-webhook scheme, the same as provider-webhook-notification's, so one
 * receiver verifies both kinds of delivery the same way.
 */
export { WEBHOOK_HEADERS };

/** The JSON body of every outbound webhook. */
export interface WebhookEvent {
  /** Stable per event: redeliveries and other instances send the same id (receivers drop repeats by it). */
  id: string;
  type: string;
  /** ISO 8601. */
  created_at: string;
  data: Record<string, unknown>;
}

/** `v1=<hex HMAC-SHA256 of "<timestamp>.<body>">` (the kernel's signWebhookPayload). */
export const signWebhook = signWebhookPayload;

/** A delivery attempt that did not get a 2xx. `retryable` follows the kernel's rule (network, 408, 429, 5xx). */
export class WebhookSendError extends ApigateError {
  readonly retryable: boolean;
  readonly status?: number;
  constructor(message: string, i: { retryable: boolean; status?: number; cause?: unknown }) {
    super('WEBHOOK_DELIVERY_FAILED', message, { cause: i.cause });
    this.retryable = i.retryable;
    if (i.status !== undefined) this.status = i.status;
  }
}

/**
 * POSTs one signed body to `url`. Resolves with the status on a 2xx; otherwise throws
 * WebhookSendError. Redirects are not followed (a signed POST should not wander).
 */
export async function postWebhook(o: {
  url: string;
  secret: string;
  body: string;
  eventId: string;
  eventType: string;
  timeoutMs: number;
  now?: number;
}): Promise<number> {
  const timestamp = Math.floor((o.now ?? Date.now()) / 1000);
  let res: Awaited<ReturnType<typeof request>>;
  try {
    res = await request(o.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'APIGate-Webhook/1',
        [WEBHOOK_HEADERS.eventId]: o.eventId,
        [WEBHOOK_HEADERS.eventType]: o.eventType,
        [WEBHOOK_HEADERS.timestamp]: String(timestamp),
        [WEBHOOK_HEADERS.signature]: signWebhook(o.secret, timestamp, o.body),
      },
      body: o.body,
      headersTimeout: o.timeoutMs,
      bodyTimeout: o.timeoutMs,
      signal: AbortSignal.timeout(o.timeoutMs),
    });
  } catch (err) {
    throw new WebhookSendError(`POST ${o.url}: ${describeError(err)}`, {
      retryable: isRetryable(err) || (err as Error)?.name === 'TimeoutError',
      cause: err,
    });
  }
  const text = (await res.body.text().catch(() => '')).slice(0, 200);
  if (res.statusCode >= 200 && res.statusCode < 300) return res.statusCode;
  const s = res.statusCode;
  const hint = s >= 300 && s < 400 ? ' (redirects are not followed: set the final URL)' : '';
  throw new WebhookSendError(`POST ${o.url}: answered ${s}${hint}${text ? `: ${text}` : ''}`, {
    status: s,
    retryable: s === 408 || s === 429 || s >= 500,
  });
}

export interface WebhookDispatcherOptions {
  domain: Domain;
  /** Without a queue, `emit` records the deliveries and attempts each one once, at once. */
  queue?: QueueProvider | undefined;
  /** Tries per delivery, the first included (the `delivery.attempts` setting). */
  attempts: number;
  /** Wait before the first retry, doubling after (the `delivery.backoff_ms` setting). */
  backoffMs: number;
  /** Per attempt. Default 10000 ms. */
  timeoutMs?: number;
  logger?: Logger;
}

/**
 * Outbound webhooks: `emit` records one delivery per subscribed endpoint (the delivery log,
 * `webhook_deliveries`, unique per endpoint and event id) and queues it; the worker signs and
 * POSTs it, records every attempt, and lets the queue retry with backoff. An event emitted again
 * with the same id (another instance, a restart) finds its deliveries and sends nothing new.
 */
export class WebhookDispatcher {
  readonly #o: WebhookDispatcherOptions & { timeoutMs: number };
  readonly #logger: Logger;
  readonly #pending = new Set<Promise<unknown>>();

  constructor(opts: WebhookDispatcherOptions) {
    this.#o = { ...opts, timeoutMs: opts.timeoutMs ?? 10_000 };
    this.#logger = opts.logger ?? silentLogger();
  }

  /** Sends `type` to every enabled endpoint subscribed to it. `id` defaults to a fresh one; pass a stable id to make the event idempotent. */
  async emit(
    type: string,
    data: Record<string, unknown>,
    opts: { id?: string; at?: Date; endpoints?: WebhookEndpoint[] } = {},
  ): Promise<{ event: WebhookEvent; deliveries: WebhookDelivery[] }> {
    const event: WebhookEvent = { id: opts.id ?? `evt_${randomUUID()}`, type, created_at: (opts.at ?? new Date()).toISOString(), data };
    const endpoints = opts.endpoints ?? (await this.#o.domain.webhooks.endpointsFor(type));
    const body = JSON.stringify(event);
    const deliveries: WebhookDelivery[] = [];
    for (const endpoint of endpoints) {
      const d = await this.#o.domain.webhooks.recordDelivery({
        endpointId: endpoint.id,
        eventId: event.id,
        eventType: type,
        payload: body,
      });
      deliveries.push(d);
      // Already tried (or done) by whoever recorded it first.
      if (d.status !== 'pending' || d.attempts > 0) continue;
      if (this.#o.queue) {
        await this.#o.queue.publish(
          WEBHOOK_QUEUE,
          { deliveryId: d.id },
          {
            jobId: `webhook-${d.id}`,
            attempts: this.#o.attempts,
            backoff: { type: 'exponential', delayMs: this.#o.backoffMs },
          },
        );
      } else {
        deliveries[deliveries.length - 1] = await this.attempt(d.id, { final: true }).catch(() =>
          this.#o.domain.webhooks.getDelivery(d.id),
        );
      }
    }
    return { event, deliveries };
  }

  /** `emit` without waiting: failures to record or queue are logged. close() waits for these. */
  emitLater(type: string, data: Record<string, unknown>, opts: { id?: string; at?: Date } = {}): void {
    const p = this.emit(type, data, opts).catch((err: unknown) =>
      this.#logger.error({ event: opts.id, type }, `cannot queue the ${type} webhook: ${describeError(err)}`),
    );
    this.#pending.add(p);
    void p.finally(() => this.#pending.delete(p));
  }

  /**
   * One delivery attempt, recorded. Resolves with the delivery after a 2xx; throws the
   * WebhookSendError otherwise (after recording it; `final` marks the delivery failed for good).
   */
  async attempt(deliveryId: string, opts: { final: boolean }): Promise<WebhookDelivery> {
    const hooks = this.#o.domain.webhooks;
    const d = await hooks.getDelivery(deliveryId);
    if (d.status === 'succeeded') return d;
    const endpoint = await hooks.getEndpoint(d.endpointId);
    try {
      if (!endpoint.enabled) throw new WebhookSendError(`endpoint ${endpoint.id} is disabled`, { retryable: false });
      const status = await postWebhook({
        url: endpoint.url,
        secret: await hooks.signingSecret(endpoint.id),
        body: d.payload ?? '{}',
        eventId: d.eventId,
        eventType: d.eventType,
        timeoutMs: this.#o.timeoutMs,
      });
      return await hooks.recordAttempt(d.id, { ok: true, responseStatus: status });
    } catch (err) {
      const e =
        err instanceof WebhookSendError ? err : new WebhookSendError(describeError(err), { retryable: isRetryable(err), cause: err });
      await hooks.recordAttempt(d.id, { ok: false, responseStatus: e.status ?? null, error: e.message, final: opts.final || !e.retryable });
      throw e;
    }
  }

  /** The queue worker that sends queued deliveries. */
  start(opts: { concurrency?: number } = {}): Worker {
    if (!this.#o.queue) throw new ApigateError('QUEUE_REQUIRED', 'webhook deliveries need a queue provider');
    return this.#o.queue.process(WEBHOOK_QUEUE, (job) => this.#handle(job as Job<{ deliveryId?: unknown }>), {
      concurrency: opts.concurrency ?? 4,
    });
  }

  async #handle(job: Job<{ deliveryId?: unknown }>): Promise<void> {
    const id = job.payload?.deliveryId;
    if (typeof id !== 'string') throw new NonRetryableJobError(`webhook job ${job.id}: payload has no delivery id`);
    try {
      await this.attempt(id, { final: job.attempt >= job.maxAttempts });
    } catch (err) {
      const retryable = err instanceof WebhookSendError ? err.retryable : isRetryable(err);
      const msg = `webhook delivery ${id} attempt ${job.attempt} of ${job.maxAttempts} failed: ${describeError(err)}`;
      if (!retryable || job.attempt >= job.maxAttempts) this.#logger.error({ delivery: id }, msg);
      else this.#logger.warn({ delivery: id }, msg);
      throw retryable ? err : new NonRetryableJobError(describeError(err), { cause: err });
    }
  }

  /** Waits for `emitLater` calls to be recorded and queued. */
  async close(): Promise<void> {
    await Promise.all([...this.#pending]);
  }
}
