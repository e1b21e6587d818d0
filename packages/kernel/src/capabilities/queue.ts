import type { ProviderInstance } from './common.js';

export interface BackoffOptions {
  type: 'fixed' | 'exponential';
  delayMs: number;
}

export interface PublishOptions {
  /** Idempotency id: a second publish with the same id while the first is known is a no-op. */
  jobId?: string;
  delayMs?: number;
  /** Lower runs first (1 is the highest priority); absent runs after every prioritised job. */
  priority?: number;
  /** Total tries including the first. Default 1. */
  attempts?: number;
  backoff?: BackoffOptions;
}

export interface Job<T = unknown> {
  id: string;
  queue: string;
  payload: T;
  /** 1 on the first try. */
  attempt: number;
  maxAttempts: number;
  publishedAt: Date;
}

export interface FailedJob<T = unknown> extends Job<T> {
  error: string;
  failedAt: Date;
}

/** Where a job is now; `completed` only while the queue still remembers it (its kept completed jobs). */
export type JobState = 'waiting' | 'delayed' | 'active' | 'completed' | 'failed';

export interface JobStatus {
  id: string;
  queue: string;
  state: JobState;
  /** Tries that have finished (failed or succeeded); absent when the queue keeps only a completed job's id. */
  attemptsMade?: number;
  maxAttempts?: number;
  /** Why the last try failed: a failed job, or one waiting for its next try. */
  error?: string;
}

export interface QueueStats {
  waiting: number;
  active: number;
  delayed: number;
  failed: number;
  completed?: number;
}

export interface PublishResult {
  id: string;
  duplicate: boolean;
}

export interface ProcessOptions {
  concurrency?: number;
}

export interface Worker {
  /** Stops taking jobs and waits for the ones in flight. */
  close(): Promise<void>;
}

export type JobHandler<T> = (job: Job<T>) => Promise<void>;

/**
 * At-least-once: a handler that throws, or a worker that dies, gets the job again until
 * its attempts are spent; then it moves to the failed set. A handler that throws a
 * `NonRetryableJobError` (see errors.ts) sends its job to the failed set at once.
 */
export interface QueueProvider extends ProviderInstance {
  publish<T>(queue: string, payload: T, opts?: PublishOptions): Promise<PublishResult>;
  publishMany<T>(queue: string, items: { payload: T; opts?: PublishOptions }[]): Promise<PublishResult[]>;
  process<T>(queue: string, handler: JobHandler<T>, opts?: ProcessOptions): Worker;
  failed(queue: string, opts?: { limit?: number; cursor?: string }): Promise<{ items: FailedJob[]; cursor?: string }>;
  /** Moves one failed job (or all when `jobId` is absent) back to waiting. Returns how many. */
  retryFailed(queue: string, jobId?: string): Promise<number>;
  stats(queue: string): Promise<QueueStats>;
  /**
   * One job's state by id, seen from any process sharing the queue (so a CLI can follow a job a
   * server's worker runs). Undefined when the queue does not know the id (never published, purged,
   * or a completed job beyond the ones it keeps).
   */
  jobStatus(queue: string, jobId: string): Promise<JobStatus | undefined>;
  /** Removes waiting, delayed and failed jobs of the queue. */
  purge(queue: string): Promise<void>;
}

export interface QueueFeatures {
  /** Jobs survive the death of the worker's process (Redis yes, memory no). */
  durable?: boolean;
}
