import type { PublishOptions } from './capabilities/queue.js';
import { InvalidInputError } from './errors.js';

/** Highest accepted job priority (1 is the highest priority; every backend can order this range). */
export const MAX_QUEUE_PRIORITY = 1_000_000;

const QUEUE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const CONTROL = /[\u0000-\u001f\u007f]/;

const isWhole = (v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;

/** Throws InvalidInputError unless `name` is a queue name every backend can store. */
export function assertQueueName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || !QUEUE_NAME.test(name)) {
    throw new InvalidInputError('queue name must be 1-128 letters, digits, ".", "_" or "-", starting with a letter or digit');
  }
}

/** Throws InvalidInputError naming the first option of `opts` that the queue contract does not allow. */
export function assertPublishOptions(opts: unknown): asserts opts is PublishOptions | undefined {
  if (opts === undefined) return;
  if (typeof opts !== 'object' || opts === null) throw new InvalidInputError('publish options must be an object');
  const o = opts as Record<string, unknown>;
  if (o.jobId !== undefined) {
    if (typeof o.jobId !== 'string' || o.jobId.length === 0 || o.jobId.length > 256 || CONTROL.test(o.jobId)) {
      throw new InvalidInputError('jobId must be a string of 1-256 characters without control characters');
    }
  }
  if (o.delayMs !== undefined && !isWhole(o.delayMs, 0)) throw new InvalidInputError('delayMs must be a whole number of at least 0');
  if (o.priority !== undefined && !isWhole(o.priority, 1, MAX_QUEUE_PRIORITY)) {
    throw new InvalidInputError(`priority must be a whole number from 1 (highest) to ${MAX_QUEUE_PRIORITY}`);
  }
  if (o.attempts !== undefined && !isWhole(o.attempts, 1, 1000))
    throw new InvalidInputError('attempts must be a whole number from 1 to 1000');
  if (o.backoff !== undefined) {
    const b = o.backoff as Record<string, unknown> | null;
    if (typeof b !== 'object' || b === null || (b.type !== 'fixed' && b.type !== 'exponential') || !isWhole(b.delayMs, 0)) {
      throw new InvalidInputError('backoff must be { type: "fixed" | "exponential", delayMs: whole number of at least 0 }');
    }
  }
}

/**
 * Throws InvalidInputError unless `process(queue, handler, opts)` arguments are usable. `process`
 * is synchronous (it returns the worker), so providers call this themselves instead of the
 * instrumentation guard, which reports bad input as a rejection.
 */
export function assertProcessArgs(queue: unknown, handler: unknown, opts: { concurrency?: unknown } | undefined): void {
  assertQueueName(queue);
  if (typeof handler !== 'function') throw new InvalidInputError('process needs a handler function');
  const c = opts?.concurrency;
  if (c !== undefined && !isWhole(c, 1, 10_000)) throw new InvalidInputError('concurrency must be a whole number from 1 to 10000');
}

/** Argument checks for the async queue operations, run by the kernel before a provider sees the call. */
export const queueGuards: Record<string, (args: unknown[]) => void> = {
  publish: (a) => {
    assertQueueName(a[0]);
    assertPublishOptions(a[2]);
  },
  publishMany: (a) => {
    assertQueueName(a[0]);
    if (!Array.isArray(a[1])) throw new InvalidInputError('publishMany items must be an array');
    for (const item of a[1] as { opts?: unknown }[]) assertPublishOptions(item?.opts);
  },
  failed: (a) => {
    assertQueueName(a[0]);
    const o = a[1] as { limit?: unknown; cursor?: unknown } | undefined;
    if (o?.limit !== undefined && !isWhole(o.limit, 1, 1000)) throw new InvalidInputError('limit must be a whole number from 1 to 1000');
    if (o?.cursor !== undefined && typeof o.cursor !== 'string')
      throw new InvalidInputError('cursor must be a string from a previous page');
  },
  retryFailed: (a) => assertQueueName(a[0]),
  stats: (a) => assertQueueName(a[0]),
  jobStatus: (a) => {
    assertQueueName(a[0]);
    if (typeof a[1] !== 'string' || a[1].length === 0) throw new InvalidInputError('jobStatus needs a job id');
  },
  purge: (a) => assertQueueName(a[0]),
};
