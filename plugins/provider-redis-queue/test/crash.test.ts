import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { Job } from '@apigate/kernel';
import { createForTest } from '@apigate/provider-testkit';
import { afterAll, describe, expect, it, vi } from 'vitest';
import provider from '../src/index.js';
import { deletePrefix, rawClient, SHARED_REDIS_URL, testPrefix } from './support/shared.js';

const WORKER = fileURLToPath(new URL('./fixtures/crash-worker.ts', import.meta.url));
const PACKAGE_DIR = fileURLToPath(new URL('..', import.meta.url));
const prefix = testPrefix('crash');
// Short locks so the dead worker's job is recovered in seconds (defaults: 30 s each).
const LOCK_MS = '1000';
const STALLED_MS = '500';

afterAll(async () => {
  const redis = rawClient();
  await deletePrefix(redis, prefix);
  await redis.quit();
});

describe('provider-redis-queue when a worker process dies mid-job', () => {
  it('delivers the job again to another worker (at-least-once across processes)', async () => {
    const cfg = { url: SHARED_REDIS_URL, prefix, lockDurationMs: LOCK_MS, stalledIntervalMs: STALLED_MS };
    const { provider: queue } = await createForTest(provider, cfg);
    const published = await queue.publish('crash', { order: 7 }, { attempts: 2 });

    // tsx runs the TypeScript worker against this package's source, like vitest does here.
    const child = fork(WORKER, [], {
      cwd: PACKAGE_DIR,
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, REDIS_URL: SHARED_REDIS_URL, PREFIX: prefix, QUEUE: 'crash', LOCK_MS, STALLED_MS },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const exited = once(child, 'exit');
    try {
      const [started] = (await once(child, 'message')) as [{ started: string; attempt: number }];
      expect(started).toEqual({ started: published.id, attempt: 1 });
      expect(await queue.stats('crash')).toMatchObject({ active: 1, waiting: 0 });
      child.kill('SIGKILL');
      await exited;

      const received = new Promise<Job>((resolve) => {
        queue.process('crash', async (job) => resolve(job));
      });
      const job = await received;
      expect(job).toMatchObject({ id: published.id, payload: { order: 7 }, maxAttempts: 2 });
      await vi.waitFor(async () => expect(await queue.stats('crash')).toMatchObject({ active: 0, waiting: 0, failed: 0 }), {
        timeout: 15_000,
      });
    } finally {
      child.kill('SIGKILL');
      await queue.close();
    }
  }, 60_000);
});
