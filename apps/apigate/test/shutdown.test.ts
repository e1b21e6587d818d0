// Issue 9 items 6 and 8 through the built binary: SIGTERM while a private Redis is frozen with
// SIGSTOP stops within the shutdown deadline, spools the metered usage and exits 1 saying so (the
// next start replays it); quota emails waiting on the memory queue survive a restart.
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PrivateRedis } from '@apigate/provider-testkit';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, cleanEnv, cli, ok, type Served, serve, startUpstream, tempDir, type Upstream, waitFor } from './helpers.js';

const SHUTDOWN_MS = 3000;
/** Exit must come within the deadline plus this (a loaded 2-core machine; the process is already running). */
const MARGIN_MS = 2500;

let upstream: Upstream;
const running: Served[] = [];

beforeAll(async () => {
  upstream = await startUpstream();
});
afterAll(async () => {
  for (const s of running.splice(0)) if (s.child.exitCode === null) await s.stop();
  await upstream?.close();
});

/** A plan with a monthly quota, a user on it with a key, and a route to the upstream; returns the key. */
async function setUp(env: NodeJS.ProcessEnv, monthly: number): Promise<string> {
  await ok(['plans', 'create', 'metered', '--monthly', String(monthly), '--default'], env);
  await ok(['users', 'create', 'bob@example.com', '--plan', 'metered'], env);
  await ok(['routes', 'add', '/up', upstream.url, '--strip-prefix'], env);
  return JSON.parse(await ok(['keys', 'create', '--user', 'bob@example.com', '--json'], env)).key;
}

const call = (url: string, key: string) =>
  fetch(`${url}/up/x`, { headers: { 'x-api-key': key }, signal: AbortSignal.timeout(15_000) }).then((r) => r.status);

async function start(env: NodeJS.ProcessEnv): Promise<Served> {
  const s = await serve(BIN, env);
  running.push(s);
  return s;
}

describe('shutdown with a deadline', () => {
  let redis: PrivateRedis;
  beforeAll(async () => {
    redis = await PrivateRedis.start();
  });
  afterAll(async () => {
    redis?.thaw();
    await redis?.kill();
  });

  it('SIGTERM with Redis frozen: exits 1 within the deadline, says what it spooled, and the next start replays it', async () => {
    const env = cleanEnv({
      APIGATE_DATA_DIR: tempDir('shutdown'),
      CACHE_PROVIDER: 'redis',
      QUEUE_PROVIDER: 'redis',
      REDIS_URL: redis.url,
      APIGATE_SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_MS),
    });
    const key = await setUp(env, 1000);
    const usage = async () => JSON.parse(await ok(['usage', 'show', '--user', 'bob@example.com', '--json'], env)).totals.requests as number;

    const first = await start(env);
    expect(await call(first.url, key)).toBe(200);
    await waitFor('the first request in the store', async () => (await usage()) === 1);

    // Redis hangs: connections stay open, nothing is answered. Limits fail open; the counts cannot reach the queue.
    redis.freeze();
    const statuses = await Promise.all(Array.from({ length: 6 }, () => call(first.url, key)));
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200]);

    const t0 = Date.now();
    const code = await first.stop();
    const took = Date.now() - t0;
    running.pop();
    const logs = first.logs();
    expect(took, logs).toBeLessThan(SHUTDOWN_MS + MARGIN_MS);
    expect(code, logs).toBe(1);
    // It says what it spooled and where.
    expect(logs).toMatch(
      /usage batches \(6 requests\) could not reach the queue: spooled to \S+usage-spool\.jsonl, published at the next start/,
    );

    // Redis back: the next start publishes the spool and the store has all seven requests.
    redis.thaw();
    const second = await start(env);
    await waitFor('the spooled requests in the store', async () => (await usage()) === 7, 60_000);
    expect(await second.stop()).toBe(0);
    running.pop();
    expect(await usage()).toBe(7);
  }, 240_000);

  it('a bad APIGATE_SHUTDOWN_TIMEOUT_MS stops serve with one line naming it', async () => {
    const r = await cli(
      ['serve', '--port', '0'],
      cleanEnv({ APIGATE_DATA_DIR: tempDir('shutdown-bad'), APIGATE_SHUTDOWN_TIMEOUT_MS: 'soon' }),
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^apigate: APIGATE_SHUTDOWN_TIMEOUT_MS \(setting server\.shutdown_timeout_ms\): expected a whole number of milliseconds/m,
    );
  });
});

describe('quota emails on the memory queue survive a restart', () => {
  it('emails waiting for a down SMTP server at SIGTERM are spooled and delivered after the next start', async () => {
    // A port with nothing listening yet: the SMTP server comes up only for the second run.
    const probe = http.createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const smtpPort = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));

    const env = cleanEnv({
      APIGATE_DATA_DIR: tempDir('mq-spool'),
      EMAIL_PROVIDER: 'smtp',
      SMTP_HOST: '127.0.0.1',
      SMTP_PORT: String(smtpPort),
      SMTP_TLS: 'false',
      SMTP_FROM: 'quota@apigate.test',
    });
    await ok(['settings', 'set', 'delivery.backoff_ms', '1000'], env);
    const key = await setUp(env, 5);

    const first = await start(env);
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push(await call(first.url, key));
    expect(statuses).toEqual([200, 200, 200, 200, 200]);
    // Both notices (80% and used up) tried once and waiting for a retry.
    await waitFor('two failed email tries', () => (first.logs().match(/email\.send job \S+ attempt 1 of \d+ failed/g) ?? []).length >= 2);
    expect(await first.stop()).toBe(0);
    running.pop();
    expect(first.logs()).toMatch(/memory queue: \d+ jobs spooled to/);

    const inbox: { to: string; subject: string }[] = [];
    const smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onData(stream, session, cb) {
        let raw = '';
        stream.on('data', (d) => (raw += d));
        stream.on('end', () => {
          inbox.push({ to: session.envelope.rcptTo.map((r) => r.address).join(','), subject: /^Subject: (.*)$/m.exec(raw)?.[1] ?? '' });
          cb();
        });
      },
    });
    await new Promise<void>((r) => smtp.listen(smtpPort, '127.0.0.1', r));
    try {
      const second = await start(env);
      await waitFor('both quota emails', () => inbox.length >= 2, 60_000);
      // Each once: give a duplicate time to show up before stopping.
      await new Promise((r) => setTimeout(r, 1500));
      expect(await second.stop()).toBe(0);
      running.pop();
      const month = new Date().toISOString().slice(0, 7);
      expect(inbox.map((m) => m.subject).sort()).toEqual(
        [`You have used 80% of your API quota for ${month}`, `Your API quota for ${month} is used up`].sort(),
      );
      expect(inbox.every((m) => m.to === 'bob@example.com')).toBe(true);
    } finally {
      await new Promise<void>((r) => smtp.close(() => r()));
    }
  }, 240_000);
});
