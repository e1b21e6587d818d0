import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Job, QueueProvider } from '@apigate/kernel';
import { createForTest, PrivateRedis } from '@apigate/provider-testkit';
import { afterEach, describe, expect, it, vi } from 'vitest';
import provider from '../src/index.js';

const servers: PrivateRedis[] = [];
const opened: QueueProvider[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((q) => q.close()));
  await Promise.all(servers.splice(0).map((s) => s.kill()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Short locks so a job whose worker went away is handed out again in seconds (defaults: 30 s). */
const CONFIG = { commandTimeoutMs: '1000', connectTimeoutMs: '1000', lockDurationMs: '1000', stalledIntervalMs: '500' };

async function open(url: string): Promise<QueueProvider> {
  const { provider: q } = await createForTest(provider, { ...CONFIG, url });
  opened.push(q);
  return q;
}

describe('provider-redis-queue close() while Redis is down', () => {
  it('ends once the jobs in flight have finished, and a job it could not record as done runs again after Redis returns', async () => {
    // An append-only file synced on every write, so the restarted server has the job that was running.
    const dir = mkdtempSync(path.join(tmpdir(), 'apigate-redis-aof-'));
    dirs.push(dir);
    const s = await PrivateRedis.start(['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir]);
    servers.push(s);

    const q = await open(s.url);
    let handlerDone = false;
    const started = new Promise<Job>((resolve) => {
      q.process('slow', async (job) => {
        resolve(job);
        // A job that is still working when the gateway shuts down.
        await new Promise((r) => setTimeout(r, 500));
        handlerDone = true;
      });
    });
    q.process('idle', async () => undefined); // a worker with nothing to do must not hold close() up either
    const published = await q.publish('slow', { n: 1 });
    expect((await started).id).toBe(published.id);

    await s.kill();
    // Before the fix this never settled: BullMQ waited for a connection ioredis would never end.
    await q.close();
    expect(handlerDone, 'close() resolved before the job in flight finished').toBe(true);

    await s.start();
    const other = await open(s.url);
    const again = new Promise<Job>((resolve) => {
      other.process('slow', async (job) => resolve(job));
    });
    // Its completion never reached Redis: the stalled check hands it out again (at-least-once).
    expect((await again).id).toBe(published.id);
    await vi.waitFor(async () => expect(await other.stats('slow')).toMatchObject({ active: 0, waiting: 0, completed: 1 }), {
      timeout: 15_000,
    });
  }, 60_000);

  it('closes one worker while Redis is down (the provider stays open), and a new worker runs jobs once Redis is back', async () => {
    const s = await PrivateRedis.start();
    servers.push(s);
    const q = await open(s.url);
    const worker = q.process('single', async () => undefined);
    await q.publish('single', { n: 1 });
    await vi.waitFor(async () => expect(await q.stats('single')).toMatchObject({ completed: 1 }), { timeout: 15_000 });

    await s.kill();
    await vi.waitFor(async () => expect((await q.check(AbortSignal.timeout(5_000))).status).toBe('error'), { timeout: 15_000 });
    // An outage that has lasted a moment: the connections now spend most of their time waiting
    // between reconnect attempts (back-off up to 2 s), which is where ioredis drops a disconnect.
    // No event says so from outside the provider, hence the plain wait.
    await new Promise((r) => setTimeout(r, 1_500));
    // As a gateway stopping its delivery workers before the providers; before the fix this never settled.
    await worker.close();

    await s.start();
    await vi.waitFor(async () => expect((await q.check(AbortSignal.timeout(5_000))).status).toBe('connected'), { timeout: 15_000 });
    const seen: string[] = [];
    q.process('single', async (job) => {
      seen.push(job.id);
    });
    const after = await q.publish('single', { n: 2 });
    await vi.waitFor(() => expect(seen).toEqual([after.id]), { timeout: 15_000 });
  }, 60_000);

  it('ends when Redis comes back while it is closing', async () => {
    const s = await PrivateRedis.start();
    servers.push(s);
    const q = await open(s.url);
    const seen: string[] = [];
    q.process('back', async (job) => {
      seen.push(job.id);
    });
    const first = await q.publish('back', { n: 1 });
    await vi.waitFor(() => expect(seen).toContain(first.id), { timeout: 15_000 });
    await s.kill();
    await vi.waitFor(async () => expect((await q.check(AbortSignal.timeout(5_000))).status).toBe('error'), { timeout: 15_000 });
    const closing = q.close();
    await s.start();
    await closing;
    // A fresh provider sees a clean queue: nothing left active by the closed one.
    const reader = await open(s.url);
    expect(await reader.stats('back')).toMatchObject({ active: 0 });
  }, 60_000);
});
