import {
  assertProcessArgs,
  type FailedJob,
  type Health,
  InvalidInputError,
  isNonRetryableJobError,
  type Job,
  type JobHandler,
  type JobState,
  type JobStatus,
  type ProcessOptions,
  type ProviderContext,
  ProviderError,
  type PublishOptions,
  type PublishResult,
  type QueueProvider,
  type QueueStats,
  redact,
  redisReconnectDelay,
  type Worker,
} from '@apigate/kernel';
import { type Job as BullJob, Worker as BullWorker, type JobsOptions, Queue, UnrecoverableError } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { type ConnectionConfig, connectionOptions, isTransient } from './connection.js';
import { fromBullId, toBullId } from './ids.js';

export interface RedisQueueConfig extends ConnectionConfig {
  prefix: string;
  keepCompleted: number;
  lockDurationMs: number;
  stalledIntervalMs: number;
  maxStalledCount: number;
}

/**
 * BullMQ's lowest priority. BullMQ runs jobs without a priority BEFORE prioritised ones; our
 * contract runs them after, so a job without a priority gets this one (FIFO among themselves).
 */
const NO_PRIORITY = 2 ** 21 - 1;
const DEFAULT_FAILED_PAGE = 100;
/** Jobs moved per batch by retryFailed(queue) and purge(), so no single Redis call runs long. */
const BATCH = 500;
/** BullMQ's error codes for "no such job" and "not in that state" (reprocessJob). */
const GONE_CODES = new Set([-1, -3]);

const chunks = <T>(list: T[], size: number): T[][] =>
  Array.from({ length: Math.ceil(list.length / size) }, (_v, i) => list.slice(i * size, (i + 1) * size));

function toJob(queue: string, bj: BullJob): Job<unknown> {
  return {
    id: fromBullId(bj.id!),
    queue,
    payload: bj.data,
    attempt: bj.attemptsMade + 1,
    maxAttempts: bj.opts.attempts ?? 1,
    publishedAt: new Date(bj.timestamp),
  };
}

/** BullMQ's job states in the contract's terms ('unknown': gone). */
const BULL_STATES: Record<string, JobState | undefined> = {
  waiting: 'waiting',
  wait: 'waiting',
  prioritized: 'waiting',
  'waiting-children': 'waiting',
  delayed: 'delayed',
  active: 'active',
  completed: 'completed',
  failed: 'failed',
};

/** Cursor of failed(): the failed set's score (failure time) and member of the last item returned. */
const encodeCursor = (score: string, bullId: string) => `${score}:${bullId}`;
function decodeCursor(cursor: string): { score: string; bullId: string } {
  const at = cursor.indexOf(':');
  const score = cursor.slice(0, at);
  if (at < 1 || !/^\d+$/.test(score)) throw new InvalidInputError('cursor must be a value returned by failed()');
  return { score, bullId: cursor.slice(at + 1) };
}

/**
 * An ioredis client whose duplicates (BullMQ makes one per Worker for its blocking fetch) join
 * the same set, so close() can see every worker connection, including the ones BullMQ made.
 */
class TrackedRedis extends Redis {
  constructor(
    options: RedisOptions,
    private readonly family: Set<Redis>,
  ) {
    super(options);
    family.add(this);
    this.once('end', () => family.delete(this));
  }

  override duplicate(override?: Partial<RedisOptions>): Redis {
    return new TrackedRedis({ ...this.options, ...override }, this.family);
  }
}

class RedisWorker implements Worker {
  private closing?: Promise<void>;

  constructor(
    private readonly worker: BullWorker,
    /** Handlers running now: close() lets them finish even while Redis is away. */
    private readonly running: ReadonlySet<Promise<unknown>>,
    private readonly redisUp: () => boolean,
    private readonly onClosed: (w: RedisWorker) => void,
    private readonly onError: (err: unknown) => void,
  ) {}

  /**
   * Redis up: BullMQ's close, which waits for the jobs in flight and records them as done.
   * Redis away: that close would wait for Redis to return, or for ever (it disconnects its
   * blocking connection and waits for it to end, which ioredis never does for a connection
   * disconnected between reconnect attempts). So the handlers in flight finish, then BullMQ
   * closes without waiting; a job whose completion could not be recorded keeps its lock until
   * it expires, and a live worker's stalled check runs it again (at-least-once).
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.redisUp()) return this.worker.close();
      await this.worker.pause(true);
      await Promise.allSettled([...this.running]);
      await this.worker.close(true);
    })()
      .catch(this.onError)
      .finally(() => this.onClosed(this));
    return this.closing;
  }
}

/**
 * Queues on Redis through BullMQ. One BullMQ Queue per queue name (cached) on a shared command
 * connection; one BullMQ Worker per process() call on a shared worker connection (each Worker
 * adds its own blocking connection). Jobs survive the gateway: a worker that dies mid-job leaves
 * its lock to expire, and BullMQ's stalled-job check hands the job to another worker.
 */
export class RedisQueue implements QueueProvider {
  private readonly conn: Redis;
  private workerConn?: Redis;
  /** The worker connection and BullMQ's duplicates of it (one blocking connection per Worker). */
  private readonly workerConns = new Set<Redis>();
  private readonly workerOptions: ReturnType<typeof connectionOptions>['workers'];
  /**
   * Set when close() starts: connections stop reconnecting, so a close during an outage ends
   * (commands waiting for Redis fail) instead of waiting for Redis to return.
   */
  private stopping = false;
  private readonly queues = new Map<string, Queue>();
  private readonly workers = new Set<RedisWorker>();
  /** Calls in progress: close() lets them finish so nothing being published is cut off. */
  private readonly pending = new Set<Promise<unknown>>();
  private closing?: Promise<void>;
  private lastError?: string;
  /** The last error ioredis reported; connect() only says "Connection is closed", this says why. */
  private lastCause?: unknown;
  private down = false;
  private wasReady = false;
  /** The password (field or URL), masked in the start-up error: create() throws it before the kernel's instrument sees it. */
  private readonly startSecrets: string[];
  /** Host, port and db without credentials: safe for logs, errors and health. */
  readonly where: string;
  /** maxmemory-policy read at start (undefined when CONFIG is not allowed). */
  policy?: string;

  constructor(
    private readonly cfg: RedisQueueConfig,
    private readonly ctx: Pick<ProviderContext, 'logger'>,
  ) {
    const opts = connectionOptions(cfg, `apigate-queue:${cfg.prefix}`);
    const retryStrategy = (attempt: number) => (this.stopping ? null : redisReconnectDelay(attempt));
    this.where = opts.where;
    this.workerOptions = { ...opts.workers, retryStrategy };
    this.startSecrets = [cfg.password, opts.commands.password].filter((s): s is string => !!s);
    this.conn = new Redis({ ...opts.commands, retryStrategy });
    this.watch();
  }

  /**
   * What Redis or BullMQ said, as it said it: the kernel masks the secrets in it wherever it goes out
   * (the provider's logger, the errors and health answers its instrument passes on).
   */
  private message(err: unknown): string {
    const m = (err as { message?: unknown } | null)?.message;
    return typeof m === 'string' && m ? m : String(err);
  }

  /** Keeps the command connection's last error (for errors and health) and logs an outage once, not per reconnect attempt. */
  private watch(): void {
    const conn = this.conn;
    conn.on('error', (err: unknown) => {
      this.lastCause = err;
      this.lastError = this.message(err);
    });
    conn.on('close', () => {
      if (!this.wasReady || this.down || this.closing) return;
      this.down = true;
      this.ctx.logger.warn(
        { where: this.where },
        `lost the connection to Redis${this.lastError ? ` (${this.lastError})` : ''}; reconnecting`,
      );
    });
    conn.on('ready', () => {
      this.wasReady = true;
      if (this.down) {
        this.down = false;
        this.ctx.logger.info({ where: this.where }, 'connection to Redis restored');
      }
    });
  }

  private logError(what: string, err: unknown): void {
    this.ctx.logger.warn({ where: this.where }, `${what}: ${this.message(err)}`);
  }

  /** Connects (bounded by connectTimeout) and checks the eviction policy. Throws when Redis cannot be reached. */
  async connect(): Promise<void> {
    try {
      await this.conn.connect();
    } catch (err) {
      this.conn.disconnect();
      const cause = this.lastCause ?? err;
      // A wrong password is a reply error (not retryable); a refused or dropped connection is.
      throw new ProviderError({
        capability: 'queue',
        provider: 'redis',
        operation: 'connect',
        retryable: isTransient(cause),
        message: `cannot reach Redis at ${this.where}: ${redact(this.message(cause), this.startSecrets)}`,
        cause,
      });
    }
    await this.checkEvictionPolicy();
  }

  private async checkEvictionPolicy(): Promise<void> {
    try {
      const reply = (await this.conn.config('GET', 'maxmemory-policy')) as string[];
      this.policy = reply[1];
    } catch (err) {
      this.ctx.logger.info(
        { where: this.where },
        `could not read maxmemory-policy (${this.message(err)}); make sure the queue's Redis uses noeviction`,
      );
      return;
    }
    if (this.policy !== undefined && this.policy !== 'noeviction') {
      this.ctx.logger.warn(
        { where: this.where, policy: this.policy },
        `Redis maxmemory-policy is "${this.policy}", not "noeviction": when memory runs out Redis may delete queued jobs. ` +
          "Set maxmemory-policy noeviction on the queue's Redis (a cache may evict keys, a queue must not)",
      );
    }
  }

  private queue(name: string): Queue {
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: this.conn, prefix: this.cfg.prefix });
      q.on('error', (err) => this.logError(`queue "${name}"`, err));
      this.queues.set(name, q);
    }
    return q;
  }

  private workerConnection(): Redis {
    if (!this.workerConn) {
      this.workerConn = new TrackedRedis(this.workerOptions, this.workerConns);
      // Failures here surface as the workers' own 'error' events, which are logged.
      this.workerConn.on('error', () => undefined);
    }
    return this.workerConn;
  }

  private fail(operation: string, err: unknown, retryable: boolean): ProviderError {
    const code = (err as { code?: unknown } | null)?.code;
    return new ProviderError({
      capability: 'queue',
      provider: 'redis',
      operation,
      retryable,
      message: this.message(err),
      ...(typeof code === 'string' ? { code } : {}),
      cause: err,
    });
  }

  /**
   * Runs one call: refused at once (retryable) while Redis is away instead of waiting for it,
   * tracked so close() lets it finish, and failures classified as retryable or not.
   */
  private async run<T>(operation: string, queue: string, fn: (q: Queue) => Promise<T>): Promise<T> {
    if (this.conn.status !== 'ready') {
      const why = `not connected to Redis at ${this.where} (${this.conn.status}${this.lastError ? `: ${this.lastError}` : ''})`;
      throw this.fail(operation, new Error(why), true);
    }
    const p = fn(this.queue(queue));
    this.pending.add(p);
    try {
      return await p;
    } catch (err) {
      if (err instanceof InvalidInputError || err instanceof ProviderError) throw err;
      const retryable = isTransient(err);
      if (!retryable) throw this.fail(operation, err, false);
      // A Queue whose start-up was cut by an outage stays broken: make a new one next time.
      void this.queues
        .get(queue)
        ?.close()
        .catch(() => undefined);
      this.queues.delete(queue);
      const reply = (err as { name?: unknown }).name === 'ReplyError';
      throw this.fail(operation, reply ? err : new Error(`Redis at ${this.where} unavailable: ${this.message(err)}`, { cause: err }), true);
    } finally {
      this.pending.delete(p);
    }
  }

  private jobOptions(id: string, o: PublishOptions): JobsOptions {
    return {
      jobId: toBullId(id),
      priority: o.priority ?? NO_PRIORITY,
      ...(o.delayMs ? { delay: o.delayMs } : {}),
      attempts: o.attempts ?? 1,
      ...(o.backoff ? { backoff: { type: o.backoff.type, delay: o.backoff.delayMs } } : {}),
      removeOnComplete: this.cfg.keepCompleted === 0 ? true : { count: this.cfg.keepCompleted },
      removeOnFail: false,
    };
  }

  publish<T>(queue: string, payload: T, opts?: PublishOptions): Promise<PublishResult> {
    return this.run('publish', queue, async (q) => (await this.add(q, [{ payload, ...(opts ? { opts } : {}) }]))[0]!);
  }

  async publishMany<T>(queue: string, items: { payload: T; opts?: PublishOptions }[]): Promise<PublishResult[]> {
    if (items.length === 0) return [];
    return this.run('publishMany', queue, (q) => this.add(q, items));
  }

  private async add(q: Queue, items: { payload: unknown; opts?: PublishOptions }[]): Promise<PublishResult[]> {
    const jobs = items.map(({ payload, opts = {} }) => {
      const id = opts.jobId ?? randomUUID();
      // Only a caller's jobId can collide. The job's name carries a token unique to this publish:
      // when the job read back has another name, an earlier publish made it, so this one is a duplicate.
      const token = opts.jobId === undefined ? undefined : randomUUID();
      return { id, token, name: token ?? 'job', data: payload, opts: this.jobOptions(id, opts) };
    });
    if (jobs.length === 1) await q.add(jobs[0]!.name, jobs[0]!.data, jobs[0]!.opts);
    else await q.addBulk(jobs.map(({ name, data, opts }) => ({ name, data, opts })));

    const named = jobs.filter((j) => j.token !== undefined);
    const stored = new Map<string, string | null>();
    if (named.length > 0) {
      const pipe = this.conn.pipeline();
      for (const j of named) pipe.hget(q.toKey(toBullId(j.id)), 'name');
      const replies = (await pipe.exec()) ?? [];
      replies.forEach(([err, value], i) => {
        if (err) throw err;
        stored.set(named[i]!.token!, value as string | null);
      });
    }
    // A job already gone again (completed and not kept) was ours: only a different token is a duplicate.
    return jobs.map((j) => {
      const name = j.token === undefined ? undefined : stored.get(j.token);
      return { id: j.id, duplicate: name !== undefined && name !== null && name !== j.token };
    });
  }

  process<T>(queue: string, handler: JobHandler<T>, opts?: ProcessOptions): Worker {
    assertProcessArgs(queue, handler, opts);
    const running = new Set<Promise<unknown>>();
    const run = async (bj: BullJob) => {
      const handled = Promise.resolve().then(() => handler(toJob(queue, bj) as Job<T>));
      running.add(handled);
      try {
        await handled;
      } catch (err) {
        // BullMQ's own "do not retry" signal: the job goes to the failed set with this message.
        if (isNonRetryableJobError(err)) throw new UnrecoverableError((err as Error).message);
        // BullMQ records err.message: something thrown that is not an Error would leave no text.
        throw err instanceof Error ? err : new Error(String(err));
      } finally {
        running.delete(handled);
      }
    };
    const bull = new BullWorker(queue, run, {
      connection: this.workerConnection(),
      prefix: this.cfg.prefix,
      concurrency: opts?.concurrency ?? 1,
      lockDuration: this.cfg.lockDurationMs,
      stalledInterval: this.cfg.stalledIntervalMs,
      maxStalledCount: this.cfg.maxStalledCount,
    });
    // Once per distinct message: during an outage every reconnect attempt reports the same failure.
    let lastLogged = '';
    bull.on('error', (err) => {
      const text = this.message(err);
      if (text !== lastLogged) this.logError(`worker on "${queue}"`, err);
      lastLogged = text;
    });
    const worker = new RedisWorker(
      bull,
      running,
      () => [...this.workerConns].every((c) => c.status === 'ready'),
      (w) => this.workers.delete(w),
      (err) => this.logError(`closing the worker on "${queue}"`, err),
    );
    this.workers.add(worker);
    return worker;
  }

  failed(queue: string, opts: { limit?: number; cursor?: string } = {}): Promise<{ items: FailedJob[]; cursor?: string }> {
    return this.run('failed', queue, async (q) => {
      const key = q.toKey('failed');
      const limit = opts.limit ?? DEFAULT_FAILED_PAGE;
      let min = '-inf';
      let skip = 0;
      if (opts.cursor !== undefined) {
        // Resume after (score, member) in the set's own order: members of one score sort bytewise.
        const c = decodeCursor(opts.cursor);
        const ties = await this.conn.zrangebyscore(key, c.score, c.score);
        const last = Buffer.from(c.bullId);
        skip = ties.filter((m) => Buffer.compare(Buffer.from(m), last) <= 0).length;
        min = c.score;
      }
      const flat = await this.conn.zrangebyscore(key, min, '+inf', 'WITHSCORES', 'LIMIT', skip, limit + 1);
      const entries: [string, string][] = [];
      for (let i = 0; i < flat.length; i += 2) entries.push([flat[i]!, flat[i + 1]!]);
      const page = entries.slice(0, limit);
      const jobs = await Promise.all(page.map(([bullId]) => q.getJob(bullId)));
      const items: FailedJob[] = [];
      jobs.forEach((bj, i) => {
        if (!bj) return; // retried or removed since the range was read
        items.push({
          ...toJob(queue, bj),
          attempt: bj.attemptsMade,
          error: bj.failedReason ?? '',
          failedAt: new Date(bj.finishedOn ?? Number(page[i]![1])),
        });
      });
      const lastEntry = page.at(-1);
      return entries.length > limit && lastEntry ? { items, cursor: encodeCursor(lastEntry[1], lastEntry[0]) } : { items };
    });
  }

  retryFailed(queue: string, jobId?: string): Promise<number> {
    return this.run('retryFailed', queue, async (q) => {
      const ids = jobId === undefined ? await this.conn.zrange(q.toKey('failed'), 0, -1) : [toBullId(jobId)];
      let moved = 0;
      for (const batch of chunks(ids, BATCH)) {
        const done = await Promise.all(batch.map((id) => this.retryOne(q, id)));
        moved += done.filter(Boolean).length;
      }
      return moved;
    });
  }

  private async retryOne(q: Queue, bullId: string): Promise<boolean> {
    const job = await q.getJob(bullId);
    if (!job) return false;
    try {
      // A retry from the failed set is a fresh set of tries (BullMQ would otherwise keep the count).
      await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
      return true;
    } catch (err) {
      if (GONE_CODES.has((err as { code?: unknown }).code as number)) return false;
      throw err;
    }
  }

  jobStatus(queue: string, jobId: string): Promise<JobStatus | undefined> {
    return this.run('jobStatus', queue, async (q) => {
      const bj = await q.getJob(toBullId(jobId));
      if (!bj) return undefined;
      const state = BULL_STATES[await bj.getState()];
      if (!state) return undefined; // removed between the two reads
      return {
        id: jobId,
        queue,
        state,
        attemptsMade: bj.attemptsMade,
        maxAttempts: bj.opts.attempts ?? 1,
        ...(bj.failedReason ? { error: bj.failedReason } : {}),
      };
    });
  }

  stats(queue: string): Promise<QueueStats> {
    return this.run('stats', queue, async (q) => {
      const c = await q.getJobCounts('wait', 'prioritized', 'active', 'delayed', 'failed', 'completed');
      return {
        waiting: (c.wait ?? 0) + (c.prioritized ?? 0),
        active: c.active ?? 0,
        delayed: c.delayed ?? 0,
        failed: c.failed ?? 0,
        completed: c.completed ?? 0,
      };
    });
  }

  purge(queue: string): Promise<void> {
    return this.run('purge', queue, async (q) => {
      // Not obliterate: running jobs finish normally, and the queue's other keys stay.
      await q.drain(true);
      for (const state of ['failed', 'completed'] as const) {
        while ((await q.clean(0, BATCH, state)).length === BATCH) {
          // keep cleaning in bounded batches
        }
      }
    });
  }

  async check(signal: AbortSignal): Promise<Health> {
    if (this.conn.status !== 'ready') {
      return {
        status: 'error',
        error: `not connected to Redis at ${this.where} (${this.conn.status}${this.lastError ? `: ${this.lastError}` : ''})`,
      };
    }
    try {
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => reject(signal.reason ?? new Error('health check aborted'));
        if (signal.aborted) return onAbort();
        signal.addEventListener('abort', onAbort, { once: true });
        this.conn
          .ping()
          .then(
            () => resolve(),
            (err: unknown) => reject(err),
          )
          .finally(() => signal.removeEventListener('abort', onAbort));
      });
    } catch (err) {
      return { status: 'error', error: `PING to Redis at ${this.where} failed: ${this.message(err)}` };
    }
    if (this.policy !== undefined && this.policy !== 'noeviction') {
      return {
        status: 'degraded',
        detail: `${this.where}: maxmemory-policy is ${this.policy}; set noeviction so Redis never evicts queued jobs`,
      };
    }
    return { status: 'connected', detail: `${this.where}, prefix ${this.cfg.prefix}` };
  }

  /**
   * Workers first (jobs in flight finish and are recorded), then calls in progress, then queues
   * and connections. While Redis is away nothing waits for it to return: the connections stop
   * reconnecting, and a job whose handler finished but whose completion could not be recorded
   * keeps its lock until it expires; then a live worker's stalled check runs it again.
   */
  close(): Promise<void> {
    this.stopping = true;
    this.closing ??= (async () => {
      await Promise.all([...this.workers].map((w) => w.close()));
      await Promise.allSettled([...this.pending]);
      await Promise.allSettled([...this.queues.values()].map((q) => q.close()));
      this.queues.clear();
      await Promise.all([this.conn, this.workerConn].map((c) => c && quit(c)));
    })();
    return this.closing;
  }
}

/** QUIT when connected (replies still due are delivered first); otherwise just drop the socket. */
async function quit(conn: Redis): Promise<void> {
  if (conn.status === 'ready') {
    try {
      await conn.quit();
      return;
    } catch {
      // fall through
    }
  }
  conn.disconnect();
}
