import {
  assertEmailMessage,
  assertNotification,
  type EmailMessage,
  type Notification,
  type PublishOptions,
  type QueueProvider,
} from '@apigate/kernel';
import { encodeEmail, encodeNotification } from './codec.js';

/** The queues the outbox publishes to and the delivery workers take from. */
export const EMAIL_QUEUE = 'email.send';
export const NOTIFICATION_QUEUE = 'notification.send';

export interface OutboxOptions {
  /** The selected queue provider (instrumented, from the kernel). */
  queue: QueueProvider;
  /** Total tries per message, the first included. */
  attempts: number;
  /** Wait before the first retry; each later wait doubles. */
  backoffMs: number;
}

export interface EnqueueOptions {
  /**
   * The queue's job id: a second message with the same id while the first is known to the
   * queue (waiting, retrying, failed, or among its last completed jobs) is not sent again.
   */
  idempotencyId?: string;
  /** Send no earlier than this many milliseconds from now. */
  delayMs?: number;
}

export interface Enqueued {
  queue: string;
  /** The job id: the idempotency id when one was given. */
  id: string;
  /** True when a job with this idempotency id was already known: nothing new was queued. */
  duplicate: boolean;
}

/** Any valid address: the provider checks `from` itself, against its own default. */
const STAND_IN_FROM = 'outbox@example.invalid';

/**
 * Email and notifications leave the gateway through the queue: these calls validate, publish a
 * job and return; the delivery workers send it with retries. A message that cannot be valid
 * (no recipient, bad header) is refused here, before it is queued.
 */
export class Outbox {
  constructor(private readonly opts: OutboxOptions) {}

  async sendEmail(msg: EmailMessage, opts: EnqueueOptions = {}): Promise<Enqueued> {
    assertEmailMessage(msg, msg.from ?? STAND_IN_FROM);
    return this.publish(EMAIL_QUEUE, encodeEmail(msg), opts);
  }

  /** The notification's own `id` is its idempotency id unless another is given. */
  async notify(n: Notification, opts: EnqueueOptions = {}): Promise<Enqueued> {
    assertNotification(n);
    return this.publish(NOTIFICATION_QUEUE, encodeNotification(n), { ...opts, idempotencyId: opts.idempotencyId ?? n.id });
  }

  private async publish(queue: string, payload: unknown, opts: EnqueueOptions): Promise<Enqueued> {
    const publish: PublishOptions = {
      attempts: this.opts.attempts,
      backoff: { type: 'exponential', delayMs: this.opts.backoffMs },
      ...(opts.idempotencyId !== undefined ? { jobId: opts.idempotencyId } : {}),
      ...(opts.delayMs ? { delayMs: opts.delayMs } : {}),
    };
    const r = await this.opts.queue.publish(queue, payload, publish);
    return { queue, id: r.id, duplicate: r.duplicate };
  }
}
