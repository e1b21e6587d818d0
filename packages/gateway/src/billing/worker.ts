import { describeError, type Job, type Logger, type PaymentProvider, type QueueProvider, redact, type Worker } from '@apigate/kernel';
import { DomainError } from '../domain/errors.js';
import { jobIdOf, PAYMENT_QUEUE, PaymentInbox, type PaymentJob, type RecordedPaymentEvent, retryDelayMs } from './events.js';
import { PaymentMappingError, PaymentProcessor, type PaymentProcessorOptions } from './processor.js';

/** Settings read by the payment worker (defaults in brackets): tries per event [8], first retry wait in ms [5000]. */
export const PAYMENT_ATTEMPTS_SETTING = 'payment.events.attempts';
export const PAYMENT_BACKOFF_SETTING = 'payment.events.backoff_ms';
export const DEFAULT_PAYMENT_ATTEMPTS = 8;
export const DEFAULT_PAYMENT_BACKOFF_MS = 5_000;

export interface PaymentWorkerOptions extends PaymentProcessorOptions {
  /** The selected payment provider's name: rows of another provider are failed with a clear reason. */
  providerName: string;
  payment: Pick<PaymentProvider, 'normalizeWebhook'>;
  /** Tries per event, the first included; default: setting payment.events.attempts, else 8. */
  attempts?: number;
  /** Wait before the first retry, doubling each time (at most an hour); default: setting payment.events.backoff_ms, else 5 s. */
  backoffMs?: number;
  /** How often due rows are re-queued and past_due grace periods checked. Default 60 s. */
  sweepMs?: number;
}

export interface PaymentWorker extends Worker {
  readonly processor: PaymentProcessor;
  readonly inbox: PaymentInbox;
  /** Publishes a job for every queued row (due ones now, waiting ones delayed). Returns how many were new. */
  requeueAll(): Promise<number>;
  /** Sends one failed row back with fresh tries (after the missing mapping was created, say). */
  replay(provider: string, eventId: string): Promise<RecordedPaymentEvent>;
}

const intSetting = (o: PaymentWorkerOptions, key: string, fallback: number): number => {
  const raw = o.store.settings.get(key)?.trim();
  return raw && /^\d+$/.test(raw) ? Number(raw) : fallback;
};

/** Failures that retrying cannot fix: a missing mapping, a body that is not an event, a refused value. */
function isFinal(err: unknown): boolean {
  if (err instanceof PaymentMappingError || err instanceof DomainError) return true;
  const e = err as { code?: unknown; retryable?: unknown } | null;
  if (e?.code === 'INVALID_INPUT' || e?.code === 'PAYMENT_MAPPING_MISSING') return true;
  return e?.retryable === false;
}

/** A row's error as stored and shown: one line, known secrets masked, bounded. */
const maskedError = (err: unknown): string => redact(describeError(err)).replace(/\s+/g, ' ').slice(0, 500);

/** Publishes the row's next try; a job still known with the same id makes this a no-op. */
export async function enqueuePaymentEvent(
  queue: Pick<QueueProvider, 'publish'>,
  e: Pick<RecordedPaymentEvent, 'provider' | 'eventId' | 'attempts' | 'nextAttemptAt'>,
  now = Date.now(),
): Promise<boolean> {
  const delayMs = e.nextAttemptAt ? Math.max(0, e.nextAttemptAt.getTime() - now) : 0;
  const res = await queue.publish<PaymentJob>(
    PAYMENT_QUEUE,
    { provider: e.provider, eventId: e.eventId },
    // The inbox counts the event's tries; the queue's own retries only cover a handler crash.
    { jobId: jobIdOf(e), attempts: 3, backoff: { type: 'exponential', delayMs: 1000 }, ...(delayMs > 0 ? { delayMs } : {}) },
  );
  return !res.duplicate;
}

/**
 * Sends a failed (or stuck queued) inbox row back with fresh tries, found by its event id (and
 * provider when several have that id). With a queue it is published at once; without one (the
 * CLI beside a server on the memory queue) the server's sweep picks it up within `sweepMs`.
 */
export async function replayPaymentEvent(
  o: { inbox: PaymentInbox; queue?: Pick<QueueProvider, 'publish'> | undefined; now?: Date },
  eventId: string,
  provider?: string,
): Promise<RecordedPaymentEvent> {
  const row = await findPaymentEvent(o.inbox, eventId, provider);
  if (row.status === 'applied' || row.status === 'skipped') {
    throw new DomainError(
      'conflict',
      'PAYMENT_EVENT_DONE',
      `payment event ${eventId} is already ${row.status}; only failed or queued events are replayed`,
    );
  }
  if (!row.hasBody)
    throw new DomainError(
      'conflict',
      'PAYMENT_EVENT_NO_BODY',
      `payment event ${eventId} was recorded without its body and cannot be processed again`,
    );
  const at = o.now ?? new Date();
  await o.inbox.requeue(row.provider, row.eventId, at);
  const fresh = (await o.inbox.find(row.provider, row.eventId))!;
  if (o.queue) await enqueuePaymentEvent(o.queue, fresh, at.getTime());
  return fresh;
}

/** One inbox row by event id; NOT_FOUND, or a conflict naming the providers when the id is ambiguous. */
export async function findPaymentEvent(inbox: PaymentInbox, eventId: string, provider?: string): Promise<RecordedPaymentEvent> {
  const rows = (await inbox.findById(eventId)).filter((r) => provider === undefined || r.provider === provider);
  if (rows.length === 0)
    throw new DomainError('not_found', 'NOT_FOUND', `payment event ${eventId}${provider ? ` of ${provider}` : ''} not found`);
  if (rows.length > 1) {
    throw new DomainError(
      'conflict',
      'AMBIGUOUS',
      `payment event ${eventId} exists for ${rows.map((r) => r.provider).join(', ')}: name the provider`,
      'provider',
    );
  }
  return rows[0]!;
}

/**
 * Processes the payment inbox: each `payment.events` job names a row; the worker loads its
 * stored body, normalises it with the provider (`normalizeWebhook`, which may call the provider's
 * API), applies it (PaymentProcessor) and records the outcome. A retryable failure waits with
 * exponential backoff and ends `failed` after the last try; a final one (missing mapping, bad
 * body) is `failed` at once. At start every `queued` row is published again, so jobs lost with
 * a memory queue (SIGTERM, SIGKILL) are not lost events; a periodic sweep does the same for due
 * rows and withdraws plans whose past_due grace period ended.
 */
export function startPaymentWorker(queue: Pick<QueueProvider, 'process' | 'publish'>, o: PaymentWorkerOptions): PaymentWorker {
  const processor = new PaymentProcessor(o);
  const inbox = new PaymentInbox(o.store);
  const log: Logger = o.logger;
  const now = o.now ?? (() => new Date());
  const attempts = () => o.attempts ?? intSetting(o, PAYMENT_ATTEMPTS_SETTING, DEFAULT_PAYMENT_ATTEMPTS);
  const backoffMs = () => o.backoffMs ?? intSetting(o, PAYMENT_BACKOFF_SETTING, DEFAULT_PAYMENT_BACKOFF_MS);

  const handle = async (job: Job<PaymentJob>): Promise<void> => {
    const { provider, eventId } = job.payload;
    const row = await inbox.find(provider, eventId);
    // Done already, or a stale job of an earlier try: the row's own due job runs it.
    if (!row || row.status !== 'queued') return;
    if (row.nextAttemptAt && row.nextAttemptAt.getTime() > now().getTime() + 1000) return;
    const input = await inbox.input(provider, eventId);
    if (provider !== o.providerName || !input) {
      const why = !input
        ? 'the row has no stored body (recorded before the inbox)'
        : `payment provider ${provider} is not the selected one (${o.providerName})`;
      await inbox.fail(provider, eventId, why);
      log.warn({ provider, eventId }, `payment event failed: ${why}`);
      return;
    }
    const attempt = await inbox.startAttempt(provider, eventId, row.attempts);
    // Another worker (this instance's or another's) claimed this try first: it runs it.
    if (attempt === undefined) return;
    try {
      const event = await o.payment.normalizeWebhook(input);
      const result = await processor.applyEvent(provider, event);
      await inbox.finish(provider, eventId, result.status, now());
    } catch (err) {
      const error = maskedError(err);
      const max = attempts();
      if (isFinal(err) || attempt >= max) {
        await inbox.fail(provider, eventId, error);
        log.warn({ provider, eventId, attempt }, `payment event failed${isFinal(err) ? '' : ` after ${attempt} tries`}: ${error}`);
        return;
      }
      const next = new Date(now().getTime() + retryDelayMs(attempt, backoffMs()));
      await inbox.retryLater(provider, eventId, error, next);
      log.warn({ provider, eventId, attempt, nextAttemptAt: next.toISOString() }, `payment event not applied, retrying: ${error}`);
      await enqueuePaymentEvent(queue, { provider, eventId, attempts: attempt, nextAttemptAt: next }, now().getTime());
    }
  };

  const worker = queue.process<PaymentJob>(PAYMENT_QUEUE, handle, { concurrency: 1 });

  const requeueAll = async (onlyDue = false): Promise<number> => {
    let fresh = 0;
    const t = now().getTime();
    for (const row of await inbox.queued()) {
      if (onlyDue && row.nextAttemptAt && row.nextAttemptAt.getTime() > t) continue;
      if (await enqueuePaymentEvent(queue, row, t)) fresh++;
    }
    return fresh;
  };

  const sweep = async (startup: boolean) => {
    try {
      const n = await requeueAll(!startup);
      if (n > 0) log.info({ count: n }, `payment inbox: ${n} queued event(s) sent to the worker${startup ? ' at start' : ''}`);
      await processor.expirePastDue();
    } catch (err) {
      log.warn(`payment inbox sweep failed: ${maskedError(err)}`);
    }
  };
  let closed = false;
  const started = sweep(true);
  const timer = setInterval(() => void sweep(false), o.sweepMs ?? 60_000);
  timer.unref();

  return {
    processor,
    inbox,
    requeueAll: () => requeueAll(false),
    replay: (provider, eventId) => replayPaymentEvent({ inbox, queue, now: now() }, eventId, provider),
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      await started;
      await worker.close();
    },
  };
}
