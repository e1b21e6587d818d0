// `apigate serve --workers 2` for real (issue 13): two worker processes share one listener and
// one Redis, so the per-key rate limit is global (plan --rpm 10: 16 calls -> 10 x 200 + 6 x 429
// whichever worker answers), SIGTERM stops both gracefully with exit 0, and the metered usage
// of both reaches the store.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, cleanEnv, ok, serve, serveWorkers, startUpstream, tempDir, type Upstream, waitFor } from './helpers.js';

let upstream: Upstream;
beforeAll(async () => {
  upstream = await startUpstream();
});
afterAll(() => upstream?.close());

/**
 * A data dir on the shared Redis with a default plan of `rpm` requests a minute, one user with a
 * key and a route to the upstream; the requests counted for the user so far.
 */
async function setUp(dir: string, rpm: number, email: string) {
  const env = cleanEnv({
    APIGATE_DATA_DIR: tempDir(dir),
    CACHE_PROVIDER: 'redis',
    QUEUE_PROVIDER: 'redis',
    REDIS_URL: 'redis://127.0.0.1:6379',
  });
  await ok(['plans', 'create', `rpm${rpm}`, '--rpm', String(rpm), '--default'], env);
  await ok(['users', 'create', email], env);
  await ok(['routes', 'add', '/up', upstream.url, '--strip-prefix'], env);
  const key = JSON.parse(await ok(['keys', 'create', '--user', email, '--json'], env)).key as string;
  const usage = async () => JSON.parse(await ok(['usage', 'show', '--user', email, '--json'], env)).totals.requests as number;
  return { env, key, usage };
}

describe('serve --workers 2 on Redis', () => {
  it('shares the listener, limits globally, stops both workers on SIGTERM and keeps the usage', async () => {
    const { env, key, usage } = await setUp('workers', 10, 'w@example.com');

    const served = await serveWorkers(env, 2);
    try {
      expect(served.workerPids).toHaveLength(2);
      expect(served.workerPids).not.toContain(served.child.pid);

      const statuses: number[] = [];
      for (let i = 0; i < 16; i++) {
        // A new connection each time: the primary hands connections to the workers in turn.
        const r = await fetch(`${served.url}/up/x`, { headers: { 'x-api-key': key, connection: 'close' } });
        await r.arrayBuffer();
        statuses.push(r.status);
      }
      expect(statuses.filter((s) => s === 200)).toHaveLength(10);
      expect(statuses.filter((s) => s === 429)).toHaveLength(6);
    } finally {
      served.child.kill('SIGTERM');
    }
    expect(await served.exited).toBe(0);
    const out = served.logs();
    expect(out).toContain('primary: every worker stopped');
    expect(out.split('\n').filter((l) => l.includes('"msg":"stopped"'))).toHaveLength(2);
    expect(await usage()).toBe(10);
  });

  it('a SIGKILLed primary: each worker stops gracefully and its metered usage is counted after the next start', async () => {
    const { env, key, usage } = await setUp('workers-orphaned', 1000, 'o@example.com');

    const served = await serveWorkers(env, 2);
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    try {
      const statuses = await Promise.all(
        Array.from({ length: 12 }, async () => {
          const r = await fetch(`${served.url}/up/x`, { headers: { 'x-api-key': key, connection: 'close' } });
          await r.arrayBuffer();
          return r.status;
        }),
      );
      expect(statuses.every((s) => s === 200)).toBe(true);
      // At once, before the workers' next usage flush (every second): node's cluster alone would exit(0) and drop it.
      served.child.kill('SIGKILL');
      await waitFor('both workers to exit', () => !served.workerPids.some(alive), 30_000);
    } finally {
      for (const pid of served.workerPids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
    const out = served.logs();
    expect(out.split('\n').filter((l) => l.includes('the primary is gone'))).toHaveLength(2);
    expect(out.split('\n').filter((l) => l.includes('"msg":"stopped"'))).toHaveLength(2);

    // The batches the workers flushed wait on the Redis queue; the next start applies them.
    const again = await serve(BIN, env);
    try {
      await waitFor('12 requests in the store', async () => (await usage()) === 12, 60_000);
    } finally {
      expect(await again.stop()).toBe(0);
    }
    expect(await usage()).toBe(12);
  }, 180_000);
});
