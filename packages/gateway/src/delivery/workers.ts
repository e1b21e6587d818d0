import { EventEmitter } from 'node:events';
import {
  type CapabilityName,
  describeError,
  type EmailProvider,
  isRetryable,
  type Job,
  type Logger,
  NonRetryableJobError,
  type NotificationProvider,
  type ProviderErrorEvent,
  type QueueProvider,
  silentLogger,
  type Worker,
} from '@apigate/kernel';
import { decodeEmail, decodeNotification } from './codec.js';
import { EMAIL_QUEUE, NOTIFICATION_QUEUE } from './outbox.js';

export type OutcomeStatus = 'delivered' | 'retrying' | 'failed';

/** What happened to one try of one job. */
export interface DeliveryOutcome {
  queue: string;
  jobId: string;
  attempt: number;
  maxAttempts: number;
  /** `failed` is final: the job is in the queue's failed set. */
  status: OutcomeStatus;
  error?: string;
  /** The email provider's message id, for a delivered email. */
  messageId?: string;
}

/** The operation named in the `provider.error` event raised when a job lands in the failed set. */
export const DELIVERY_OPERATION = 'deliver';
export const DELIVERY_FAILED_CODE = 'DELIVERY_FAILED';

export interface DeliveryWorkersOptions {
  queue: QueueProvider;
  /** The selected email provider (instrumented) and its name; no email worker without it. */
  email?: { provider: EmailProvider; name: string } | undefined;
  notification?: { provider: NotificationProvider; name: string } | undefined;
  /** Raises a kernel `provider.error` event (e.g. `(e) => kernel.events.emit('provider.error', e)`). */
  raise(event: ProviderErrorEvent): void;
  /** Jobs each worker runs at once (default 4). */
  concurrency?: number;
  logger?: Logger;
}

/** Final outcomes remembered for `waitFor` callers that ask after the fact. */
const REMEMBERED = 1000;

/**
 * The workers that send what the outbox queued. A failure the kernel classifies as retryable
 * (network, 408, 429, 5xx) is thrown back to the queue, which retries with the job's backoff;
 * any other failure is thrown as NonRetryableJobError, so the job goes to the failed set at once.
 * When a job lands in the failed set a `provider.error` event (operation `deliver`, code
 * `DELIVERY_FAILED`) is raised for it.
 */
export class DeliveryWorkers {
  readonly outcomes = new EventEmitter<{ outcome: [DeliveryOutcome] }>();
  private readonly workers: Worker[] = [];
  private readonly finished = new Map<string, DeliveryOutcome>();
  private readonly logger: Logger;
  private closing?: Promise<void>;

  private constructor(private readonly opts: DeliveryWorkersOptions) {
    this.logger = opts.logger ?? silentLogger();
    this.outcomes.setMaxListeners(0);
  }

  static start(opts: DeliveryWorkersOptions): DeliveryWorkers {
    const w = new DeliveryWorkers(opts);
    const concurrency = opts.concurrency ?? 4;
    const { email, notification } = opts;
    if (email) {
      w.workers.push(
        opts.queue.process(
          EMAIL_QUEUE,
          w.handler(
            EMAIL_QUEUE,
            'email',
            () => email.name,
            async (payload) => (await email.provider.send(decodeEmail(payload))).messageId,
          ),
          { concurrency },
        ),
      );
    }
    if (notification) {
      w.workers.push(
        opts.queue.process(
          NOTIFICATION_QUEUE,
          w.handler(
            NOTIFICATION_QUEUE,
            'notification',
            () => notification.name,
            async (payload) => {
              await notification.provider.notify(decodeNotification(payload));
              return undefined;
            },
          ),
          { concurrency },
        ),
      );
    }
    return w;
  }

  private handler(
    queue: string,
    capability: CapabilityName,
    provider: () => string,
    deliver: (payload: unknown) => Promise<string | undefined>,
  ) {
    return async (job: Job<unknown>): Promise<void> => {
      const base = { queue, jobId: job.id, attempt: job.attempt, maxAttempts: job.maxAttempts };
      let messageId: string | undefined;
      try {
        messageId = await deliver(job.payload);
      } catch (err) {
        const retryable = isRetryable(err);
        const final = !retryable || job.attempt >= job.maxAttempts;
        const error = describeError(err);
        this.report({ ...base, status: final ? 'failed' : 'retrying', error });
        if (final) {
          const why = retryable ? `after ${job.attempt} of ${job.maxAttempts} attempts` : `on attempt ${job.attempt} (not retryable)`;
          this.logger.error({ queue, jobId: job.id }, `${queue} job ${job.id} failed ${why}: ${error}`);
          this.opts.raise({
            type: 'provider.error',
            capability,
            provider: provider(),
            operation: DELIVERY_OPERATION,
            retryable: false,
            code: DELIVERY_FAILED_CODE,
            message: `${queue} job ${job.id} moved to the failed set ${why}: ${error}`,
            at: new Date(),
          });
        } else {
          this.logger.warn(
            { queue, jobId: job.id },
            `${queue} job ${job.id} attempt ${job.attempt} of ${job.maxAttempts} failed, will retry: ${error}`,
          );
        }
        if (!retryable) throw new NonRetryableJobError(error, { cause: err });
        throw err;
      }
      this.report({ ...base, status: 'delivered', ...(messageId ? { messageId } : {}) });
    };
  }

  private report(o: DeliveryOutcome): void {
    if (o.status !== 'retrying') {
      const key = `${o.queue}\n${o.jobId}`;
      this.finished.delete(key);
      this.finished.set(key, o);
      if (this.finished.size > REMEMBERED) this.finished.delete(this.finished.keys().next().value!);
    }
    this.outcomes.emit('outcome', o);
  }

  /**
   * Resolves with the job's final outcome (delivered, or failed) as seen by these workers.
   * `onRetry` hears about each failed try before that. Rejects after `timeoutMs` (another
   * worker, e.g. a running `apigate serve` on a shared Redis queue, may have taken the job).
   */
  waitFor(queue: string, jobId: string, opts: { timeoutMs: number; onRetry?: (o: DeliveryOutcome) => void }): Promise<DeliveryOutcome> {
    const done = this.finished.get(`${queue}\n${jobId}`);
    if (done) return Promise.resolve(done);
    return new Promise((resolve, reject) => {
      let last: DeliveryOutcome | undefined;
      const listener = (o: DeliveryOutcome) => {
        if (o.queue !== queue || o.jobId !== jobId) return;
        if (o.status === 'retrying') {
          last = o;
          opts.onRetry?.(o);
          return;
        }
        clearTimeout(timer);
        this.outcomes.off('outcome', listener);
        resolve(o);
      };
      const timer = setTimeout(() => {
        this.outcomes.off('outcome', listener);
        const seen = last ? `attempt ${last.attempt} of ${last.maxAttempts} failed: ${last.error}` : 'no attempt seen by this worker';
        reject(new Error(`${queue} job ${jobId} not done within ${Math.round(opts.timeoutMs / 1000)} s (${seen}); it stays queued`));
      }, opts.timeoutMs);
      this.outcomes.on('outcome', listener);
    });
  }

  /** Stops taking jobs and waits for the ones being sent. Idempotent. */
  close(): Promise<void> {
    this.closing ??= Promise.all(this.workers.map((w) => w.close())).then(() => undefined);
    return this.closing;
  }
}
