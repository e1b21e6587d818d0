import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { Writable } from 'node:stream';
import {
  createLogger,
  instrument,
  maskingLogger,
  ProviderError,
  providerSettingKey,
  type QueueProvider,
  resolveProviderConfig,
  settingsFromRecord,
} from '@apigate/kernel';
import { createForTest, freePort, PrivateRedis } from '@apigate/provider-testkit';
import { afterEach, describe, expect, it, vi } from 'vitest';
import provider from '../src/index.js';

const servers: PrivateRedis[] = [];
const opened: QueueProvider[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((q) => q.close()));
  await Promise.all(servers.splice(0).map((s) => s.kill()));
});

async function server(args: string[] = []): Promise<PrivateRedis> {
  const s = await PrivateRedis.start(args);
  servers.push(s);
  return s;
}

/** Short deadlines so failures show quickly; the tests still wait on events, not on these. */
const FAST = { commandTimeoutMs: '1000', connectTimeoutMs: '1000' };

async function open(config: Record<string, string>): Promise<QueueProvider> {
  const { provider: q } = await createForTest(provider, { ...FAST, ...config });
  opened.push(q);
  return q;
}

/**
 * The provider as the kernel makes it (config resolved, a logger masking its secrets, the instance
 * instrumented), with the log lines the test can read.
 */
async function openWithLogs(config: Record<string, string>): Promise<{ queue: QueueProvider; lines: string[] }> {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  const settings = Object.entries({ ...FAST, ...config }).map(([field, value]) => [providerSettingKey('queue', 'redis', field), value]);
  const resolved = resolveProviderConfig(provider, {}, settingsFromRecord(Object.fromEntries(settings)));
  const logger = maskingLogger(
    createLogger({ level: 'debug', destination }).child({ capability: 'queue', provider: 'redis' }),
    resolved.secretValues,
  );
  const raw = await provider.create(resolved.config as never, {
    capability: 'queue',
    provider: 'redis',
    logger,
    dataDir: tmpdir(),
    emit: () => undefined,
  });
  const queue = instrument(raw, { capability: 'queue', provider: 'redis', secrets: resolved.secretValues, emit: () => undefined }).proxy;
  opened.push(queue);
  return { queue, lines };
}

const rejection = (p: Promise<unknown>): Promise<ProviderError> =>
  p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e as ProviderError,
  );
const status = async (q: QueueProvider) => (await q.check(AbortSignal.timeout(5_000))).status;

describe('provider-redis-queue against a private redis-server', () => {
  it('fails fast with a retryable error while Redis is down, and recovers when it returns', async () => {
    const s = await server();
    const q = await open({ url: s.url });
    const seen: string[] = [];
    q.process('outage', async (job) => {
      seen.push(job.id);
    });
    const before = await q.publish('outage', { n: 1 });
    await vi.waitFor(() => expect(seen).toContain(before.id), { timeout: 15_000 });

    await s.kill();
    await vi.waitFor(async () => expect(await status(q)).toBe('error'), { timeout: 15_000 });
    const health = await q.check(AbortSignal.timeout(5_000));
    expect(health.error).toMatch(/Redis at redis:\/\/127\.0\.0\.1:\d+\/0/);
    const err = await rejection(q.publish('outage', { n: 2 }));
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/Redis at redis:\/\/127\.0\.0\.1:\d+\/0/);
    expect((await rejection(q.stats('outage'))).retryable).toBe(true);

    await s.start();
    await vi.waitFor(async () => expect(await status(q)).toBe('connected'), { timeout: 15_000 });
    const after = await q.publish('outage', { n: 3 });
    // The worker started before the outage picks up work again by itself.
    await vi.waitFor(() => expect(seen).toContain(after.id), { timeout: 30_000 });
  }, 60_000);

  it('fails a call to a hung Redis after commandTimeoutMs instead of waiting for it', async () => {
    const s = await server();
    const q = await open({ url: s.url });
    await q.publish('hung', { n: 1 });
    s.freeze();
    try {
      const err = await rejection(q.stats('hung'));
      expect(err.retryable).toBe(true);
      expect(err.message).toMatch(/timed out/i);
      expect(await status(q)).toBe('error');
    } finally {
      s.thaw();
    }
    await vi.waitFor(async () => expect((await q.stats('hung')).waiting).toBe(1), { timeout: 15_000 });
  }, 60_000);

  it('refuses to start when Redis cannot be reached, naming where and hiding the password', async () => {
    const port = await freePort();
    const err = await rejection(open({ url: `redis://:url-password-123@127.0.0.1:${port}` }));
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.retryable).toBe(true);
    expect(err.message).toContain(`cannot reach Redis at redis://127.0.0.1:${port}/0`);
    expect(err.message).toMatch(/ECONNREFUSED/);
    expect(err.message).not.toContain('url-password-123');
  });

  it('authenticates with REDIS_PASSWORD or a password in the URL and never shows it', async () => {
    const password = `pw-${randomBytes(12).toString('hex')}`;
    const s = await server(['--requirepass', password]);

    const viaField = await openWithLogs({ url: s.url, password });
    expect((await viaField.queue.publish('auth', { ok: 1 })).duplicate).toBe(false);
    const viaUrl = await open({ url: `redis://:${password}@127.0.0.1:${s.port}` });
    expect((await viaUrl.stats('auth')).waiting).toBe(1);
    const health = await viaUrl.check(AbortSignal.timeout(5_000));
    expect(health.status).toBe('connected');
    expect(JSON.stringify(health)).not.toContain(password);

    const wrong = await rejection(open({ url: s.url, password: 'not-the-password' }));
    expect(wrong.retryable, 'a wrong password is configuration, not a passing fault').toBe(false);
    expect(wrong.message).toMatch(/WRONGPASS|invalid/i);
    expect(wrong.message).not.toContain('not-the-password');

    await s.kill();
    await vi.waitFor(async () => expect(await status(viaField.queue)).toBe('error'), { timeout: 15_000 });
    const down = await viaField.queue.check(AbortSignal.timeout(5_000));
    const failed = await rejection(viaField.queue.publish('auth', {}));
    // The outage is logged once ioredis has seen the socket close.
    await vi.waitFor(() => expect(viaField.lines.join('')).toMatch(/lost the connection to Redis/), { timeout: 15_000 });
    for (const text of [JSON.stringify(down), failed.message, ...viaField.lines]) expect(text).not.toContain(password);
  }, 60_000);

  it('warns when maxmemory-policy is not noeviction, and reports degraded health', async () => {
    const lru = await server(['--maxmemory-policy', 'allkeys-lru']);
    const { queue, lines } = await openWithLogs({ url: lru.url });
    const warning = lines.map((l) => JSON.parse(l)).find((l) => l.level === 40 && /maxmemory-policy/.test(l.msg));
    expect(warning?.msg).toMatch(/"allkeys-lru", not "noeviction"/);
    const health = await queue.check(AbortSignal.timeout(5_000));
    expect(health.status).toBe('degraded');
    expect(health.detail).toMatch(/noeviction/);

    const plain = await server();
    const quiet = await openWithLogs({ url: plain.url });
    expect(quiet.lines.join('')).not.toMatch(/maxmemory-policy/);
    expect(await status(quiet.queue)).toBe('connected');
  });

  it('starts when CONFIG is disabled, saying it could not read the policy', async () => {
    const s = await server(['--rename-command', 'CONFIG', '']);
    const { queue, lines } = await openWithLogs({ url: s.url });
    expect(lines.join('')).toMatch(/could not read maxmemory-policy/);
    expect((await queue.publish('noconfig', {})).duplicate).toBe(false);
    expect(await status(queue)).toBe('connected');
  });
});
