// Issue 9 items 2 and 3 through the built binary: a password inside a Redis URL setting, and a
// provider error whose cause chain (nested cause, AggregateError member) quotes a secret webhook URL.
// Redis is a private redis-server with a password (never the shared one on 6379).
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { PrivateRedis } from '@apigate/provider-testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP_DIR, cleanEnv, cli, type Served, serve, tempDir } from './helpers.js';

const PASSWORD = `pw-${randomBytes(12).toString('hex')}`;
const TOKEN = `tok${randomBytes(12).toString('hex')}`;
const KERNEL = pathToFileURL(path.resolve(APP_DIR, '../../packages/kernel/dist/index.js')).href;

/** Every byte under the data dir (database, WAL, key file...), as latin1 text to search. */
function dataDirBytes(dir: string): string {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => readFileSync(path.join(e.parentPath, e.name)).toString('latin1'))
    .join('\n');
}

/**
 * A third-party notification provider whose failures carry its secret webhook URL in the cause,
 * a nested cause and an AggregateError member (as a fetch error with several addresses would).
 */
function writeLeakyPlugin(): string {
  const root = tempDir('leaky-plugins');
  const dir = path.join(root, 'node_modules', 'apigate-provider-leaky-notification');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    path.join(dir, 'package.json'),
    JSON.stringify({
      name: 'apigate-provider-leaky-notification',
      version: '1.0.0',
      type: 'module',
      keywords: ['apigate-provider'],
      exports: { '.': './index.js', './package.json': './package.json' },
      peerDependencies: { '@apigate/kernel': '^1.0.0' },
      apigate: { role: 'provider', kernelApi: 1, providers: [{ capability: 'notification', name: 'leaky' }] },
    }),
  );
  writeFileSync(
    path.join(dir, 'index.js'),
    `import { defineProvider, z } from ${JSON.stringify(KERNEL)};
const chain = (url) => {
  const member = new Error('connect ECONNREFUSED while posting to ' + url);
  const all = new AggregateError([member, new Error('connect ETIMEDOUT')], '');
  const nested = new Error('socket hang up at ' + url, { cause: all });
  return new Error('could not deliver the notification', { cause: new Error('POST ' + url + ' failed', { cause: nested }) });
};
export default defineProvider({
  capability: 'notification', name: 'leaky', description: 'fails with its webhook URL in the cause chain',
  config: z.object({ webhookUrl: z.string().min(1) }),
  env: { webhookUrl: 'LEAKY_WEBHOOK_URL' },
  secrets: ['webhookUrl'],
  create: (cfg) => ({
    async notify() { throw Object.assign(chain(cfg.webhookUrl), { statusCode: 400 }); },
    async check() { throw new Error('health probe failed for ' + cfg.webhookUrl, { cause: chain(cfg.webhookUrl) }); },
    async close() {},
  }),
});
`,
  );
  return root;
}

describe('secrets inside URLs and inside error causes stay masked', () => {
  let redis: PrivateRedis;
  let plugins: string;
  const served: Served[] = [];
  const webhookUrl = `https://hooks.example.com/services/T0/B0/${TOKEN}`;

  beforeAll(async () => {
    redis = await PrivateRedis.start(['--requirepass', PASSWORD]);
    plugins = writeLeakyPlugin();
  });
  afterAll(async () => {
    await Promise.all(served.splice(0).map((s) => s.stop()));
    await redis?.kill();
  });

  it('settings set/get/list (text and --json) mask the password of a Redis URL, store it encrypted, and serve uses it', async () => {
    const dataDir = tempDir('url-secrets');
    const env = cleanEnv({ APIGATE_DATA_DIR: dataDir });
    const url = `redis://default:${PASSWORD}@127.0.0.1:${redis.port}`;
    const masked = `redis://default:****@127.0.0.1:${redis.port}`;

    const outputs: string[] = [];
    const run = async (...args: string[]) => {
      const r = await cli(args, env);
      expect(r.code, r.stderr).toBe(0);
      outputs.push(r.stdout, r.stderr);
      return r.stdout;
    };
    expect(await run('settings', 'set', 'cache.redis.url', url)).toContain(`${masked} (the URL carries credentials: encrypted)`);
    await run('settings', 'set', 'queue.redis.url', url, '--json');
    await run('settings', 'set', 'cache.provider', 'redis');
    await run('settings', 'set', 'queue.provider', 'redis');
    await run('settings', 'set', 'queue.redis.prefix', `secrets-${randomBytes(4).toString('hex')}`);
    await run('settings', 'set', 'notification.slack.webhook_url', webhookUrl);
    expect((await run('settings', 'get', 'cache.redis.url')).trim()).toBe(masked);
    expect(JSON.parse(await run('settings', 'get', 'queue.redis.url', '--json'))).toMatchObject({
      value: masked,
      secret: false,
      encrypted: true,
    });
    const list = JSON.parse(await run('settings', 'list', '--json')) as { key: string; value: string; encrypted: boolean }[];
    expect(list.find((r) => r.key === 'cache.redis.url')).toMatchObject({ value: masked, encrypted: true });
    expect(list.find((r) => r.key === 'notification.slack.webhook_url')?.value).not.toContain('hooks.slack');
    expect(await run('settings', 'list')).toContain(masked);
    for (const out of outputs) {
      expect(out).not.toContain(PASSWORD);
      expect(out).not.toContain(TOKEN);
    }
    // At rest: neither the password nor the webhook token is in any file of the data dir.
    const bytes = dataDirBytes(dataDir);
    expect(bytes).not.toContain(PASSWORD);
    expect(bytes).not.toContain(TOKEN);
    // --reveal is the one way to read it back.
    expect((await cli(['settings', 'get', 'cache.redis.url', '--reveal'], env)).stdout.trim()).toBe(url);

    // The server connects with it (health says connected), and neither logs nor health show it.
    const s = await serve(path.join(APP_DIR, 'dist', 'bin.js'), env);
    served.push(s);
    const res = await fetch(`${s.url}/admin/health`);
    const health = await res.text();
    expect(JSON.parse(health).providers.cache).toMatchObject({ provider: 'redis', status: 'connected' });
    expect(JSON.parse(health).providers.queue).toMatchObject({ provider: 'redis', status: 'connected' });
    expect(`${health}\n${s.logs()}`).not.toContain(PASSWORD);
    await s.stop();
    served.pop();
    expect(s.logs()).not.toContain(PASSWORD);
  }, 240_000);

  it('a provider error whose causes quote the secret webhook URL is masked in notify test output, health and the server log', async () => {
    const dataDir = tempDir('cause-secrets');
    const prefix = `causes-${randomBytes(4).toString('hex')}`;
    const env = cleanEnv({
      APIGATE_DATA_DIR: dataDir,
      APIGATE_PLUGIN_PATH: plugins,
      NOTIFICATION_PROVIDER: 'leaky',
      LEAKY_WEBHOOK_URL: webhookUrl,
      QUEUE_PROVIDER: 'redis',
      REDIS_URL: `redis://:${PASSWORD}@127.0.0.1:${redis.port}`,
    });
    await cli(['settings', 'set', 'queue.redis.prefix', prefix], env);

    // In the CLI: the delivery worker here describes the failure (cause chain included).
    const text = await cli(['notify', 'test', '--wait', '--timeout', '30'], env);
    expect(text.code).toBe(1);
    expect(text.stderr).toContain('could not deliver the notification');
    expect(text.stderr).toContain('ETIMEDOUT'); // the AggregateError's other member: the chain is there, masked
    const json = await cli(['notify', 'test', '--wait', '--timeout', '30', '--json'], env);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ status: 'failed' });
    const health = await cli(['providers', 'test', '--notification', '--json'], env);
    expect(JSON.parse(health.stdout).providers.notification).toMatchObject({ status: 'error' });
    for (const out of [text.stdout, text.stderr, json.stdout, json.stderr, health.stdout, health.stderr]) {
      expect(out).not.toContain(TOKEN);
      expect(out).not.toContain(PASSWORD);
    }

    // In the server: a queued notification fails on its worker, which logs the chain.
    const s = await serve(path.join(APP_DIR, 'dist', 'bin.js'), env);
    served.push(s);
    expect((await cli(['notify', 'test'], env)).code).toBe(0);
    const deadline = Date.now() + 30_000;
    while (!/notification\.send job .* failed/.test(s.logs()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const answer = await (await fetch(`${s.url}/admin/health`)).text();
    await s.stop();
    served.pop();
    expect(s.logs()).toMatch(/notification\.send job .* failed .*could not deliver the notification/);
    expect(JSON.parse(answer).providers.notification.status).toBe('error');
    expect(`${answer}\n${s.logs()}`).not.toContain(TOKEN);
    expect(`${answer}\n${s.logs()}`).not.toContain(PASSWORD);
  }, 240_000);
});
