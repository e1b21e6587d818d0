import {
  assertProcessArgs,
  type BackoffOptions,
  defineProvider,
  type FailedJob,
  fields,
  isNonRetryableJobError,
  type Job,
  type JobHandler,
  type ProcessOptions,
  type PublishOptions,
  type PublishResult,
  type QueueProvider,
  type QueueStats,
  type Worker,
  z,
} from '@apigate/kernel';
import { randomUUID } from 'node:crypto';
import { MinHeap } from './heap.js';

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

/** Every queue lives in this process: timers for delays, a heap for priorities, a Map for the failed set. */
export class MemoryQueue implements QueueProvider {
  private readonly queues = new Map<string, QueueState>();
  private seq = 0;
  private closing?: Promise<void>;

  constructor(private readonly keepCompleted: number) {}

  private state(queue: string): QueueState {
    let q = this.queues.get(queue);
    if (!q) this.queues.set(queue, (q = new QueueState()));
    return q;
  }

  private assertOpen(): void {
    if (this.closing) throw new Error('memory queue is closed');
  }

  async publish<T>(queue: string, payload: T, opts?: PublishOptions): Promise<PublishResult> {
    this.assertOpen();
    return this.add(queue, payload, opts);
  }

  async publishMany<T>(queue: string, items: { payload: T; opts?: PublishOptions }[]): Promise<PublishResult[]> {
    this.assertOpen();
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
    q.delayed++;
    e.timer = setTimeout(() => {
      e.timer = undefined;
      q.delayed--;
      this.enqueue(queue, q, e);
    }, ms);
    // A pending delay alone should not keep a CLI process alive; close() clears it anyway.
    e.timer.unref();
  }

  /** Hands waiting jobs to workers with free slots, on a later tick so handlers never run inside publish(). */
  private schedulePump(queue: string, q: QueueState): void {
    if (q.pumpScheduled || q.workers.length === 0) return;
    q.pumpScheduled = true;
    setImmediate(() => {
      q.pumpScheduled = false;
      this.pump(queue, q);
    });
  }

  private pump(queue: string, q: QueueState): void {
    while (q.waiting.size > 0) {
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
    // A handler that says "do not retry" fails the job now, whatever attempts are left.
    if (e.attemptsMade < e.maxAttempts && !isNonRetryableJobError(err)) {
      const wait = backoffDelay(e.backoff, e.attemptsMade);
      if (wait > 0) this.delay(queue, q, e, wait);
      else this.enqueue(queue, q, e);
      return;
    }
    e.state = 'failed';
    e.error = err instanceof Error ? err.message || err.name : String(err);
    e.failedAt = Date.now();
    e.failSeq = ++this.seq;
    q.failed.delete(e.id);
    q.failed.set(e.id, e);
  }

  process<T>(queue: string, handler: JobHandler<T>, opts?: ProcessOptions): Worker {
    assertProcessArgs(queue, handler, opts);
    this.assertOpen();
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
    this.assertOpen();
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
    return { status: 'connected' as const, latencyMs: 0, detail: `${this.queues.size} queues, ${waiting} jobs waiting` };
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      const workers = [...this.queues.values()].flatMap((q) => q.workers);
      await Promise.all(workers.map((w) => w.close()));
      for (const q of this.queues.values()) for (const e of q.jobs.values()) clearTimeout(e.timer);
    })();
    return this.closing;
  }
}

export default defineProvider({
  capability: 'queue',
  name: 'memory',
  description: 'In-process job queue (single instance only; jobs are lost on restart)',
  config: z.object({
    keepCompleted: fields
      .int({ min: 0 })
      .default(1000)
      .describe('how many completed job ids each queue remembers, so a republish with the same jobId stays a no-op'),
  }),
  features: { durable: false },
  create: (config) => new MemoryQueue(config.keepCompleted),
});
