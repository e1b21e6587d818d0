// Issue 3's "How it will be checked", end to end through the built binary and the app's kernel:
// CACHE_PROVIDER=redis QUEUE_PROVIDER=redis against a private redis-server the test owns (never
// the shared one on 6379), which it kills and restarts on the same port.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { type Job, type Kernel, ProviderError } from '@apigate/kernel';
import { PrivateRedis } from '@apigate/provider-testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { openRuntime, type Runtime, startKernel } from '../src/runtime.js';
import { BIN, cleanEnv, cli, type Served, serve, tempDir } from './helpers.js';

const PASSWORD = `pw-${randomBytes(12).toString('hex')}`;
/** Outages are seen by events and polling; this only bounds a broken build. */
const SLOW = { timeout: 30_000, interval: 200 };

/** redis-cli against a private server without a password. */
async function redisCli(server: PrivateRedis, ...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(process.env.REDIS_CLI_BIN ?? '/usr/bin/redis-cli', ['-p', String(server.port), ...args]);
  return stdout.trim();
}

interface HealthAnswer {
  code: number;
  text: string;
  body: { status: string; providers: Record<string, { provider: string | null; status: string; error?: string; detail?: string }> };
}

/** One /admin/health answer; a request that hangs fails the attempt instead of the whole wait. */
async function health(url: string, seen: string[]): Promise<HealthAnswer> {
  const res = await fetch(`${url}/admin/health`, { signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  seen.push(text);
  return { code: res.status, text, body: JSON.parse(text) };
}

/** serve's JSON log lines (pino), skipping anything that is not JSON. */
function logLines(output: string): { level: number; msg: string; provider?: string }[] {
  return output.split('\n').flatMap((line) => {
    try {
      return [JSON.parse(line)];
    } catch {
      return [];
    }
  });
}

/** Settles with what `p` settles with, or rejects naming `what` when it takes longer than `ms` (a hang). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

const rejection = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );

describe('Redis cache and queue in the app, against a private redis-server with a password', () => {
  let redis: PrivateRedis;
  const servedList: Served[] = [];
  const redisEnv = () =>
    cleanEnv({
      APIGATE_DATA_DIR: tempDir('redis'),
      CACHE_PROVIDER: 'redis',
      QUEUE_PROVIDER: 'redis',
      REDIS_URL: redis.url,
      REDIS_PASSWORD: PASSWORD,
    });

  beforeAll(async () => {
    redis = await PrivateRedis.start(['--requirepass', PASSWORD]);
  });
  afterEach(async () => {
    await Promise.all(servedList.splice(0).map((s) => s.stop()));
  });
  afterAll(async () => {
    await redis?.kill();
  });

  it('`providers test --cache --queue` exits 0 and reports both connected', async () => {
    const env = redisEnv();
    const plain = await cli(['providers', 'test', '--cache', '--queue'], env);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).toMatch(/cache\s+redis\s+connected/);
    expect(plain.stdout).toMatch(/queue\s+redis\s+connected/);

    const json = await cli(['providers', 'test', '--cache', '--queue', '--json'], env);
    expect(json.code, json.stderr).toBe(0);
    const report = JSON.parse(json.stdout);
    expect(report.status).toBe('healthy');
    expect(Object.keys(report.providers).sort()).toEqual(['cache', 'queue']);
    for (const cap of ['cache', 'queue']) {
      expect(report.providers[cap]).toMatchObject({
        provider: 'redis',
        status: 'connected',
        detail: expect.stringContaining(`127.0.0.1:${redis.port}`),
      });
    }
    expect(plain.stdout + json.stdout).not.toContain(PASSWORD);
  });

  it('serve: health goes to error (503) when Redis dies, the process stays up, and both recover without a restart', async () => {
    const served = await serve(BIN, redisEnv());
    servedList.push(served);
    const bodies: string[] = [];

    const up = await health(served.url, bodies);
    expect(up.code).toBe(200);
    expect(up.body.providers.cache).toMatchObject({ provider: 'redis', status: 'connected' });
    expect(up.body.providers.queue).toMatchObject({ provider: 'redis', status: 'connected' });

    await redis.kill();
    const down = await vi.waitFor(async () => {
      const h = await health(served.url, bodies);
      expect(h.code).toBe(503);
      expect(h.body.status).toBe('unhealthy');
      expect(h.body.providers.cache!.status).toBe('error');
      expect(h.body.providers.queue!.status).toBe('error');
      return h;
    }, SLOW);
    // The errors say which Redis and why, without credentials.
    for (const cap of ['cache', 'queue']) expect(down.body.providers[cap]!.error).toContain(`127.0.0.1:${redis.port}`);
    // Still up: it answers again, and the child has not exited.
    expect((await health(served.url, bodies)).code).toBe(503);
    expect(served.child.exitCode).toBeNull();
    expect(served.child.signalCode).toBeNull();

    // The CLI during the outage: a failure in one line per problem, no password even when it is in the URL.
    const urlWithPassword = `redis://:${PASSWORD}@127.0.0.1:${redis.port}`;
    const offline = await cli(['providers', 'test', '--cache', '--queue', '--json'], {
      ...redisEnv(),
      REDIS_URL: urlWithPassword,
      REDIS_PASSWORD: '',
    });
    expect(offline.code).toBe(1);
    expect(offline.stdout + offline.stderr).toMatch(/Redis at redis:\/\/127\.0\.0\.1:\d+\/0/);
    expect(offline.stdout + offline.stderr).not.toContain(PASSWORD);

    await redis.start();
    await vi.waitFor(async () => {
      const h = await health(served.url, bodies);
      expect(h.code).toBe(200);
      expect(h.body.providers.cache!.status).toBe('connected');
      expect(h.body.providers.queue!.status).toBe('connected');
    }, SLOW);

    const logs = served.logs();
    expect(logs).toMatch(/lost the connection to Redis|failed: .*reconnecting/);
    expect(logs).toMatch(/connection to Redis restored|is connected again/);
    expect(bodies.join('\n')).not.toContain(PASSWORD);
    expect(logs).not.toContain(PASSWORD);
    expect(await served.stop()).toBe(0);
  });

  it('serve: SIGTERM during a Redis outage still shuts down (the delivery workers do not wait for Redis)', async () => {
    const served = await serve(BIN, redisEnv());
    servedList.push(served);
    await redis.kill();
    try {
      await vi.waitFor(async () => expect((await health(served.url, [])).body.providers.queue!.status).toBe('error'), SLOW);
      servedList.splice(servedList.indexOf(served), 1);
      expect(await within(served.stop(), 30_000, 'serve shutting down while Redis is down')).toBe(0);
      expect(served.logs()).toContain('"msg":"stopped"');
      expect(served.logs()).not.toContain(PASSWORD);
    } finally {
      await redis.start();
    }
  });

  it('warns at start when the queue Redis may evict keys (maxmemory-policy is not noeviction)', async () => {
    const evicting = await PrivateRedis.start();
    try {
      expect(await redisCli(evicting, 'CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lru')).toBe('OK');
      const served = await serve(BIN, cleanEnv({ APIGATE_DATA_DIR: tempDir('evict'), QUEUE_PROVIDER: 'redis', REDIS_URL: evicting.url }));
      servedList.push(served);
      const warnings = logLines(served.logs()).filter((l) => l.level === 40 && l.provider === 'redis');
      expect(warnings.map((l) => l.msg)).toContainEqual(
        expect.stringMatching(/maxmemory-policy is "allkeys-lru", not "noeviction".*noeviction/),
      );
      const h = await health(served.url, []);
      expect(h.body.providers.queue).toMatchObject({
        provider: 'redis',
        status: 'degraded',
        detail: expect.stringContaining('noeviction'),
      });
      expect(h.code).toBe(200);
    } finally {
      await Promise.all(servedList.splice(0).map((s) => s.stop()));
      await evicting.kill();
    }
  });

  describe("through the app's kernel", () => {
    let rt: Runtime;
    let kernel: Kernel;
    beforeAll(async () => {
      rt = await openRuntime({
        env: {
          APIGATE_DATA_DIR: tempDir('kernel'),
          CACHE_PROVIDER: 'redis',
          QUEUE_PROVIDER: 'redis',
          REDIS_URL: redis.url,
          REDIS_PASSWORD: PASSWORD,
        },
      });
      kernel = await startKernel(rt, ['cache', 'queue']);
    });
    afterAll(async () => {
      await kernel?.close();
      await rt?.close();
    });

    it('publishes and processes jobs, fails fast and retryable while Redis is down, and works again after it returns', async () => {
      const queue = kernel.get('queue');
      const cache = kernel.get('cache');
      const processed: Job<{ n: number }>[] = [];
      const worker = queue.process<{ n: number }>('smoke', async (job) => {
        processed.push(job);
      });
      try {
        const first = await queue.publish('smoke', { n: 1 });
        await vi.waitFor(() => expect(processed.map((j) => j.id)).toContain(first.id), SLOW);
        expect(await cache.increment('smoke-hits', 1, { ttlMs: 60_000 })).toBe(1);

        await redis.kill();
        // Right after the crash and once the client has noticed: a bounded, retryable failure each time, never a hang.
        for (let round = 0; round < 2; round++) {
          const published = await within(rejection(queue.publish('smoke', { n: 2 })), 15_000, 'publish while Redis is down');
          expect(published).toBeInstanceOf(ProviderError);
          expect(published).toMatchObject({ capability: 'queue', provider: 'redis', operation: 'publish', retryable: true });
          const counted = await within(rejection(cache.increment('smoke-hits')), 15_000, 'cache increment while Redis is down');
          expect(counted).toMatchObject({ name: 'ProviderError', capability: 'cache', retryable: true });
          for (const e of [published, counted]) expect((e as Error).message).not.toContain(PASSWORD);
          if (round === 0) {
            await vi.waitFor(async () => {
              const report = await kernel.health(['cache', 'queue']);
              expect(report.providers.cache.status).toBe('error');
              expect(report.providers.queue.status).toBe('error');
            }, SLOW);
          }
        }

        await redis.start();
        // The same job id on every try: a publish that reached Redis before an error is not doubled.
        const again = await vi.waitFor(
          () => within(queue.publish('smoke', { n: 3 }, { jobId: 'after-outage' }), 15_000, 'publish after Redis returned'),
          SLOW,
        );
        expect(again.id).toBe('after-outage');
        // The worker started before the outage picks it up: no restart of anything.
        await vi.waitFor(() => expect(processed.map((j) => j.payload.n)).toContain(3), SLOW);
        expect(processed.map((j) => j.payload.n)).not.toContain(2);
        expect(await cache.increment('smoke-hits')).toBe(1); // a fresh, empty Redis: the counter starts over
        const report = await kernel.health(['cache', 'queue']);
        expect(report.status).toBe('healthy');
      } finally {
        await worker.close();
      }
    });
  });
});
