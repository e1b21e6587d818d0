import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { startUsageConsumer } from '../src/metering/consumer.js';
import { UsageRecorder } from '../src/metering/recorder.js';
import type { UsageRecord } from '../src/metering/types.js';
import { cleanupAfterEach } from './helpers/cleanup.js';
import { MemoryUsageSink, redis } from './helpers/queues.js';
import { tcpRelay } from './helpers/relay.js';

const { defer } = cleanupAfterEach();

const NOON = Date.UTC(2026, 10, 27, 12, 0, 0);
const rec = (keyId: string, at = NOON): UsageRecord => ({
  keyId,
  userId: 'usr_1',
  routeId: 'rt_1',
  status: 200,
  bytesIn: 1,
  bytesOut: 2,
  latencyMs: 3,
  overheadMs: 0.1,
  at,
});

/** The BullMQ queue reached through a relay that the test can take down, like a Redis outage. */
async function queueBehindRelay() {
  const relay = await tcpRelay({ host: '127.0.0.1', port: 6379 });
  defer(relay.close);
  const q = await redis(relay.url);
  defer(q.close);
  return { relay, queue: q.queue };
}

describe('UsageRecorder when the queue fails', () => {
  it('keeps a batch the queue refuses and publishes it once the queue is back', async () => {
    const { relay, queue } = await queueBehindRelay();
    const meter = new UsageRecorder(queue, { flushIntervalMs: 3_600_000 });
    defer(() => meter.close());

    await relay.down();
    meter.record(rec('key_1'));
    meter.record(rec('key_1'));
    expect(await meter.flush()).toBe(0);
    meter.record(rec('key_2'));
    expect(await meter.flush()).toBe(0);
    expect(meter.stats()).toMatchObject({ rows: 0, outbox: 2, published: 0 });
    expect(meter.stats().publishFailures).toBeGreaterThanOrEqual(2);
    expect(meter.stats().lastError).toMatch(/queue\/redis publish/);

    await relay.up();
    await vi.waitFor(async () => expect(await meter.flush()).toBeGreaterThan(0), { timeout: 15_000, interval: 100 });
    await meter.flush();
    expect(meter.stats()).toMatchObject({ outbox: 0, published: 2 });
    expect(meter.stats().lastError).toBeUndefined();

    // A consumer on the same Redis stores every count.
    const repo = new MemoryUsageSink();
    const worker = startUsageConsumer(queue, repo);
    defer(() => worker.close());
    await vi.waitFor(() => expect(repo.requests()).toBe(3), { timeout: 15_000 });
    expect(repo.requests('key_1')).toBe(2);
  });

  it('close({ deadline }) does not wait past the deadline for a queue that hangs, and spools what it holds', async () => {
    const { relay, queue } = await queueBehindRelay();
    const spoolFile = path.join(mkdtempSync(path.join(tmpdir(), 'apigate-usage-')), 'usage.jsonl');
    const meter = new UsageRecorder(queue, { flushIntervalMs: 3_600_000, spoolFile, instanceId: 'gw-hung' });
    expect(await queue.stats('usage')).toBeDefined(); // connected before the freeze
    relay.freeze();
    defer(() => relay.thaw());
    for (let i = 0; i < 4; i++) meter.record(rec('key_1'));
    const t0 = Date.now();
    const summary = await meter.close({ deadline: Date.now() + 300 });
    // The provider's own command timeout (1 s here) and the default close timeout (5 s) are not waited for.
    expect(Date.now() - t0).toBeLessThan(900);
    expect(summary).toMatchObject({ unpublished: 1, requests: 4, spooled: true, spoolFile });
    expect(JSON.parse(readFileSync(spoolFile, 'utf8'))).toMatchObject({ id: 'gw-hung-1', rows: [{ keyId: 'key_1', requests: 4 }] });
  });

  it('spools unpublished batches to disk at close and publishes them at the next start', async () => {
    const { relay, queue } = await queueBehindRelay();
    const spoolFile = path.join(mkdtempSync(path.join(tmpdir(), 'apigate-usage-')), 'spool', 'usage.jsonl');

    const first = new UsageRecorder(queue, { flushIntervalMs: 3_600_000, spoolFile, closeTimeoutMs: 300, instanceId: 'gw-1' });
    await relay.down();
    for (let i = 0; i < 5; i++) first.record(rec('key_1', NOON + i * 30_000));
    expect(await first.close()).toMatchObject({ unpublished: 1, spooled: true, spoolFile });
    const spooled = readFileSync(spoolFile, 'utf8');
    expect(JSON.parse(spooled)).toMatchObject({ id: 'gw-1-1' });

    await relay.up();
    const second = new UsageRecorder(queue, { flushIntervalMs: 3_600_000, spoolFile, instanceId: 'gw-2' });
    defer(() => second.close());
    expect(second.stats().outbox).toBe(1);
    second.record(rec('key_2'));
    await vi.waitFor(
      async () => {
        await second.flush();
        expect(second.stats().outbox).toBe(0);
      },
      { timeout: 15_000, interval: 100 },
    );
    expect(existsSync(spoolFile)).toBe(false);

    const repo = new MemoryUsageSink();
    const worker = startUsageConsumer(queue, repo);
    defer(() => worker.close());
    await vi.waitFor(() => expect(repo.requests()).toBe(6), { timeout: 15_000 });
    expect([...repo.applied].sort()).toEqual(['gw-1-1', 'gw-2-1']);
  });

  it('rewrites the spool while the queue is failing, so a crash mid-outage keeps the counts', async () => {
    const { relay, queue } = await queueBehindRelay();
    const spoolFile = path.join(mkdtempSync(path.join(tmpdir(), 'apigate-usage-')), 'usage.jsonl');
    const meter = new UsageRecorder(queue, { flushIntervalMs: 3_600_000, spoolFile, instanceId: 'gw-3' });
    defer(() => meter.close());
    await relay.down();
    meter.record(rec('key_9'));
    await meter.flush();
    // The process could die here: the next start finds the batch.
    const survivor = new UsageRecorder(queue, { flushIntervalMs: 3_600_000, spoolFile, closeTimeoutMs: 0 });
    expect(survivor.stats().outbox).toBe(1);
    await relay.up();
    await vi.waitFor(
      async () => {
        await meter.flush();
        expect(meter.stats().outbox).toBe(0);
      },
      { timeout: 15_000, interval: 100 },
    );
    await survivor.flush();
    await survivor.close();
    // Published twice under one jobId: the queue keeps one job.
    const repo = new MemoryUsageSink();
    const worker = startUsageConsumer(queue, repo);
    defer(() => worker.close());
    await vi.waitFor(
      async () => {
        expect(repo.requests()).toBe(1);
        expect(await queue.stats('usage')).toMatchObject({ waiting: 0, active: 0, delayed: 0 });
      },
      { timeout: 15_000 },
    );
    expect(repo.calls).toBe(1);
  });
});
