import { readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Job, QueueProvider } from '@apigate/kernel';
import { assertValidManifest, createForTest, describeQueueProvider } from '@apigate/provider-testkit';
import { describe, expect, it } from 'vitest';
import pkg from '../package.json' with { type: 'json' };
import provider, { backoffDelay } from '../src/index.js';

describe('provider-memory-queue', () => {
  it('has a valid manifest', () => {
    assertValidManifest(pkg, provider);
  });

  it('computes backoff like BullMQ: fixed stays, exponential doubles from the base', () => {
    expect([1, 2, 3].map((n) => backoffDelay({ type: 'fixed', delayMs: 100 }, n))).toEqual([100, 100, 100]);
    expect([1, 2, 3, 4].map((n) => backoffDelay({ type: 'exponential', delayMs: 100 }, n))).toEqual([100, 200, 400, 800]);
    expect(backoffDelay(undefined, 3)).toBe(0);
  });

  it('forgets the oldest completed ids past keepCompleted, so their jobId can be published again', async () => {
    const { provider: queue } = await createForTest(provider, { keepCompleted: '1' });
    const done: string[] = [];
    let wake: () => void = () => undefined;
    const worker = queue.process('q', async (job) => {
      done.push(job.id);
      wake();
    });
    const ran = (n: number) =>
      new Promise<void>((resolve) => {
        wake = () => done.length >= n && resolve();
        wake();
      });
    await queue.publish('q', 1, { jobId: 'a' });
    await ran(1);
    await queue.publish('q', 2, { jobId: 'b' });
    await ran(2);
    await expect.poll(async () => (await queue.stats('q')).active).toBe(0);
    expect(await queue.publish('q', 3, { jobId: 'b' })).toEqual({ id: 'b', duplicate: true });
    expect(await queue.publish('q', 4, { jobId: 'a' })).toEqual({ id: 'a', duplicate: false });
    await ran(3);
    await worker.close();
    await queue.close();
  });

  it('rejects calls after close()', async () => {
    const { provider: queue } = await createForTest(provider);
    await queue.close();
    await expect(queue.publish('q', 1)).rejects.toThrow(/closed/);
  });
});

describe('provider-memory-queue spool (jobs survive a restart)', () => {
  const open = async (dataDir: string, config: Record<string, unknown> = {}) =>
    (await createForTest(provider, config, { dataDir })).provider;
  const spoolFiles = (dataDir: string) => {
    try {
      return readdirSync(path.join(dataDir, 'spool')).filter((n) => n.endsWith('.jsonl'));
    } catch {
      return [];
    }
  };
  /** Collects the jobs a worker gets. */
  const collect = (queue: QueueProvider, name: string) => {
    const jobs: Job<unknown>[] = [];
    const worker = queue.process(name, async (job) => {
      jobs.push(job);
    });
    return { jobs, worker };
  };

  it('writes waiting, delayed and failed jobs and the completed ids at close, and the next start puts them back', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'apigate-mq-spool-'));
    const first = await open(dataDir);
    // One completed job: its id must stay taken after the restart.
    const done = collect(first, 'email.send');
    await first.publish('email.send', { to: 'done@example.com' }, { jobId: 'done-1' });
    await expect.poll(() => done.jobs.length).toBe(1);
    await done.worker.close();
    // Nobody consumes these before the restart.
    await first.publish(
      'email.send',
      { to: 'a@example.com', n: 1 },
      { jobId: 'quota:usr_1:2026-12:0.8', attempts: 5, backoff: { type: 'exponential', delayMs: 1000 } },
    );
    await first.publish('email.send', { to: 'b@example.com', n: 2 }, { priority: 1 });
    await first.publish('notification.send', { title: 'later' }, { jobId: 'later', delayMs: 800 });
    const failing = first.process('broken', async () => {
      throw new Error('receiver down');
    });
    await first.publish('broken', { x: 1 }, { jobId: 'f1' });
    await expect.poll(async () => (await first.stats('broken')).failed).toBe(1);
    await failing.close();
    await first.close();

    const files = spoolFiles(dataDir);
    expect(files).toHaveLength(1);
    expect(statSync(path.join(dataDir, 'spool', files[0]!)).mode & 0o777).toBe(0o600);
    expect(readFileSync(path.join(dataDir, 'spool', files[0]!), 'utf8')).toContain('a@example.com');

    const second = await open(dataDir);
    expect(spoolFiles(dataDir)).toEqual([]); // taken, so a third start does not replay it again
    expect(await second.stats('email.send')).toMatchObject({ waiting: 2, completed: 1 });
    expect(await second.stats('notification.send')).toMatchObject({ delayed: 1 });
    expect(await second.publish('email.send', {}, { jobId: 'done-1' })).toEqual({ id: 'done-1', duplicate: true });
    expect(await second.publish('email.send', {}, { jobId: 'quota:usr_1:2026-12:0.8' })).toMatchObject({ duplicate: true });
    const failed = await second.failed('broken');
    expect(failed.items.map((j) => [j.id, j.error])).toEqual([['f1', 'receiver down']]);

    const emails = collect(second, 'email.send');
    const notes = collect(second, 'notification.send');
    await expect.poll(() => emails.jobs.length).toBe(2);
    // The prioritised one first; payloads, ids and attempts as published.
    expect(emails.jobs.map((j) => j.payload)).toEqual([
      { to: 'b@example.com', n: 2 },
      { to: 'a@example.com', n: 1 },
    ]);
    expect(emails.jobs[1]).toMatchObject({ id: 'quota:usr_1:2026-12:0.8', attempt: 1, maxAttempts: 5 });
    await expect.poll(() => notes.jobs.map((j) => j.id), { timeout: 5000 }).toEqual(['later']);
    await second.close();
    expect(spoolFiles(dataDir).length).toBeLessThanOrEqual(1); // only the failed job and completed ids remain
  });

  it('spools a job whose handler is still running when close() gives up, as waiting, and the next start runs it', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'apigate-mq-spool-'));
    const first = await open(dataDir, { closeTimeoutMs: '200' });
    let started = false;
    first.process('email.send', () => {
      started = true;
      return new Promise<void>(() => undefined); // an SMTP server that never answers
    });
    await first.publish('email.send', { to: 'stuck@example.com' }, { jobId: 'stuck' });
    await expect.poll(() => started).toBe(true);
    const t0 = Date.now();
    await first.close();
    expect(Date.now() - t0).toBeLessThan(2000);

    const second = await open(dataDir);
    const again = collect(second, 'email.send');
    await expect.poll(() => again.jobs.map((j) => [j.id, j.payload])).toEqual([['stuck', { to: 'stuck@example.com' }]]);
    await second.close();
  });

  it('keeps the files of two processes apart and replays both; spool=false writes nothing', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'apigate-mq-spool-'));
    const a = await open(dataDir);
    const b = await open(dataDir);
    await a.publish('q', 'from a');
    await b.publish('q', 'from b');
    await Promise.all([a.close(), b.close()]);
    expect(spoolFiles(dataDir)).toHaveLength(2);
    const c = await open(dataDir);
    expect((await c.stats('q')).waiting).toBe(2);
    await c.purge('q');
    await c.close();

    const off = await mkdtemp(path.join(tmpdir(), 'apigate-mq-nospool-'));
    const d = await open(off, { spool: 'false' });
    await d.publish('q', 'gone');
    await d.close();
    expect(spoolFiles(off)).toEqual([]);
  });
});

describeQueueProvider(provider, { name: 'memory queue conformance' });
