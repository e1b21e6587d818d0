import {
  assertProcessArgs,
  type BackoffOptions,
  defineProvider,
  type FailedJob,
  fields,
  isNonRetryableJobError,
  type Job,
  type JobHandler,
  type JobStatus,
  type Logger,
  type ProcessOptions,
  type PublishOptions,
  type PublishResult,
  type QueueProvider,
  type QueueStats,
  type Worker,
  z,
} from '@apigate/kernel';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MinHeap } from './heap.js';
import { type SpooledJob, type SpoolLine, takeSpool, writeSpool } from './spool.js';

type State = 'waiting' | 'delayed' | 'active' | 'failed';

interface Entry {
  id: string;
  /** The payload as JSON, so handlers get a copy (as they would from Redis) and not the publisher's object. */
  json: string;
  publishedAt: number;
  maxAttempts: number;
  attemptsMade: number;
  /** Absent priority sorts after every prioritised job. */
  priority: number;
  /** FIFO order within a priority; renewed each time the job goes back to waiting. */
  seq: number;
  backoff?: BackoffOptions;
  state: State;
  timer?: NodeJS.Timeout;
  /** When a delayed job is due (epoch ms), so the spool keeps its delay. */
  dueAt?: number;
  error?: string;
  failedAt?: number;
  /** Failure order, the cursor of `failed()`. */
  failSeq?: number;
}

const DEFAULT_FAILED_PAGE = 100;

/** Backoff before the next try, after `attemptsMade` failed tries (the same formulas as BullMQ's). */
export function backoffDelay(backoff: BackoffOptions | undefined, attemptsMade: number): number {
  if (!backoff) return 0;
  return backoff.type === 'fixed' ? backoff.delayMs : Math.round(2 ** (attemptsMade - 1) * backoff.delayMs);
}

class MemoryWorker implements Worker {
  running = 0;
  closing = false;
  private readonly inFlight = new Set<Promise<void>>();
  private closed?: Promise<void>;

  constructor(
    readonly concurrency: number,
    readonly handler: JobHandler<unknown>,
    private readonly onClosed: (w: MemoryWorker) => void,
  ) {}

  get free(): number {
    return this.closing ? 0 : this.concurrency - this.running;
  }

  track(p: Promise<void>): void {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  close(): Promise<void> {
    this.closing = true;
    this.closed ??= Promise.all([...this.inFlight]).then(() => this.onClosed(this));
    return this.closed;
  }
}

class QueueState {
  readonly jobs = new Map<string, Entry>();
  readonly waiting = new MinHeap<Entry>((a, b) => a.priority < b.priority || (a.priority === b.priority && a.seq < b.seq));
  /** In failure order (a job that fails again is re-inserted at the end). */
  readonly failed = new Map<string, Entry>();
  /** Ids of the last completed jobs, oldest first: they keep a republish with the same jobId a no-op. */
  readonly completed = new Set<string>();
  readonly workers: MemoryWorker[] = [];
  active = 0;
  delayed = 0;
  pumpScheduled = false;
  nextWorker = 0;
}

export interface MemoryQueueOptions {
  keepCompleted: number;
  /**
   * Folder where close() writes the jobs still waiting, delayed, running or failed (and the
   * remembered completed ids), and where the next start reads them back. Absent: nothing survives.
   */
  spoolDir?: string;
  /** How long close() lets running handlers finish before it spools their jobs as waiting. Default 5000 ms. */
  closeTimeoutMs?: number;
  logger?: Logger;
}

/** Every queue lives in this process: timers for delays, a heap for priorities, a Map for the failed set. */
export class MemoryQueue implements QueueProvider {
  private readonly queues = new Map<string, QueueState>();
  private seq = 0;
  /** Set once close() stops the queue: no more timers or hand-outs, only bookkeeping. */
  private stopped = false;
  private spooled = false;
  private readonly keepCompleted: number;
  /** Where close() spools the jobs it holds; undefined when spooling is off. */
  readonly spoolDir: string | undefined;
  private readonly closeTimeoutMs: number;
  private readonly logger: Logger | undefined;
  /** A process that exits without close() (a shutdown deadline) still spools what it holds. */
  private readonly onExit = () => this.spool();

  constructor(opts: MemoryQueueOptions | number) {
    const o = typeof opts === 'number' ? { keepCompleted: opts } : opts;
    this.keepCompleted = o.keepCompleted;
    this.spoolDir = o.spoolDir;
    this.closeTimeoutMs = o.closeTimeoutMs ?? 5_000;
    this.logger = o.logger;
    if (this.spoolDir) {
      this.replay(this.spoolDir);
      process.on('exit', this.onExit);
    }
  }

  private state(queue: string): QueueState {
    let q = this.queues.get(queue);
    if (!q) this.queues.set(queue, (q = new QueueState()));
    return q;
  }

  async publish<T>(queue: string, payload: T, opts?: PublishOptions): Promise<PublishResult> {
    return this.add(queue, payload, opts);
  }

  async publishMany<T>(queue: string, items: { payload: T; opts?: PublishOptions }[]): Promise<PublishResult[]> {
    return items.map((item) => this.add(queue, item.payload, item.opts));
  }

  private add(queue: string, payload: unknown, opts: PublishOptions = {}): PublishResult {
    const q = this.state(queue);
    const id = opts.jobId ?? randomUUID();
    if (q.jobs.has(id) || q.completed.has(id)) return { id, duplicate: true };
    const entry: Entry = {
      id,
      json: JSON.stringify(payload) ?? 'null',
      publishedAt: Date.now(),
      maxAttempts: opts.attempts ?? 1,
      attemptsMade: 0,
      priority: opts.priority ?? Number.POSITIVE_INFINITY,
      seq: 0,
      ...(opts.backoff ? { backoff: { ...opts.backoff } } : {}),
      state: 'waiting',
    };
    q.jobs.set(id, entry);
    if (opts.delayMs) this.delay(queue, q, entry, opts.delayMs);
    else this.enqueue(queue, q, entry);
    return { id, duplicate: false };
  }

  private enqueue(queue: string, q: QueueState, e: Entry): void {
    e.state = 'waiting';
    e.seq = ++this.seq;
    q.waiting.push(e);
    this.schedulePump(queue, q);
  }

  private delay(queue: string, q: QueueState, e: Entry, ms: number): void {
    e.state = 'delayed';
    e.dueAt = Date.now() + ms;
    q.delayed++;
    if (this.stopped) return; // closed: it stays delayed and is spooled with its due time
    e.timer = setTimeout(() => {
      e.timer = undefined;
      e.dueAt = undefined;
      q.delayed--;
      this.enqueue(queue, q, e);
    }, ms);
    // A pending delay alone should not keep a CLI process alive; close() clears it anyway.
    e.timer.unref();
  }

  /** Hands waiting jobs to workers with free slots, on a later tick so handlers never run inside publish(). */
  private schedulePump(queue: string, q: QueueState): void {
    if (q.pumpScheduled || q.workers.length === 0 || this.stopped) return;
    q.pumpScheduled = true;
    setImmediate(() => {
      q.pumpScheduled = false;
      this.pump(queue, q);
    });
  }

  private pump(queue: string, q: QueueState): void {
    while (q.waiting.size > 0 && !this.stopped) {
      const worker = this.pickWorker(q);
      if (!worker) return;
      this.run(queue, q, worker, q.waiting.pop()!);
    }
  }

  private pickWorker(q: QueueState): MemoryWorker | undefined {
    const n = q.workers.length;
    for (let i = 0; i < n; i++) {
      const w = q.workers[(q.nextWorker + i) % n]!;
      if (w.free > 0) {
        q.nextWorker = (q.nextWorker + i + 1) % n;
        return w;
      }
    }
    return undefined;
  }

  private run(queue: string, q: QueueState, worker: MemoryWorker, e: Entry): void {
    e.state = 'active';
    q.active++;
    worker.running++;
    const job: Job<unknown> = {
      id: e.id,
      queue,
      payload: JSON.parse(e.json),
      attempt: e.attemptsMade + 1,
      maxAttempts: e.maxAttempts,
      publishedAt: new Date(e.publishedAt),
    };
    const done = Promise.resolve()
      .then(() => worker.handler(job))
      .then(
        () => this.complete(q, e),
        (err: unknown) => this.fail(queue, q, e, err),
      )
      .finally(() => {
        q.active--;
        worker.running--;
        this.schedulePump(queue, q);
      });
    worker.track(done);
  }

  private complete(q: QueueState, e: Entry): void {
    // Purged while it ran: nothing to record.
    if (q.jobs.get(e.id) !== e) return;
    q.jobs.delete(e.id);
    if (this.keepCompleted === 0) return;
    q.completed.add(e.id);
    if (q.completed.size > this.keepCompleted) q.completed.delete(q.completed.values().next().value!);
  }

  private fail(queue: string, q: QueueState, e: Entry, err: unknown): void {
    if (q.jobs.get(e.id) !== e) return;
    e.attemptsMade++;
    e.error = err instanceof Error ? err.message || err.name : String(err); // jobStatus shows it while a retry waits
    // A handler that says "do not retry" fails the job now, whatever attempts are left.
    if (e.attemptsMade < e.maxAttempts && !isNonRetryableJobError(err)) {
      const wait = backoffDelay(e.backoff, e.attemptsMade);
      if (wait > 0) this.delay(queue, q, e, wait);
      else this.enqueue(queue, q, e);
      return;
    }
    e.state = 'failed';
    e.failedAt = Date.now();
    e.failSeq = ++this.seq;
    q.failed.delete(e.id);
    q.failed.set(e.id, e);
  }

  process<T>(queue: string, handler: JobHandler<T>, opts?: ProcessOptions): Worker {
    assertProcessArgs(queue, handler, opts);
    const q = this.state(queue);
    const worker = new MemoryWorker(opts?.concurrency ?? 1, handler as JobHandler<unknown>, (w) => {
      const i = q.workers.indexOf(w);
      if (i >= 0) q.workers.splice(i, 1);
    });
    q.workers.push(worker);
    this.schedulePump(queue, q);
    return worker;
  }

  async failed(queue: string, opts: { limit?: number; cursor?: string } = {}): Promise<{ items: FailedJob[]; cursor?: string }> {
    const q = this.queues.get(queue);
    const limit = opts.limit ?? DEFAULT_FAILED_PAGE;
    const after = opts.cursor === undefined ? 0 : Number(opts.cursor);
    if (!Number.isSafeInteger(after)) throw new Error(`failed(): cursor "${opts.cursor}" is not one this queue returned`);
    const items: FailedJob[] = [];
    let more = false;
    for (const e of q?.failed.values() ?? []) {
      if (e.failSeq! <= after) continue;
      if (items.length === limit) {
        more = true;
        break;
      }
      items.push({
        id: e.id,
        queue,
        payload: JSON.parse(e.json),
        attempt: e.attemptsMade,
        maxAttempts: e.maxAttempts,
        publishedAt: new Date(e.publishedAt),
        error: e.error!,
        failedAt: new Date(e.failedAt!),
      });
    }
    const last = items.at(-1);
    return more && last ? { items, cursor: String(q!.failed.get(last.id)!.failSeq) } : { items };
  }

  async retryFailed(queue: string, jobId?: string): Promise<number> {
    const q = this.queues.get(queue);
    if (!q) return 0;
    const targets = jobId === undefined ? [...q.failed.values()] : [q.failed.get(jobId)].filter((e) => e !== undefined);
    for (const e of targets) {
      q.failed.delete(e.id);
      // A retry from the failed set is a fresh set of tries.
      e.attemptsMade = 0;
      e.error = undefined;
      e.failedAt = undefined;
      this.enqueue(queue, q, e);
    }
    return targets.length;
  }

  async jobStatus(queue: string, jobId: string): Promise<JobStatus | undefined> {
    const q = this.queues.get(queue);
    const e = q?.jobs.get(jobId);
    if (e) {
      return {
        id: e.id,
        queue,
        state: e.state,
        attemptsMade: e.attemptsMade,
        maxAttempts: e.maxAttempts,
        ...(e.error ? { error: e.error } : {}),
      };
    }
    // Completed ids are all it keeps of a finished job.
    return q?.completed.has(jobId) ? { id: jobId, queue, state: 'completed' } : undefined;
  }

  async stats(queue: string): Promise<QueueStats> {
    const q = this.queues.get(queue);
    if (!q) return { waiting: 0, active: 0, delayed: 0, failed: 0, completed: 0 };
    return { waiting: q.waiting.size, active: q.active, delayed: q.delayed, failed: q.failed.size, completed: q.completed.size };
  }

  async purge(queue: string): Promise<void> {
    const q = this.queues.get(queue);
    if (!q) return;
    // Active jobs finish on their worker; everything else is forgotten, including completed ids.
    for (const e of q.jobs.values()) {
      if (e.state === 'active') continue;
      clearTimeout(e.timer);
      q.jobs.delete(e.id);
    }
    q.waiting.drain();
    q.failed.clear();
    q.completed.clear();
    q.delayed = 0;
  }

  async check() {
    let waiting = 0;
    for (const q of this.queues.values()) waiting += q.waiting.size;
    return { status: 'connected' as const, detail: `${this.queues.size} queues, ${waiting} jobs waiting` };
  }

  /**
   * Stops taking jobs and waits for the running ones; with a spool folder, waits at most
   * `closeTimeoutMs`, then writes every job it still holds (a job still running as waiting) to
   * the spool for the next start. The kernel calls it once.
   */
  async close(): Promise<void> {
    const workers = [...this.queues.values()].flatMap((q) => q.workers);
    const finished = Promise.all(workers.map((w) => w.close()));
    if (this.spoolDir) {
      const ac = new AbortController();
      await Promise.race([finished, sleep(this.closeTimeoutMs, undefined, { signal: ac.signal }).catch(() => undefined)]);
      ac.abort();
    } else await finished;
    this.stopped = true;
    for (const q of this.queues.values()) {
      for (const e of q.jobs.values()) {
        clearTimeout(e.timer);
        e.timer = undefined;
      }
    }
    this.spool();
    if (this.spoolDir) process.off('exit', this.onExit);
  }

  /** Writes what the queue holds to the spool folder, once. Synchronous (it also runs on process exit). */
  private spool(): void {
    if (!this.spoolDir || this.spooled) return;
    this.spooled = true;
    const lines: SpoolLine[] = [];
    let jobs = 0;
    for (const [queue, q] of this.queues) {
      const held = [...q.jobs.values()].sort((a, b) => a.seq - b.seq);
      // Failed jobs last, in failure order, so they come back in the same order.
      for (const e of held.filter((x) => x.state !== 'failed')) lines.push(toLine(queue, e));
      for (const e of q.failed.values()) lines.push(toLine(queue, e));
      jobs += q.jobs.size;
      if (q.completed.size > 0) lines.push({ v: 1, queue, completed: [...q.completed] });
    }
    try {
      const file = writeSpool(this.spoolDir, lines);
      if (file && jobs > 0) this.logger?.info({ file, jobs }, `memory queue: ${jobs} jobs spooled to ${file} for the next start`);
    } catch (err) {
      this.logger?.error({ err }, `memory queue: cannot write the spool in ${this.spoolDir}: ${jobs} jobs are lost`);
    }
  }

  /** Puts back what the last run spooled: waiting jobs queued, delayed ones with their due time, failed ones in the failed set. */
  private replay(dir: string): void {
    const { lines, files, bad } = takeSpool(dir);
    let jobs = 0;
    for (const line of lines) {
      const q = this.state(line.queue);
      if ('completed' in line) {
        for (const id of line.completed) q.completed.add(id);
        continue;
      }
      if (q.jobs.has(line.id)) continue;
      const e: Entry = {
        id: line.id,
        json: line.json,
        publishedAt: line.publishedAt,
        maxAttempts: line.maxAttempts,
        attemptsMade: line.attemptsMade,
        priority: line.priority ?? Number.POSITIVE_INFINITY,
        seq: 0,
        ...(line.backoff ? { backoff: line.backoff } : {}),
        state: 'waiting',
      };
      q.jobs.set(e.id, e);
      jobs++;
      if (line.state === 'failed') {
        e.state = 'failed';
        e.error = line.error ?? 'failed before a restart';
        e.failedAt = line.failedAt ?? Date.now();
        e.failSeq = ++this.seq;
        q.failed.set(e.id, e);
      } else if (line.state === 'delayed' && line.dueAt !== undefined && line.dueAt > Date.now()) {
        this.delay(line.queue, q, e, line.dueAt - Date.now());
      } else this.enqueue(line.queue, q, e);
    }
    if (bad > 0) this.logger?.error(`memory queue: ${bad} malformed lines in the spool in ${dir} skipped`);
    if (files > 0) this.logger?.info({ jobs }, `memory queue: ${jobs} jobs from the last run put back from ${dir}`);
  }
}

function toLine(queue: string, e: Entry): SpooledJob {
  const state = e.state === 'active' ? 'waiting' : e.state;
  return {
    v: 1,
    queue,
    id: e.id,
    json: e.json,
    publishedAt: e.publishedAt,
    maxAttempts: e.maxAttempts,
    attemptsMade: e.attemptsMade,
    priority: Number.isFinite(e.priority) ? e.priority : null,
    ...(e.backoff ? { backoff: e.backoff } : {}),
    state,
    ...(state === 'delayed' && e.dueAt !== undefined ? { dueAt: e.dueAt } : {}),
    ...(state === 'failed' ? { error: e.error, failedAt: e.failedAt } : {}),
  };
}

export default defineProvider({
  capability: 'queue',
  name: 'memory',
  description: 'In-process job queue (single instance only; jobs left at shutdown are spooled to the data dir for the next start)',
  config: z.object({
    keepCompleted: fields
      .int({ min: 0 })
      .default(1000)
      .describe('how many completed job ids each queue remembers, so a republish with the same jobId stays a no-op'),
    spool: fields
      .flag(true)
      .describe('true to keep waiting, delayed, running and failed jobs across a restart (spooled at close, replayed at start)'),
    spoolDir: z.string().min(1).optional().describe('the folder for spooled jobs (default <data dir>/providers/queue-memory/spool)'),
    closeTimeoutMs: fields
      .int({ min: 0 })
      .default(5_000)
      .describe('milliseconds close() lets running jobs finish before spooling them as waiting'),
  }),
  env: { spool: 'QUEUE_MEMORY_SPOOL', spoolDir: 'QUEUE_MEMORY_SPOOL_DIR', closeTimeoutMs: 'QUEUE_MEMORY_CLOSE_TIMEOUT_MS' },
  features: { durable: false },
  create: (config, ctx) =>
    new MemoryQueue({
      keepCompleted: config.keepCompleted,
      ...(config.spool ? { spoolDir: config.spoolDir ?? path.join(ctx.dataDir, 'spool') } : {}),
      closeTimeoutMs: config.closeTimeoutMs,
      logger: ctx.logger,
    }),
});
