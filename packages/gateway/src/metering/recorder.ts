import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeError, type Logger, type QueueProvider } from '@apigate/kernel';
import { OVERHEAD_BUCKETS_MS, overheadBucket, type UsageBatch, type UsageRecord, type UsageRow, usageBatchSchema } from './types.js';

export const USAGE_QUEUE = 'usage';

export interface UsageRecorderOptions {
  /** Default `usage`. */
  queueName?: string;
  /** How often aggregated rows are sealed into batches and published. Default 1000 ms. */
  flushIntervalMs?: number;
  /** Rows per batch (one queue job each). Default 500. */
  maxRowsPerBatch?: number;
  /** Tries the queue gives the consumer for a batch, with exponential backoff from 1 s. Default 10. */
  attempts?: number;
  /**
   * A file holding batches not yet published: rewritten while the queue fails and at close(),
   * read back at start and removed once everything in it is published. Without it, unpublished
   * batches live only in memory.
   */
  spoolFile?: string;
  /** How long close() keeps retrying a failing queue before it spools. Default 5000 ms. */
  closeTimeoutMs?: number;
  /** Prefix of batch ids; unique per process by default. */
  instanceId?: string;
  logger?: Logger;
}

export interface UsageRecorderStats {
  /** Aggregated rows not yet sealed into a batch. */
  rows: number;
  /** Sealed batches waiting to be published (kept, in order, until the queue takes them). */
  outbox: number;
  published: number;
  publishFailures: number;
  lastError?: string;
}

export interface CloseSummary {
  /** Batches the queue never took. */
  unpublished: number;
  /** Requests counted in those batches. */
  requests: number;
  /** Whether those are in the spool file for the next start. */
  spooled: boolean;
  /** The spool file, when they are in it. */
  spoolFile?: string;
}

const MINUTE = 60_000;

/**
 * Meters proxied requests with no I/O on the hot path: `record` adds to an in-memory row per
 * (key, route, minute); a timer seals the rows into batches and publishes each to the queue with
 * its id as jobId. A batch the queue refuses stays first in line and is retried, never dropped;
 * `close()` publishes what is left (or spools it to disk for the next start).
 */
export class UsageRecorder {
  readonly #queue: QueueProvider;
  readonly #queueName: string;
  readonly #maxRows: number;
  readonly #attempts: number;
  readonly #spoolFile: string | undefined;
  readonly #closeTimeoutMs: number;
  readonly #instanceId: string;
  readonly #logger: Logger | undefined;
  readonly #timer: NodeJS.Timeout;
  #rows = new Map<string, UsageRow>();
  /** Per key and route, the row of the latest minute in `#rows` (renewed with it at each seal: sealed rows are never touched again). */
  #latest = new Map<string, Map<string | null, UsageRow>>();
  #outbox: UsageBatch[] = [];
  #seq = 0;
  #chain: Promise<number> = Promise.resolve(0);
  #published = 0;
  #failures = 0;
  #lastError: string | undefined;
  #spoolWritten = false;
  #closing: Promise<CloseSummary> | null = null;

  constructor(queue: QueueProvider, opts: UsageRecorderOptions = {}) {
    this.#queue = queue;
    this.#queueName = opts.queueName ?? USAGE_QUEUE;
    this.#maxRows = opts.maxRowsPerBatch ?? 500;
    this.#attempts = opts.attempts ?? 10;
    this.#spoolFile = opts.spoolFile;
    this.#closeTimeoutMs = opts.closeTimeoutMs ?? 5_000;
    this.#instanceId = opts.instanceId ?? randomUUID();
    this.#logger = opts.logger;
    if (this.#spoolFile) this.#loadSpool(this.#spoolFile);
    this.#timer = setInterval(() => void this.flush(), opts.flushIntervalMs ?? 1_000);
    this.#timer.unref();
  }

  /** Adds one request to its row. Synchronous and allocation-free but for a new row: this runs on every request. */
  record(r: UsageRecord): void {
    const minute = r.at - (r.at % MINUTE);
    // The key's latest row on the route (no key string built while the minute stays the same).
    let byRoute = this.#latest.get(r.keyId);
    if (!byRoute) this.#latest.set(r.keyId, (byRoute = new Map()));
    let row = byRoute.get(r.routeId);
    if (row?.minute !== minute) row = this.#row(r, minute, byRoute);
    row.requests++;
    if (r.status >= 500) row.serverErrors++;
    else if (r.status >= 400) row.clientErrors++;
    row.bytesIn += r.bytesIn;
    row.bytesOut += r.bytesOut;
    row.latencyMsTotal += r.latencyMs;
    if (r.latencyMs > row.latencyMsMax) row.latencyMsMax = r.latencyMs;
    row.overhead![overheadBucket(r.overheadMs)]!++;
  }

  /** The row of (key, route, minute), created when new; becomes the key's latest on the route. */
  #row(r: UsageRecord, minute: number, byRoute: Map<string | null, UsageRow>): UsageRow {
    const k = `${r.keyId}\u0000${r.routeId ?? ''}\u0000${minute}`;
    let row = this.#rows.get(k);
    if (!row) {
      row = {
        keyId: r.keyId,
        userId: r.userId,
        routeId: r.routeId,
        minute,
        requests: 0,
        clientErrors: 0,
        serverErrors: 0,
        bytesIn: 0,
        bytesOut: 0,
        latencyMsTotal: 0,
        latencyMsMax: 0,
        overhead: new Array<number>(OVERHEAD_BUCKETS_MS.length).fill(0),
      };
      this.#rows.set(k, row);
    }
    // A late request of an earlier minute does not take the place of the current minute's row.
    const latest = byRoute.get(r.routeId);
    if (!latest || latest.minute <= minute) byRoute.set(r.routeId, row);
    return row;
  }

  #seal(): void {
    if (this.#rows.size === 0) return;
    const rows = [...this.#rows.values()];
    this.#rows = new Map();
    this.#latest = new Map();
    const createdAt = new Date().toISOString();
    for (let i = 0; i < rows.length; i += this.#maxRows) {
      this.#outbox.push({ id: `${this.#instanceId}-${++this.#seq}`, createdAt, rows: rows.slice(i, i + this.#maxRows) });
    }
  }

  /** Seals the current rows and publishes every waiting batch in order. Resolves with how many were published; never throws. */
  flush(): Promise<number> {
    this.#chain = this.#chain.then(() => this.#flushOnce());
    return this.#chain;
  }

  async #flushOnce(): Promise<number> {
    this.#seal();
    let published = 0;
    while (this.#outbox.length > 0) {
      const batch = this.#outbox[0]!;
      try {
        await this.#queue.publish(this.#queueName, batch, {
          jobId: batch.id,
          attempts: this.#attempts,
          backoff: { type: 'exponential', delayMs: 1_000 },
        });
      } catch (err) {
        this.#failures++;
        if (this.#lastError === undefined) {
          this.#logger?.warn({ err: describeError(err) }, `usage batches kept for retry: the queue refused ${batch.id}`);
        }
        this.#lastError = describeError(err);
        if (this.#spoolFile) this.#writeSpool(this.#spoolFile);
        return published;
      }
      this.#outbox.shift();
      published++;
      this.#published++;
      if (this.#lastError !== undefined) {
        this.#logger?.info('usage batches publishing again');
        this.#lastError = undefined;
      }
    }
    if (this.#spoolWritten && this.#spoolFile) {
      rmSync(this.#spoolFile, { force: true });
      this.#spoolWritten = false;
    }
    return published;
  }

  #writeSpool(file: string): void {
    try {
      mkdirSync(path.dirname(file), { recursive: true });
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, this.#outbox.map((b) => JSON.stringify(b)).join('\n'), { mode: 0o600 });
      renameSync(tmp, file); // atomic: a crash leaves the old spool or the new one, never half
      this.#spoolWritten = true;
    } catch (err) {
      this.#logger?.error({ err: describeError(err) }, `cannot write the usage spool file ${file}`);
    }
  }

  #loadSpool(file: string): void {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    let bad = 0;
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        bad++;
        continue;
      }
      const parsed = usageBatchSchema.safeParse(value);
      if (parsed.success) this.#outbox.push(parsed.data);
      else bad++;
    }
    this.#spoolWritten = true; // removed once these are published
    if (bad > 0) this.#logger?.error(`usage spool ${file}: ${bad} malformed batches skipped`);
    this.#logger?.info(`usage spool ${file}: ${this.#outbox.length} batches to publish`);
  }

  stats(): UsageRecorderStats {
    return {
      rows: this.#rows.size,
      outbox: this.#outbox.length,
      published: this.#published,
      publishFailures: this.#failures,
      ...(this.#lastError ? { lastError: this.#lastError } : {}),
    };
  }

  /**
   * Stops the timer and publishes everything, retrying a failing queue until `deadline` (epoch
   * ms; default `closeTimeoutMs` from now), and never waiting past it for a publish that hangs
   * (a frozen Redis); what is still unpublished then goes to the spool file. Call it after the
   * server stopped taking requests. Idempotent.
   */
  close(opts: { deadline?: number } = {}): Promise<CloseSummary> {
    this.#closing ??= this.#close(opts.deadline ?? Date.now() + this.#closeTimeoutMs);
    return this.#closing;
  }

  async #close(deadline: number): Promise<CloseSummary> {
    clearInterval(this.#timer);
    const untilDeadline = (p: Promise<unknown>) => {
      const ac = new AbortController();
      return Promise.race([p, sleep(Math.max(0, deadline - Date.now()), undefined, { signal: ac.signal }).catch(() => undefined)]).finally(
        () => ac.abort(),
      );
    };
    await untilDeadline(this.flush());
    for (let delay = 100; this.#outbox.length > 0 && Date.now() < deadline; delay *= 2) {
      await sleep(Math.min(delay, Math.max(0, deadline - Date.now())));
      await untilDeadline(this.flush());
    }
    return this.spoolNow();
  }

  /**
   * Seals the rows and writes every batch not yet published to the spool file, synchronously,
   * without touching the queue: for close(), and for a shutdown deadline that cannot wait for
   * a hung queue. A batch whose publish is still in flight is written too (if it did reach the
   * queue, the store applies its id once).
   */
  spoolNow(): CloseSummary {
    clearInterval(this.#timer);
    this.#seal();
    const unpublished = this.#outbox.length;
    const requests = this.#outbox.reduce((n, b) => n + b.rows.reduce((m, r) => m + r.requests, 0), 0);
    if (unpublished === 0) return { unpublished, requests, spooled: false };
    if (this.#spoolFile) {
      this.#writeSpool(this.#spoolFile);
      this.#logger?.warn(
        `${unpublished} usage batches (${requests} requests) spooled to ${this.#spoolFile}; they are published at the next start`,
      );
      return { unpublished, requests, spooled: this.#spoolWritten, ...(this.#spoolWritten ? { spoolFile: this.#spoolFile } : {}) };
    }
    this.#logger?.error(
      `${unpublished} usage batches could not be published and no spool file is set: ${this.#lastError ?? 'queue failing'}`,
    );
    return { unpublished, requests, spooled: false };
  }
}
