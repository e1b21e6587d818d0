import { describe, expect, it, vi } from 'vitest';
import { startUsageConsumer } from '../src/metering/consumer.js';
import { USAGE_QUEUE, UsageRecorder } from '../src/metering/recorder.js';
import {
  addOverhead,
  OVERHEAD_BUCKETS_MS,
  overheadBucket,
  overheadQuantile,
  type UsageBatch,
  type UsageRecord,
  usageBatchSchema,
} from '../src/metering/types.js';
import { cleanupAfterEach } from './helpers/cleanup.js';
import { MemoryUsageSink, memory } from './helpers/queues.js';

const { defer } = cleanupAfterEach();

const NOON = Date.UTC(2026, 10, 27, 12, 0, 0);

function rec(over: Partial<UsageRecord>): UsageRecord {
  return {
    keyId: 'key_1',
    userId: 'usr_1',
    routeId: 'rt_1',
    status: 200,
    bytesIn: 0,
    bytesOut: 0,
    latencyMs: 1,
    overheadMs: 0.2,
    at: NOON,
    ...over,
  };
}

/** A memory queue with the consumer running into an in-memory repository. */
async function pipeline() {
  const { queue, close } = await memory();
  const repo = new MemoryUsageSink();
  const worker = startUsageConsumer(queue, repo);
  defer(close, () => worker.close());
  return { queue, repo };
}

function recorder(...args: ConstructorParameters<typeof UsageRecorder>) {
  const r = new UsageRecorder(args[0], { flushIntervalMs: 3_600_000, ...args[1] }); // flushes are the test's
  defer(() => r.close());
  return r;
}

describe('UsageRecorder', () => {
  it('sums requests per key, route and minute, and the consumer stores them', async () => {
    const { queue, repo } = await pipeline();
    const meter = recorder(queue, { instanceId: 'gw-a' });
    meter.record(rec({ status: 200, bytesIn: 10, bytesOut: 100, latencyMs: 5, overheadMs: 0.5, at: NOON + 5_000 }));
    meter.record(rec({ status: 404, bytesIn: 0, bytesOut: 20, latencyMs: 15, overheadMs: 3, at: NOON + 50_000 }));
    meter.record(rec({ status: 502, bytesIn: 3, bytesOut: 40, latencyMs: 7, at: NOON + 59_999 }));
    meter.record(rec({ status: 200, at: NOON + 60_000 })); // the next minute
    meter.record(rec({ keyId: 'key_2', userId: 'usr_2', at: NOON + 1_000 }));
    meter.record(rec({ routeId: null, status: 429, at: NOON + 2_000 })); // refused before a route matched
    expect(meter.stats()).toMatchObject({ rows: 4, outbox: 0 });

    expect(await meter.flush()).toBe(1);
    expect(meter.stats()).toMatchObject({ rows: 0, outbox: 0, published: 1, publishFailures: 0 });
    await vi.waitFor(() => expect(repo.applied).toEqual(new Set(['gw-a-1'])));

    expect(repo.rows.get(`key_1|rt_1|${NOON}`)).toEqual({
      keyId: 'key_1',
      userId: 'usr_1',
      routeId: 'rt_1',
      minute: NOON,
      requests: 3,
      clientErrors: 1,
      serverErrors: 1,
      bytesIn: 13,
      bytesOut: 160,
      latencyMsTotal: 27,
      latencyMsMax: 15,
      overhead: [1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0], // 0.2, 0.5 (bounds are inclusive) and 3 ms
    });
    expect(repo.rows.get(`key_1|rt_1|${NOON + 60_000}`)?.requests).toBe(1);
    expect(repo.rows.get(`key_2|rt_1|${NOON}`)?.userId).toBe('usr_2');
    expect(repo.rows.get(`key_1||${NOON}`)).toMatchObject({ routeId: null, requests: 1, clientErrors: 1 });
    expect(repo.requests()).toBe(6);

    // Nothing new: nothing published.
    expect(await meter.flush()).toBe(0);
  });

  it('buckets overheads by inclusive upper bounds, and overheadQuantile reads the bound holding a quantile', () => {
    expect(OVERHEAD_BUCKETS_MS).toEqual([0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256, Number.POSITIVE_INFINITY]);
    expect([0, 0.25, 0.2501, 1, 1.5, 256, 256.1, 1e9, Number.NaN].map(overheadBucket)).toEqual([0, 0, 1, 2, 3, 10, 11, 11, 11]);
    const hist = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    for (let i = 0; i < 98; i++) hist[overheadBucket(0.3)]!++;
    hist[overheadBucket(3)]!++;
    hist[overheadBucket(300)]!++;
    expect(overheadQuantile(hist, 0.5)).toBe(0.5);
    expect(overheadQuantile(hist, 0.98)).toBe(0.5);
    expect(overheadQuantile(hist, 0.99)).toBe(4);
    expect(overheadQuantile(hist, 1)).toBe(Number.POSITIVE_INFINITY);
    expect(overheadQuantile(hist, 0)).toBe(0.5); // the smallest request's bucket
    expect(overheadQuantile(new Array(12).fill(0), 0.99)).toBe(0);
    expect(overheadQuantile([], 0.5)).toBe(0);
    const sum = [1, 2];
    addOverhead(sum, [3, 0, 4]);
    expect(sum).toEqual([4, 2, 4]);
    // A batch without the histogram (an older gateway's) is still valid; one with a longer histogram is not.
    const row = {
      keyId: 'k',
      userId: 'u',
      routeId: null,
      minute: NOON,
      requests: 1,
      clientErrors: 0,
      serverErrors: 0,
      bytesIn: 0,
      bytesOut: 0,
      latencyMsTotal: 1,
      latencyMsMax: 1,
    };
    expect(usageBatchSchema.safeParse({ id: 'b', createdAt: 'x', rows: [row] }).success).toBe(true);
    expect(usageBatchSchema.safeParse({ id: 'b', createdAt: 'x', rows: [{ ...row, overhead: new Array(13).fill(0) }] }).success).toBe(
      false,
    );
  });

  it('splits a large flush into batches of maxRowsPerBatch, each its own job', async () => {
    const { queue, repo } = await pipeline();
    const meter = recorder(queue, { maxRowsPerBatch: 2, instanceId: 'gw-b' });
    for (let k = 0; k < 5; k++) meter.record(rec({ keyId: `key_${k}` }));
    expect(await meter.flush()).toBe(3);
    await vi.waitFor(() => expect(repo.applied.size).toBe(3));
    expect(repo.requests()).toBe(5);
  });

  it('publishes each batch with its id as jobId, and a batch delivered twice is counted once', async () => {
    const { queue, repo } = await pipeline();
    const meter = recorder(queue, { instanceId: 'gw-c' });
    meter.record(rec({}));
    await meter.flush();
    await vi.waitFor(() => expect(repo.calls).toBe(1));

    // The queue itself refuses the same jobId again...
    const batch: UsageBatch = { id: 'gw-c-1', createdAt: new Date(NOON).toISOString(), rows: [] };
    expect((await queue.publish(USAGE_QUEUE, batch, { jobId: 'gw-c-1' })).duplicate).toBe(true);
    // ...and a redelivery under another job id (at-least-once) changes nothing in the repository.
    const again = { id: 'gw-c-1', createdAt: batch.createdAt, rows: [{ ...[...repo.rows.values()][0]! }] };
    await queue.publish(USAGE_QUEUE, again, { jobId: 'redelivery' });
    await vi.waitFor(() => expect(repo.calls).toBe(2));
    expect(repo.requests()).toBe(1);
  });

  it('sends a malformed batch to the failed set with a message naming the field', async () => {
    const { queue, repo } = await pipeline();
    await queue.publish(USAGE_QUEUE, { id: 'x', createdAt: 'now', rows: [{ keyId: 'k' }] }, { jobId: 'bad-1' });
    await vi.waitFor(async () => expect((await queue.failed(USAGE_QUEUE)).items).toHaveLength(1));
    const [failed] = (await queue.failed(USAGE_QUEUE)).items;
    expect(failed!.error).toMatch(/^usage batch bad-1 is malformed: rows\.0\.userId: /);
    expect(repo.calls).toBe(0);
  });

  it('publishes what is buffered on close, so a restart loses no counts', async () => {
    const { queue, repo } = await pipeline();
    const before = new UsageRecorder(queue, { flushIntervalMs: 3_600_000 });
    for (let i = 0; i < 60; i++) before.record(rec({ at: NOON + i * 1_000 }));
    expect(await before.close()).toMatchObject({ unpublished: 0, requests: 0, spooled: false });
    expect(await before.close()).toMatchObject({ unpublished: 0, requests: 0, spooled: false });

    const after = recorder(queue);
    for (let i = 0; i < 40; i++) after.record(rec({ at: NOON + 60_000 + i * 1_000 }));
    await after.close();
    await vi.waitFor(() => expect(repo.requests()).toBe(100));
  });

  it('flushes on its own timer', async () => {
    const { queue, repo } = await pipeline();
    const meter = new UsageRecorder(queue, { flushIntervalMs: 20 });
    defer(() => meter.close());
    meter.record(rec({}));
    await vi.waitFor(() => expect(repo.requests()).toBe(1), { timeout: 10_000 });
  });
});
