import { setTimeout as sleep } from 'node:timers/promises';
import type { DeliveryOutcome, DeliveryWorkers } from '@apigate/gateway';
import type { JobStatus, QueueProvider } from '@apigate/kernel';

export interface FollowedOutcome extends DeliveryOutcome {
  /** Who ran the final try: this command's own worker, or another (a running `apigate serve`). */
  deliveredBy: 'here' | 'elsewhere';
}

export interface FollowOptions {
  queue: QueueProvider;
  queueName: string;
  jobId: string;
  timeoutMs: number;
  /** Starts this command's own delivery workers (called at most once). */
  startWorkers: () => DeliveryWorkers;
  /** A job nobody has taken after this long is delivered by this command's own worker. */
  graceMs?: number;
  pollMs?: number;
  onRetry?: (o: DeliveryOutcome) => void;
}

/**
 * Follows one job on a durable queue until it is delivered or failed, through the queue's job
 * state, so the outcome is right whichever process's worker runs it (a running server's usually).
 * Only when no worker has taken the job within `graceMs` does this command start its own.
 * Resolves with the outcome; rejects on timeout (the job stays queued).
 */
export async function followJob(o: FollowOptions): Promise<FollowedOutcome> {
  const deadline = Date.now() + o.timeoutMs;
  const graceAt = Date.now() + (o.graceMs ?? 3_000);
  let workers: DeliveryWorkers | undefined;
  let local: DeliveryOutcome | undefined;
  let reported = 0;
  let last: JobStatus | undefined;
  const remember = (d: DeliveryOutcome) => {
    if (d.queue !== o.queueName || d.jobId !== o.jobId) return;
    if (d.status !== 'retrying') local = d;
    else if (d.attempt > reported) {
      // Our own worker's retries are told as they happen: with a short backoff the queue's
      // retrying state can come and go between two polls.
      reported = d.attempt;
      o.onRetry?.(d);
    }
  };
  try {
    for (;;) {
      const s = await o.queue.jobStatus(o.queueName, o.jobId);
      if (s) last = s;
      const attempts = s?.attemptsMade ?? 0;
      const maxAttempts = s?.maxAttempts ?? local?.maxAttempts ?? 1;
      if (s?.state === 'completed' || s?.state === 'failed') {
        const here = local !== undefined;
        const status = s.state === 'completed' ? 'delivered' : 'failed';
        return {
          queue: o.queueName,
          jobId: o.jobId,
          status,
          attempt: local?.attempt ?? (attempts || 1),
          maxAttempts,
          ...(status === 'failed' ? { error: s.error ?? local?.error ?? 'unknown error' } : {}),
          ...(local?.messageId ? { messageId: local.messageId } : {}),
          deliveredBy: here ? 'here' : 'elsewhere',
        };
      }
      if (s && attempts > reported && s.error) {
        reported = attempts;
        o.onRetry?.({ queue: o.queueName, jobId: o.jobId, status: 'retrying', attempt: attempts, maxAttempts, error: s.error });
      }
      if (!workers && Date.now() >= graceAt && (s === undefined || s.state === 'waiting' || s.state === 'delayed')) {
        workers = o.startWorkers();
        workers.outcomes.on('outcome', remember);
      }
      if (Date.now() >= deadline) {
        const seen = last ? `${last.state}${last.error ? `, last error: ${last.error}` : ''}` : 'not seen in the queue';
        throw new Error(`${o.queueName} job ${o.jobId} not done within ${Math.round(o.timeoutMs / 1000)} s (${seen}); it stays queued`);
      }
      await sleep(o.pollMs ?? 200);
    }
  } finally {
    if (workers) {
      workers.outcomes.off('outcome', remember);
      await workers.close();
    }
  }
}
