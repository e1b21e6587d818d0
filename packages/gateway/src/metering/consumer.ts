import { InvalidInputError, type JobHandler, type Logger, type QueueProvider, type Worker } from '@apigate/kernel';
import { USAGE_QUEUE } from './recorder.js';
import { type UsageSink, usageBatchSchema } from './types.js';

/**
 * The queue handler that applies usage batches to the repository. Safe under at-least-once
 * delivery: the repository ignores a batch id it has already applied. A failure throws, so
 * the queue retries the batch with backoff and finally keeps it in its failed set.
 */
export function usageBatchHandler(repo: UsageSink, opts: { logger?: Logger } = {}): JobHandler<unknown> {
  return async (job) => {
    const parsed = usageBatchSchema.safeParse(job.payload);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new InvalidInputError(
        `usage batch ${job.id} is malformed: ${issue?.path.join('.') || 'payload'}: ${issue?.message ?? 'invalid'}`,
      );
    }
    const applied = await repo.applyBatch(parsed.data);
    if (!applied) opts.logger?.debug({ batch: parsed.data.id }, 'usage batch already applied; skipped');
  };
}

/** Starts consuming the usage queue into the repository. Close the returned worker on shutdown. */
export function startUsageConsumer(
  queue: QueueProvider,
  repo: UsageSink,
  opts: { queueName?: string; concurrency?: number; logger?: Logger } = {},
): Worker {
  return queue.process(opts.queueName ?? USAGE_QUEUE, usageBatchHandler(repo, opts), { concurrency: opts.concurrency ?? 1 });
}
