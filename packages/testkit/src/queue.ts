import {
  type Job,
  type JobHandler,
  NonRetryableJobError,
  type QueueFeatures,
  type QueueProvider,
  type QueueStats,
  type Worker,
} from '@apigate/kernel';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ARRIVAL_TIMEOUT_MS, expectFinalRejection, lifecycleTests } from './expectations.js';
import { type DefinitionOf, describeSuite, resolveSuite, type SuiteSetup } from './suite.js';
import { uniquePrefix } from './util.js';

export interface QueueSuiteContext {
  /** The instance made by `create` for the current test. */
  provider(): QueueProvider;
  /** A queue name unique to this run and test; the suite purges it after the test. */
  queue(label?: string): string;
  /** Starts a worker that the suite closes after the test (even when the test failed). */
  process<T>(queue: string, handler: JobHandler<T>, opts?: { concurrency?: number }): Worker;
}

export interface QueueSuiteOptions {
  /** Title of the describe block (default "queue provider conformance"). */
  name?: string;
  /** Timeout of each test in ms (default 45 s). */
  timeout?: number;
  /**
   * A fresh instance, exactly as the gateway sees it: return `(await createForTest(def, config)).provider`
   * so calls go through the kernel's instrumentation. Called before every test; the suite closes it after.
   */
  create: () => QueueProvider | Promise<QueueProvider>;
  /** The provider's declared features (pass `definition.features`). */
  features?: QueueFeatures;
  /**
   * Provider-specific tests registered inside the suite. At-least-once delivery after a worker's
   * PROCESS dies needs a second process and a durable backend, so it is not part of this suite:
   * a provider with `features.durable` proves it here (see provider-redis-queue's test).
   */
  additionalTests?: (ctx: QueueSuiteContext) => void;
}

/** What `describeQueueProvider(definition, setup)` takes besides the setup every suite takes. */
export interface QueueSuiteSetup extends SuiteSetup, Pick<QueueSuiteOptions, 'additionalTests'> {}

const TEST_TIMEOUT = 45_000;
/** Timers and clocks may disagree by a few ms; "not before its delay" allows this much. */
const CLOCK_SLACK_MS = 25;

/** A promise the test opens when it chooses; every gate is opened after each test so no worker hangs. */
interface Gate {
  wait: Promise<void>;
  open(): void;
}

interface Seen<T> {
  jobs: Job<T>[];
  /** Date.now() when each job reached the handler. */
  at: number[];
  handler: JobHandler<T>;
  /** Resolves once `pred(jobs)` holds; fails the test with `what` if it does not within ARRIVAL_TIMEOUT_MS. */
  until(pred: (jobs: Job<T>[]) => boolean, what: string): Promise<void>;
}

const ids = (jobs: Job[]) => jobs.map((j) => j.id);

/**
 * The queue conformance suite: publish and process, job fields, idempotency, delays, priorities,
 * retries with backoff, the failed set (listing, paging, retrying), concurrency, graceful worker
 * close, stats and purge. Every queue name is unique to the run and test, so it can share a real
 * Redis with other runs. Nothing sleeps a guessed time: tests wait for handler calls or poll stats.
 */
export function describeQueueProvider(definition: DefinitionOf<'queue'>, setup?: QueueSuiteSetup): void;
/** @deprecated The 1.0 form: pass the definition and its config instead, `describeQueueProvider(definition, { config })`. */
export function describeQueueProvider(opts: QueueSuiteOptions): void;
export function describeQueueProvider(first: DefinitionOf<'queue'> | QueueSuiteOptions, setup?: QueueSuiteSetup): void {
  const suite = resolveSuite('queue', 'queue provider conformance', first, setup);
  const opts = suite.opts;
  const runPrefix = uniquePrefix('queue');

  describeSuite(suite, TEST_TIMEOUT, () => {
    let instance: QueueProvider | undefined;
    let testNo = 0;
    let queues: string[] = [];
    let workers: Worker[] = [];
    let gates: Gate[] = [];

    const provider = (): QueueProvider => {
      if (!instance) throw new Error('describeQueueProvider: no instance (provider() called outside a test, or create() failed)');
      return instance;
    };
    const queue = (label = 'q'): string => {
      const name = `${runPrefix}-${testNo}-${label}`;
      queues.push(name);
      return name;
    };
    const process = <T>(q: string, handler: JobHandler<T>, o?: { concurrency?: number }): Worker => {
      const w = provider().process(q, handler, o);
      workers.push(w);
      return w;
    };
    const gate = (): Gate => {
      let open!: () => void;
      const wait = new Promise<void>((resolve) => {
        open = resolve;
      });
      const g = { wait, open };
      gates.push(g);
      return g;
    };
    /** A handler that records each job, then runs `behaviour` (which may throw to fail the try). */
    const recorder = <T>(behaviour?: (job: Job<T>, n: number) => Promise<void> | void): Seen<T> => {
      const jobs: Job<T>[] = [];
      const at: number[] = [];
      const waiters: { pred: (j: Job<T>[]) => boolean; resolve: () => void }[] = [];
      const settle = () => {
        for (const w of [...waiters]) {
          if (w.pred(jobs)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve();
          }
        }
      };
      return {
        jobs,
        at,
        handler: async (job) => {
          jobs.push(job);
          at.push(Date.now());
          settle();
          await behaviour?.(job, jobs.length);
        },
        until: (pred, what) =>
          new Promise<void>((resolve, reject) => {
            if (pred(jobs)) return resolve();
            const timer = setTimeout(() => {
              waiters.splice(waiters.indexOf(w), 1);
              reject(new Error(`${what}: not seen within ${ARRIVAL_TIMEOUT_MS} ms (handler saw ${JSON.stringify(ids(jobs))})`));
            }, ARRIVAL_TIMEOUT_MS);
            const w = {
              pred,
              resolve: () => {
                clearTimeout(timer);
                resolve();
              },
            };
            waiters.push(w);
          }),
      };
    };
    /** Polls stats until they match (jobs move between states asynchronously, more so on a real backend). */
    const statsReach = (q: string, want: Partial<QueueStats>) =>
      vi.waitFor(async () => expect(await provider().stats(q)).toMatchObject(want), { timeout: ARRIVAL_TIMEOUT_MS, interval: 50 });
    const failedCount = (q: string, n: number) => statsReach(q, { failed: n });

    beforeEach(async () => {
      testNo++;
      queues = [];
      workers = [];
      gates = [];
      instance = await opts.create();
    });

    afterEach(async () => {
      const p = instance;
      instance = undefined;
      if (!p) return;
      for (const g of gates) g.open();
      try {
        await Promise.all(workers.map((w) => w.close()));
        for (const q of queues) await p.purge(q);
      } finally {
        await p.close();
      }
    });

    const ctx: QueueSuiteContext = { provider, queue, process };

    describe('publish and process', () => {
      it('delivers each payload intact, once', async () => {
        const q = queue();
        const payloads: unknown[] = [
          { order: 42, items: [{ sku: 'a', qty: 2 }], note: 'naïve café ✓ 日本', ok: true, none: null, nested: { deep: [1, [2, 3]] } },
          'just a string',
          1234.5,
          [],
        ];
        const published = [];
        for (const p of payloads) published.push(await provider().publish(q, p));
        expect(new Set(published.map((r) => r.id)).size, 'each publish gets its own id').toBe(payloads.length);
        expect(published.every((r) => r.duplicate === false)).toBe(true);

        const seen = recorder();
        process(q, seen.handler);
        await seen.until((j) => j.length >= payloads.length, 'every published job');
        const byId = new Map(seen.jobs.map((j) => [j.id, j.payload]));
        expect(published.map((r) => byId.get(r.id))).toEqual(payloads);
        await statsReach(q, { waiting: 0, active: 0, delayed: 0, failed: 0 });
        expect(seen.jobs).toHaveLength(payloads.length);
      });

      it('gives the handler the job id, queue, attempt (from 1), maxAttempts and publishedAt', async () => {
        const q = queue();
        const before = Date.now();
        const a = await provider().publish(q, { n: 1 }, { attempts: 3 });
        const b = await provider().publish(q, { n: 2 });
        const after = Date.now();
        const seen = recorder();
        process(q, seen.handler);
        await seen.until((j) => j.length >= 2, 'both jobs');
        const ja = seen.jobs.find((j) => j.id === a.id)!;
        const jb = seen.jobs.find((j) => j.id === b.id)!;
        expect(ja).toMatchObject({ id: a.id, queue: q, attempt: 1, maxAttempts: 3, payload: { n: 1 } });
        expect(jb).toMatchObject({ id: b.id, queue: q, attempt: 1, maxAttempts: 1, payload: { n: 2 } });
        for (const j of [ja, jb]) {
          expect(j.publishedAt).toBeInstanceOf(Date);
          // A sanity bound on the clock, not a speed check: publishedAt is when publish() ran.
          expect(j.publishedAt.getTime()).toBeGreaterThanOrEqual(before - 60_000);
          expect(j.publishedAt.getTime()).toBeLessThanOrEqual(after + 60_000);
        }
      });

      it('publishMany returns one result per item in order, flags duplicates, and delivers the new jobs', async () => {
        const q = queue();
        const existing = await provider().publish(q, { n: 0 }, { jobId: 'batch-existing' });
        const results = await provider().publishMany(q, [
          { payload: { n: 1 } },
          { payload: { n: 2 }, opts: { jobId: 'batch-existing' } },
          { payload: { n: 3 }, opts: { jobId: 'batch-new' } },
          { payload: { n: 4 }, opts: { jobId: 'batch-new' } },
          { payload: { n: 5 }, opts: { priority: 3 } },
        ]);
        expect(results.map((r) => r.duplicate)).toEqual([false, true, false, true, false]);
        expect(results[1]!.id).toBe(existing.id);
        expect(results[2]!.id).toBe('batch-new');
        expect(results[3]!.id).toBe('batch-new');
        expect(new Set([results[0]!.id, results[2]!.id, results[4]!.id, existing.id]).size).toBe(4);
        expect(await provider().publishMany(q, [])).toEqual([]);

        const seen = recorder<{ n: number }>();
        process(q, seen.handler);
        await seen.until((j) => j.length >= 4, 'the four distinct jobs');
        await statsReach(q, { waiting: 0, active: 0, delayed: 0 });
        expect(seen.jobs.map((j) => j.payload.n).sort()).toEqual([0, 1, 3, 5]);
      });
    });

    describe('idempotency', () => {
      it('a second publish with the same jobId is a duplicate, runs once, and stays a duplicate after it ran', async () => {
        const q = queue();
        // Ids that some backends reserve (":" and all digits) must work all the same.
        const first = await provider().publish(q, { v: 'first' }, { jobId: 'order:42' });
        const again = await provider().publish(q, { v: 'second' }, { jobId: 'order:42' });
        const numeric = await provider().publish(q, { v: 'numeric' }, { jobId: '1234' });
        expect(first).toEqual({ id: 'order:42', duplicate: false });
        expect(again).toEqual({ id: 'order:42', duplicate: true });
        expect(numeric).toEqual({ id: '1234', duplicate: false });
        const sentinel = await provider().publish(q, { v: 'sentinel' });

        const seen = recorder<{ v: string }>();
        process(q, seen.handler); // concurrency 1: a duplicate would arrive before the sentinel
        await seen.until((j) => ids(j).includes(sentinel.id), 'the sentinel job');
        await statsReach(q, { waiting: 0, active: 0 });
        expect(seen.jobs.map((j) => j.payload.v)).toEqual(['first', 'numeric', 'sentinel']);
        expect(seen.jobs[0]!.id).toBe('order:42');

        const late = await provider().publish(q, { v: 'late' }, { jobId: 'order:42' });
        expect(late, 'a completed job still known to the queue keeps its id taken').toEqual({ id: 'order:42', duplicate: true });
      });
    });

    describe('delays and priorities', () => {
      it('holds a delayed job (stats.delayed) and delivers it only after its delay', async () => {
        const q = queue();
        const delayMs = 1_000;
        const before = Date.now();
        const r = await provider().publish(q, { late: true }, { delayMs });
        expect(await provider().stats(q)).toMatchObject({ waiting: 0, delayed: 1, active: 0 });

        const seen = recorder();
        process(q, seen.handler);
        await seen.until((j) => j.length >= 1, 'the delayed job');
        expect(seen.jobs[0]!.id).toBe(r.id);
        expect(seen.at[0]! - before, 'delivered before its delay had passed').toBeGreaterThanOrEqual(delayMs - CLOCK_SLACK_MS);
        await statsReach(q, { delayed: 0, waiting: 0, active: 0 });
      });

      it('runs the highest priority (lowest number) first, FIFO within a priority, unprioritised last', async () => {
        const q = queue();
        const order: [string, number | undefined][] = [
          ['p5', 5],
          ['none-a', undefined],
          ['p1-a', 1],
          ['p3', 3],
          ['p1-b', 1],
          ['none-b', undefined],
          ['p2', 2],
        ];
        for (const [name, priority] of order) {
          await provider().publish(q, { name }, priority === undefined ? {} : { priority });
        }
        const seen = recorder<{ name: string }>();
        process(q, seen.handler, { concurrency: 1 });
        await seen.until((j) => j.length >= order.length, 'every prioritised job');
        expect(seen.jobs.map((j) => j.payload.name)).toEqual(['p1-a', 'p1-b', 'p2', 'p3', 'p5', 'none-a', 'none-b']);
      });
    });

    describe('retries and the failed set', () => {
      it('retries a throwing handler with exponential backoff until it succeeds', async () => {
        const q = queue();
        const base = 200;
        const r = await provider().publish(q, { flaky: true }, { attempts: 4, backoff: { type: 'exponential', delayMs: base } });
        const seen = recorder(async (job) => {
          if (job.attempt < 3) throw new Error(`try ${job.attempt} fails on purpose`);
        });
        process(q, seen.handler);
        await seen.until((j) => j.length >= 3, 'the third try');
        await statsReach(q, { waiting: 0, active: 0, delayed: 0, failed: 0 });
        expect(seen.jobs.map((j) => [j.id, j.attempt, j.maxAttempts])).toEqual([
          [r.id, 1, 4],
          [r.id, 2, 4],
          [r.id, 3, 4],
        ]);
        // Lower bounds only: a busy machine may be late, never early. The second wait doubles.
        const [t1, t2, t3] = seen.at as [number, number, number];
        expect(t2 - t1, 'wait before try 2').toBeGreaterThanOrEqual(base - CLOCK_SLACK_MS);
        expect(t3 - t2, 'wait before try 3').toBeGreaterThanOrEqual(2 * base - CLOCK_SLACK_MS);
      });

      it('waits the same delay between tries with a fixed backoff', async () => {
        const q = queue();
        const base = 150;
        await provider().publish(q, {}, { attempts: 3, backoff: { type: 'fixed', delayMs: base } });
        const seen = recorder(async (job) => {
          if (job.attempt < 3) throw new Error('not yet');
        });
        process(q, seen.handler);
        await seen.until((j) => j.length >= 3, 'the third try');
        const [t1, t2, t3] = seen.at as [number, number, number];
        expect(t2 - t1).toBeGreaterThanOrEqual(base - CLOCK_SLACK_MS);
        expect(t3 - t2).toBeGreaterThanOrEqual(base - CLOCK_SLACK_MS);
        expect(seen.jobs.map((j) => j.attempt)).toEqual([1, 2, 3]);
      });

      it('moves a job that used up its attempts to failed() with the error text and failedAt', async () => {
        const q = queue();
        const before = Date.now();
        const r = await provider().publish(q, { doomed: 'yes' }, { attempts: 2, backoff: { type: 'fixed', delayMs: 50 } });
        const seen = recorder(async () => {
          throw new Error('boom: the handler always fails');
        });
        process(q, seen.handler);
        await failedCount(q, 1);
        expect(seen.jobs.map((j) => j.attempt)).toEqual([1, 2]);
        const { items, cursor } = await provider().failed(q);
        expect(cursor).toBeUndefined();
        expect(items).toHaveLength(1);
        const f = items[0]!;
        expect(f).toMatchObject({ id: r.id, queue: q, payload: { doomed: 'yes' }, attempt: 2, maxAttempts: 2 });
        expect(f.error).toContain('boom: the handler always fails');
        expect(f.failedAt).toBeInstanceOf(Date);
        expect(f.failedAt.getTime()).toBeGreaterThanOrEqual(before - 60_000);
        expect(f.publishedAt).toBeInstanceOf(Date);
        expect(await provider().stats(q)).toMatchObject({ waiting: 0, active: 0, delayed: 0, failed: 1 });
      });

      it('records the text of something thrown that is not an Error', async () => {
        const q = queue();
        const r = await provider().publish(q, {});
        process(q, async () => {
          throw 'plain string failure';
        });
        await failedCount(q, 1);
        const [f] = (await provider().failed(q)).items;
        expect(f).toMatchObject({ id: r.id });
        expect(f!.error).toContain('plain string failure');
      });

      it('a handler that throws NonRetryableJobError fails its job at once, attempts left unused', async () => {
        const q = queue();
        // No backoff: a provider that retried anyway would run the job again right away.
        const r = await provider().publish(q, { bad: 'address' }, { attempts: 5 });
        const seen = recorder(async () => {
          throw new NonRetryableJobError('recipient rejected: no such mailbox');
        });
        process(q, seen.handler);
        await failedCount(q, 1);
        expect(seen.jobs.map((j) => [j.id, j.attempt, j.maxAttempts])).toEqual([[r.id, 1, 5]]);
        const [f] = (await provider().failed(q)).items;
        expect(f).toMatchObject({ id: r.id, attempt: 1, maxAttempts: 5 });
        expect(f!.error).toContain('recipient rejected: no such mailbox');
        expect(await provider().stats(q)).toMatchObject({ waiting: 0, active: 0, delayed: 0, failed: 1 });

        // Recognised by its code too: a handler built against another copy of the kernel.
        const q2 = queue('by-code');
        const foreign = await provider().publish(q2, { other: 'kernel copy' }, { attempts: 5 });
        const other = recorder(async () => {
          throw Object.assign(new Error('final, said by code'), { code: 'JOB_NON_RETRYABLE' });
        });
        process(q2, other.handler);
        await failedCount(q2, 1);
        expect(other.jobs.map((j) => [j.id, j.attempt])).toEqual([[foreign.id, 1]]);
      });

      it('retryFailed(queue, id) brings back one job and retryFailed(queue) the rest; they run with fresh attempts', async () => {
        const q = queue();
        let healthy = false;
        const published = [];
        for (let n = 0; n < 3; n++) published.push(await provider().publish(q, { n }, { attempts: 1 }));
        const seen = recorder(async () => {
          if (!healthy) throw new Error('downstream unavailable');
        });
        process(q, seen.handler);
        await failedCount(q, 3);
        healthy = true;

        expect(await provider().retryFailed(q, 'no-such-job')).toBe(0);
        const [one, ...rest] = published.map((r) => r.id) as [string, ...string[]];
        expect(await provider().retryFailed(q, one)).toBe(1);
        await seen.until((j) => j.length >= 4, 'the job retried by id');
        expect(seen.jobs[3]).toMatchObject({ id: one, attempt: 1 });
        await failedCount(q, 2);
        expect(ids((await provider().failed(q)).items).sort()).toEqual([...rest].sort());

        expect(await provider().retryFailed(q)).toBe(2);
        await seen.until((j) => j.length >= 6, 'the jobs retried together');
        await statsReach(q, { failed: 0, waiting: 0, active: 0, delayed: 0 });
        expect(ids(seen.jobs.slice(4)).sort()).toEqual([...rest].sort());
        expect(await provider().retryFailed(q)).toBe(0);
      });

      it('failed() pages through the failed set with a cursor, oldest failure first', async () => {
        const q = queue();
        expect(await provider().failed(q)).toEqual({ items: [] });
        const published = [];
        for (let n = 0; n < 5; n++) published.push(await provider().publish(q, { n }));
        process(q, async () => {
          throw new Error('fails on purpose');
        });
        await failedCount(q, 5);

        const pages = [];
        let cursor: string | undefined;
        do {
          const page = await provider().failed(q, { limit: 2, ...(cursor ? { cursor } : {}) });
          pages.push(page.items);
          cursor = page.cursor;
          expect(pages.length, 'pagination should end').toBeLessThan(10);
        } while (cursor);
        expect(pages.map((p) => p.length)).toEqual([2, 2, 1]);
        const all = pages.flat();
        expect(ids(all).sort()).toEqual(published.map((r) => r.id).sort());
        const times = all.map((f) => f.failedAt.getTime());
        expect(times, 'oldest failure first').toEqual([...times].sort((a, b) => a - b));
        expect(ids((await provider().failed(q)).items).sort(), 'without a limit, one page holds them all').toEqual(ids(all).sort());
      });
    });

    describe('workers', () => {
      it('runs up to `concurrency` handlers at once, never more', async () => {
        const q = queue();
        const concurrency = 4;
        for (let n = 0; n < 7; n++) await provider().publish(q, { n });
        const full = gate();
        let inFlight = 0;
        let most = 0;
        const seen = recorder(async () => {
          inFlight++;
          most = Math.max(most, inFlight);
          // Held until `concurrency` handlers run together: a provider that runs fewer never gets here.
          if (inFlight === concurrency) full.open();
          await full.wait;
          await new Promise<void>((resolve) => setImmediate(resolve));
          inFlight--;
        });
        process(q, seen.handler, { concurrency });
        await seen.until((j) => j.length >= 7, 'all seven jobs');
        await statsReach(q, { waiting: 0, active: 0 });
        expect(most).toBe(concurrency);
      });

      it('runs one job at a time when no concurrency is given', async () => {
        const q = queue();
        for (let n = 0; n < 4; n++) await provider().publish(q, { n });
        let inFlight = 0;
        let most = 0;
        const seen = recorder(async () => {
          inFlight++;
          most = Math.max(most, inFlight);
          for (let i = 0; i < 3; i++) await new Promise<void>((resolve) => setImmediate(resolve));
          inFlight--;
        });
        process(q, seen.handler);
        await seen.until((j) => j.length >= 4, 'all four jobs');
        expect(most).toBe(1);
      });

      it('shares a queue between two workers, each job delivered once', async () => {
        const q = queue();
        const published = [];
        for (let n = 0; n < 12; n++) published.push((await provider().publish(q, { n })).id);
        const seen = recorder();
        process(q, seen.handler, { concurrency: 2 });
        process(q, seen.handler, { concurrency: 2 });
        await seen.until((j) => j.length >= 12, 'all twelve jobs');
        await statsReach(q, { waiting: 0, active: 0 });
        expect(ids(seen.jobs).sort()).toEqual([...published].sort());
      });

      it('close() waits for the job in flight, which then counts as done and is not delivered again', async () => {
        const q = queue();
        const slow = await provider().publish(q, { slow: true });
        const release = gate();
        let finished = false;
        const seen = recorder(async () => {
          await release.wait;
          finished = true;
        });
        const worker = process(q, seen.handler);
        await seen.until((j) => j.length >= 1, 'the slow job');

        let closed = false;
        const closing = worker.close().then(() => {
          closed = true;
        });
        // Let close() run as far as it can on its own: it must still be waiting for the handler.
        for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
        expect(closed, 'close() resolved while a job was still running').toBe(false);
        release.open();
        await closing;
        expect(finished, 'close() resolved before the handler finished').toBe(true);
        await worker.close(); // idempotent

        const sentinel = await provider().publish(q, { sentinel: true });
        const after = recorder();
        process(q, after.handler);
        await after.until((j) => ids(j).includes(sentinel.id), 'the sentinel');
        expect(ids(after.jobs), 'the job finished during close() came back').not.toContain(slow.id);
        expect(ids(seen.jobs)).toEqual([slow.id]);
      });
    });

    describe('job status', () => {
      it('follows a job by id: waiting, completed, failed with its last error; an unknown id is undefined', async () => {
        const q = queue();
        expect(await provider().jobStatus(q, 'never-published')).toBeUndefined();
        const ok = await provider().publish(q, { n: 1 }, { jobId: 'status-ok' });
        expect(await provider().jobStatus(q, ok.id)).toMatchObject({ id: 'status-ok', queue: q, state: 'waiting', attemptsMade: 0 });
        const bad = await provider().publish(q, { n: 2 }, { jobId: 'status-bad', attempts: 2 });
        const seen = recorder(async (job) => {
          if (job.id === bad.id) throw new Error(`no luck on try ${job.attempt}`);
        });
        process(q, seen.handler);
        const reach = (id: string, want: Record<string, unknown>) =>
          vi.waitFor(async () => expect(await provider().jobStatus(q, id)).toMatchObject(want), {
            timeout: ARRIVAL_TIMEOUT_MS,
            interval: 50,
          });
        await reach(ok.id, { id: 'status-ok', state: 'completed' });
        await reach(bad.id, { state: 'failed', attemptsMade: 2, maxAttempts: 2, error: 'no luck on try 2' });
        // A durable queue: another instance on the same backend sees the same (a CLI following a server's job).
        if (opts.features?.durable) {
          const peer = await opts.create();
          try {
            expect(await peer.jobStatus(q, bad.id)).toMatchObject({ state: 'failed', error: 'no luck on try 2' });
          } finally {
            await peer.close();
          }
        }
      });
    });

    describe('stats and purge', () => {
      it('stats() counts waiting, active, delayed and failed jobs', async () => {
        const q = queue();
        expect(await provider().stats(q)).toMatchObject({ waiting: 0, active: 0, delayed: 0, failed: 0 });
        await provider().publish(q, { kind: 'later' }, { delayMs: 600_000 });
        await provider().publish(q, { kind: 'fail' });
        await provider().publish(q, { kind: 'block' });
        expect(await provider().stats(q)).toMatchObject({ waiting: 2, active: 0, delayed: 1, failed: 0 });

        const release = gate();
        const seen = recorder<{ kind: string }>(async (job) => {
          if (job.payload.kind === 'fail') throw new Error('fails on purpose');
          if (job.payload.kind === 'block') await release.wait;
        });
        process(q, seen.handler, { concurrency: 1 });
        await seen.until((j) => j.some((x) => x.payload.kind === 'block'), 'the blocking job');
        await provider().publish(q, { kind: 'plain' });
        await statsReach(q, { waiting: 1, active: 1, delayed: 1, failed: 1 });

        release.open();
        await seen.until((j) => j.some((x) => x.payload.kind === 'plain'), 'the plain job');
        await statsReach(q, { waiting: 0, active: 0, delayed: 1, failed: 1 });
        const s = await provider().stats(q);
        if (s.completed !== undefined) expect(s.completed).toBe(2);
      });

      it('purge() removes the waiting, delayed and failed jobs of that queue only', async () => {
        const q = queue('target');
        const other = queue('other');
        await provider().publish(q, { n: 'failing' });
        const w = process(q, async () => {
          throw new Error('fails on purpose');
        });
        await failedCount(q, 1);
        await w.close();
        await provider().publish(q, { n: 'waiting-1' });
        await provider().publish(q, { n: 'waiting-2' }, { priority: 1 });
        await provider().publish(q, { n: 'delayed' }, { delayMs: 600_000 });
        await provider().publish(other, { n: 'other' });
        await provider().publish(other, { n: 'other-delayed' }, { delayMs: 600_000 });
        expect(await provider().stats(q)).toMatchObject({ waiting: 2, delayed: 1, failed: 1, active: 0 });

        await provider().purge(q);
        expect(await provider().stats(q)).toMatchObject({ waiting: 0, delayed: 0, failed: 0, active: 0 });
        expect((await provider().failed(q)).items).toEqual([]);
        expect(await provider().stats(other)).toMatchObject({ waiting: 1, delayed: 1 });

        const fresh = await provider().publish(q, { n: 'fresh' });
        const seen = recorder();
        process(q, seen.handler);
        await seen.until((j) => j.length >= 1, 'the job published after purge');
        await statsReach(q, { waiting: 0, active: 0 });
        expect(ids(seen.jobs)).toEqual([fresh.id]);
      });
    });

    describe('input', () => {
      it('rejects options the contract does not allow as a final error', async () => {
        const q = queue();
        await expectFinalRejection(provider().publish(q, {}, { priority: 0 }), 'priority 0');
        await expectFinalRejection(provider().publish(q, {}, { attempts: 0 }), 'attempts 0');
        await expectFinalRejection(provider().publish(q, {}, { delayMs: -5 }), 'a negative delay');
        await expectFinalRejection(provider().publish('bad:queue name', {}), 'a queue name with ":" and a space');
        await expectFinalRejection(provider().publishMany(q, [{ payload: {}, opts: { attempts: 1.5 } }]), 'fractional attempts');
        expect(() => provider().process(q, async () => undefined, { concurrency: 0 }), 'concurrency 0').toThrow(/concurrency/);
        expect(await provider().stats(q)).toMatchObject({ waiting: 0, delayed: 0 });
      });
    });

    describe('lifecycle', () => {
      lifecycleTests(provider);
    });

    opts.additionalTests?.(ctx);
  });
}
