import { createHmac } from 'node:crypto';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { cleanEnv, cli, type Served, serve, tempDir, BIN } from './helpers.js';

/**
 * The gateway as a new user meets it in the README: plans, a user, a key and a route made with
 * the CLI, `apigate serve`, then calls through it with curl-like requests.
 */
const dataDir = tempDir('gateway-e2e');
const env = cleanEnv({ APIGATE_DATA_DIR: dataDir });
const month = new Date().toISOString().slice(0, 7);

let upstream: http.Server;
let upstreamUrl: string;
const seen: { url: string; headers: IncomingHttpHeaders }[] = [];
const running: Served[] = [];

async function ok(args: string[]): Promise<string> {
  const r = await cli(args, env);
  expect(r.code, `apigate ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

async function newKey(user: string): Promise<string> {
  return JSON.parse(await ok(['keys', 'create', '--user', user, '--json'])).key;
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

function get(url: string, headers: Record<string, string> = {}, agent: http.Agent | false = false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

const errorOf = (a: Answer) => JSON.parse(a.body).error as { code: string; message: string };

beforeAll(async () => {
  upstream = http.createServer((req, res) => {
    seen.push({ url: req.url!, headers: req.headers });
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ forecast: 'sunny', path: req.url }));
  });
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;

  await ok(['plans', 'create', 'tight', '--rpm', '3']);
  await ok(['plans', 'create', 'small', '--monthly', '5']);
  await ok(['plans', 'create', 'roomy']);
  await ok(['users', 'create', 'ada@example.com', '--name', 'Ada', '--plan', 'tight']);
  await ok(['users', 'create', 'bob@example.com', '--name', 'Bob', '--plan', 'small']);
  await ok(['users', 'create', 'cy@example.com', '--name', 'Cy', '--plan', 'roomy']);
  expect(await ok(['routes', 'add', '/weather', upstreamUrl, '--strip-prefix'])).toContain('/weather -> ');
});

afterAll(async () => {
  for (const s of running.splice(0)) if (s.child.exitCode === null) await s.stop();
  upstream?.closeAllConnections();
  await new Promise((r) => upstream?.close(r));
});

async function start(): Promise<Served> {
  const s = await serve(BIN, env);
  running.push(s);
  return s;
}

describe('gating traffic end to end (CLI + apigate serve)', () => {
  it('authenticates, forwards with the identity headers, limits per minute and per month, meters, and emails at the quota thresholds', async () => {
    const ada = await newKey('ada@example.com');
    const bob = await newKey('bob@example.com');
    const gw = await start();

    const none = await get(`${gw.url}/weather/today`);
    expect(none.status).toBe(401);
    expect(errorOf(none).code).toBe('API_KEY_MISSING');
    expect((await get(`${gw.url}/weather/today`, { 'x-api-key': 'ak_wrong' })).status).toBe(401);
    expect(seen).toHaveLength(0);

    const first = await get(`${gw.url}/weather/today?units=metric`, {
      'x-api-key': ada,
      'x-user-id': 'usr_forged',
      'x-plan-id': 'plan_forged',
    });
    expect(first.status).toBe(200);
    expect(JSON.parse(first.body)).toEqual({ forecast: 'sunny', path: '/today?units=metric' });
    expect(first.headers['x-ratelimit-limit']).toBe('3');
    const up = seen.at(-1)!;
    expect(up.headers['x-user-id']).toMatch(/^usr_/);
    expect(up.headers['x-user-id']).not.toBe('usr_forged');
    expect(up.headers['x-plan-id']).toMatch(/^plan_/);
    expect(up.headers['x-plan-id']).not.toBe('plan_forged');
    expect(up.headers['x-key-id']).toMatch(/^key_/);
    expect(up.headers['x-api-key']).toBeUndefined();
    expect(up.headers['x-forwarded-for']).toBe('127.0.0.1');

    // Per minute: 3 in a window, then 429. A window may end mid-loop, so go until the first refusal.
    let limited: Answer | undefined;
    for (let i = 0; i < 8 && !limited; i++) {
      const a = await get(`${gw.url}/weather/today`, { authorization: `Bearer ${ada}` });
      if (a.status === 429) limited = a;
      else expect(a.status).toBe(200);
    }
    expect(limited, 'no 429 within 8 requests at 3 per minute').toBeDefined();
    expect(errorOf(limited!).code).toBe('RATE_LIMITED');
    expect(Number(limited!.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(limited!.headers['x-ratelimit-remaining']).toBe('0');
    expect(limited!.headers['x-ratelimit-reset']).toMatch(/^\d+$/);

    // Per month: 5 requests, then 429 saying the quota is used up and when it resets.
    const bobs: number[] = [];
    for (let i = 0; i < 5; i++) bobs.push((await get(`${gw.url}/weather/today`, { 'x-api-key': bob })).status);
    expect(bobs).toEqual([200, 200, 200, 200, 200]);
    const over = await get(`${gw.url}/weather/today`, { 'x-api-key': bob });
    expect(over.status).toBe(429);
    expect(errorOf(over)).toMatchObject({ code: 'QUOTA_EXCEEDED' });
    expect(errorOf(over).message).toMatch(/monthly quota of 5 requests is used up; it resets at \d{4}-\d\d-01T00:00:00\.000Z/);

    expect(await gw.stop()).toBe(0);
    const logs = gw.logs();
    const mails = logs
      .split('\n')
      .filter((l) => l.includes('email logged, not sent'))
      .map((l) => JSON.parse(l) as { to: string[]; subject: string });
    expect(mails).toEqual([
      expect.objectContaining({ to: ['bob@example.com'], subject: `You have used 80% of your API quota for ${month}` }),
      expect.objectContaining({ to: ['bob@example.com'], subject: `Your API quota for ${month} is used up` }),
    ]);

    const show = await ok(['usage', 'show', '--user', 'bob@example.com']);
    expect(show).toContain(`5 of 5 requests (100%)`);
    const bobUsage = JSON.parse(await ok(['usage', 'show', '--user', 'bob@example.com', '--json']));
    expect(bobUsage.totals.requests).toBe(5);
    const adaUsage = JSON.parse(await ok(['usage', 'show', '--user', 'ada@example.com', '--json']));
    expect(adaUsage.totals.requests).toBe(seen.length - 5); // every forwarded request of Ada's, none of the refused
  });

  it('loses no usage when the gateway is restarted (SIGTERM) while requests flow', async () => {
    const cy = await newKey('cy@example.com');
    const before = JSON.parse(await ok(['usage', 'show', '--user', 'cy@example.com', '--json'])).totals.requests as number;
    let gw = await start();
    let target = gw.url;
    let ok2xx = 0;
    let failed = 0;
    let stop = false;
    let waiter: { n: number; resolve: () => void } | undefined;
    const successes = (n: number) => new Promise<void>((resolve) => (waiter = { n, resolve }));
    const counted = () => {
      ok2xx++;
      if (waiter && ok2xx >= waiter.n) waiter.resolve();
    };
    // Four clients on keep-alive connections, as real API clients are; refused or cut requests are retried by the loop.
    const client = async () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      while (!stop) {
        try {
          const a = await get(`${target}/weather/now`, { 'x-api-key': cy }, agent);
          if (a.status >= 200 && a.status < 300) counted();
          else failed++;
        } catch {
          failed++; // connection refused or reset while the gateway restarts
          await new Promise((r) => setTimeout(r, 5));
        }
      }
      agent.destroy();
    };
    const clients = Array.from({ length: 4 }, client);

    await successes(150);
    expect(await gw.stop()).toBe(0); // SIGTERM while the clients keep sending
    gw = await start();
    target = gw.url;
    await successes(ok2xx + 150);
    expect(await gw.stop()).toBe(0);
    stop = true;
    await Promise.all(clients);

    const after = JSON.parse(await ok(['usage', 'show', '--user', 'cy@example.com', '--json'])).totals.requests as number;
    expect(after - before, `${failed} requests failed during the restarts`).toBe(ok2xx);
  });

  it('manages signed webhooks and exports the month as CSV with the CLI', async () => {
    const got: { headers: IncomingHttpHeaders; body: string }[] = [];
    const receiver = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        got.push({ headers: req.headers, body });
        res.writeHead(204).end();
      });
    });
    receiver.listen(0, '127.0.0.1');
    await once(receiver, 'listening');
    try {
      const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
      const added = JSON.parse(await ok(['webhooks', 'add', url, '--events', 'test,key.*', '--json']));
      expect(added.secret).toMatch(/^whsec_/);
      expect(await ok(['webhooks', 'list'])).toContain(url);
      expect(await ok(['webhooks', 'test', added.id])).toContain('HTTP 204');
      const body = JSON.parse(got[0]!.body);
      expect(body).toMatchObject({ type: 'test', data: { endpoint_id: added.id } });
      const ts = got[0]!.headers['x-apigate-timestamp'] as string;
      const expected = `v1=${createHmac('sha256', added.secret).update(`${ts}.${got[0]!.body}`).digest('hex')}`;
      expect(got[0]!.headers['x-apigate-signature']).toBe(expected);

      // A key made with the CLI while the gateway runs: key.created, delivered by the server's worker.
      const gw = await start();
      const key = JSON.parse(await ok(['keys', 'create', '--user', 'cy@example.com', '--json']));
      await vi.waitFor(() => expect(got.map((g) => JSON.parse(g.body).type)).toContain('key.created'), { timeout: 15_000 });
      expect(JSON.parse(got.at(-1)!.body).data).toMatchObject({ key_id: key.id });
      expect(await gw.stop()).toBe(0);
      const log = JSON.parse(await ok(['webhooks', 'deliveries', '--json'])).data as { event_type: string; status: string }[];
      expect(log.map((d) => [d.event_type, d.status])).toEqual([
        ['test', 'succeeded'],
        ['key.created', 'succeeded'],
      ]);
      expect(await ok(['webhooks', 'remove', added.id])).toContain(added.id);
    } finally {
      receiver.closeAllConnections();
      await new Promise((r) => receiver.close(r));
    }

    const exported = await cli(['usage', 'export', '--month', month], { ...env, STORAGE_PROVIDER: 'disk' });
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stdout).toMatch(
      new RegExp(`exported \\d+ rows \\(\\d+ bytes\\) of ${month} usage to exports/usage-${month}\\.csv on storage/disk`),
    );
    const file = findFile(dataDir, `usage-${month}.csv`);
    expect(file, 'the CSV on disk').toBeDefined();
    const lines = readFileSync(file!, 'utf8').trimEnd().split('\r\n');
    expect(lines[0]).toBe('month,user_id,email,plan,key_id,key_prefix,key_name,requests,errors,bytes_in,bytes_out');
    const bobRow = lines.find((l) => l.split(',')[2] === 'bob@example.com')!.split(',');
    expect(bobRow.slice(0, 4)).toEqual([month, expect.stringMatching(/^usr_/), 'bob@example.com', 'small']);
    expect(bobRow[7]).toBe('5'); // requests
  });
});

/** The first file named `name` below `dir`. */
function findFile(dir: string, name: string): string | undefined {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isFile() && e.name === name) return p;
    if (e.isDirectory()) {
      const hit = findFile(p, name);
      if (hit) return hit;
    }
  }
  return undefined;
}
