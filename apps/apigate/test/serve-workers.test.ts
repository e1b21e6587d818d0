// `apigate serve --workers 2` for real (issue 13): two worker processes share one listener and
// one Redis, so the per-key rate limit is global (plan --rpm 10: 16 calls -> 10 x 200 + 6 x 429
// whichever worker answers), SIGTERM stops both gracefully with exit 0, and the metered usage
// of both reaches the store.
import { spawn } from 'node:child_process';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, cleanEnv, cli, tempDir } from './helpers.js';

let upstream: http.Server;
let upstreamUrl: string;
beforeAll(async () => {
  upstream = http.createServer((req, res) => res.end(JSON.stringify({ path: req.url })));
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
});
afterAll(async () => {
  upstream?.closeAllConnections();
  await new Promise((r) => upstream?.close(r));
});

async function ok(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const r = await cli(args, env);
  expect(r.code, `apigate ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

describe('serve --workers 2 on Redis', () => {
  it('shares the listener, limits globally, stops both workers on SIGTERM and keeps the usage', async () => {
    const env = cleanEnv({ APIGATE_DATA_DIR: tempDir('workers'), CACHE_PROVIDER: 'redis', QUEUE_PROVIDER: 'redis', REDIS_URL: 'redis://127.0.0.1:6379' });
    await ok(['plans', 'create', 'ten', '--rpm', '10', '--default'], env);
    await ok(['users', 'create', 'w@example.com'], env);
    await ok(['routes', 'add', '/up', upstreamUrl, '--strip-prefix'], env);
    const key = JSON.parse(await ok(['keys', 'create', '--user', 'w@example.com', '--json'], env)).key as string;

    const child = spawn(process.execPath, [BIN, 'serve', '--workers', '2', '--port', '0', '--host', '127.0.0.1'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number>((r) => child.on('close', (code) => r(code ?? -1)));
    try {
      const until = Date.now() + 60_000;
      while (!out.includes('primary: 2 workers serving')) {
        if (Date.now() > until || child.exitCode !== null) throw new Error(`no workers serving:\n${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const url = /apigate listening on (http:\/\/[^"\s]+)/.exec(out)![1]!;
      const listening = out.split('\n').filter((l) => l.includes('apigate listening on'));
      const pids = new Set(listening.map((l) => (JSON.parse(l) as { pid: number }).pid));
      expect(pids.size).toBe(2);
      expect(pids.has(child.pid!)).toBe(false);

      const statuses: number[] = [];
      for (let i = 0; i < 16; i++) {
        // A new connection each time: the primary hands connections to the workers in turn.
        const r = await fetch(`${url}/up/x`, { headers: { 'x-api-key': key, connection: 'close' } });
        await r.arrayBuffer();
        statuses.push(r.status);
      }
      expect(statuses.filter((s) => s === 200)).toHaveLength(10);
      expect(statuses.filter((s) => s === 429)).toHaveLength(6);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(out).toContain('primary: every worker stopped');
    expect(out.split('\n').filter((l) => l.includes('"msg":"stopped"'))).toHaveLength(2);
    const usage = JSON.parse(await ok(['usage', 'show', '--user', 'w@example.com', '--json'], env));
    expect(usage.totals.requests).toBe(10);
  });
});
