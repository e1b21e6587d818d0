// `apigate serve --workers N` supervision (src/cluster.ts) through a child process: the real
// serveWithWorkers in the primary (store opened, providers checked) and a small HTTP worker.
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { APP_DIR, cleanEnv, tempDir } from './helpers.js';

const FIXTURE = path.join(APP_DIR, 'test', 'fixtures', 'workers.mjs');
const SHARED = { CACHE_PROVIDER: 'redis', QUEUE_PROVIDER: 'redis', REDIS_URL: 'redis://127.0.0.1:6379' };
const started: ChildProcess[] = [];

afterEach(() => {
  for (const c of started.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

interface Primary {
  child: ChildProcess;
  out: () => string;
  exited: Promise<number>;
}

function primary(args: string[], extra: Record<string, string> = {}): Primary {
  const env = cleanEnv({ APIGATE_DATA_DIR: tempDir('workers'), APIGATE_SHUTDOWN_TIMEOUT_MS: '3000', ...SHARED, ...extra });
  const child = spawn(process.execPath, [FIXTURE, ...args], { env, cwd: APP_DIR, stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number>((r) => child.on('close', (code) => r(code ?? -1)));
  return { child, out: () => out, exited };
}

async function waitFor(p: Primary, re: RegExp, ms = 30_000): Promise<RegExpExecArray> {
  const until = Date.now() + ms;
  for (;;) {
    const m = re.exec(p.out());
    if (m) return m;
    if (Date.now() > until || p.child.exitCode !== null) throw new Error(`no ${re} in:\n${p.out()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const pidAt = async (url: string): Promise<number> =>
  ((await (await fetch(url, { headers: { connection: 'close' }, signal: AbortSignal.timeout(5000) })).json()) as { pid: number }).pid;

/** Pids answering `url` over fresh connections until `n` distinct ones did. */
async function distinctPids(url: string, n: number): Promise<Set<number>> {
  const pids = new Set<number>();
  for (let i = 0; i < 200 && pids.size < n; i++) pids.add(await pidAt(url));
  return pids;
}

describe('serve --workers', () => {
  it('two workers share one port; SIGTERM reaches both, the primary waits for them and exits 0', async () => {
    const p = primary(['--workers', '2']);
    await waitFor(p, /primary: 2 workers serving/);
    const url = (await waitFor(p, /listening on (http:\S+)/))[1]!;
    const pids = await distinctPids(url, 2);
    expect(pids.size).toBe(2);
    expect(pids.has(p.child.pid!)).toBe(false);
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    for (const pid of pids) expect(p.out()).toContain(`pid ${pid} got SIGTERM`);
    expect(p.out()).toContain('every worker stopped');
  });

  it('a worker that stops with a non-zero status makes the primary exit 1', async () => {
    const p = primary(['--workers', '2'], { FIXTURE_EXIT_ON_TERM: '2' });
    await waitFor(p, /primary: 2 workers serving/);
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(1);
    expect(p.out()).toMatch(/worker \d \(pid \d+\) stopped with status 2/);
  });

  it('a worker that cannot start stops the others and the primary exits 1', async () => {
    const p = primary(['--workers', '3'], { FIXTURE_FAIL_WORKER: '2' });
    expect(await p.exited).toBe(1);
    expect(p.out()).toContain('worker 2 exited with status 3 before it listened');
    expect(p.out()).not.toContain('workers serving');
  });

  it('a worker that crashes after serving is replaced', async () => {
    const p = primary(['--workers', '2']);
    await waitFor(p, /primary: 2 workers serving/);
    const url = (await waitFor(p, /listening on (http:\S+)/))[1]!;
    const before = await distinctPids(url, 2);
    const victim = [...before][0]!;
    process.kill(victim, 'SIGKILL');
    await waitFor(p, new RegExp(`pid ${victim}\\) exited with signal SIGKILL; starting another`));
    // The replacement logs its own listening line: three in all.
    await waitFor(p, /(?:listening on[\s\S]*){3}/);
    const after = await distinctPids(url, 2);
    expect(after.size).toBe(2);
    expect(after.has(victim)).toBe(false);
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
  });

  it('refuses the memory cache and queue with one line naming the flag; --allow-memory-per-worker warns and serves', async () => {
    const refused = primary(['--workers', '2'], { CACHE_PROVIDER: 'memory', QUEUE_PROVIDER: 'memory' });
    expect(await refused.exited).toBe(1);
    expect(refused.out()).toMatch(
      /apigate: --workers 2 with the memory cache and queue provider: .*per worker instead of global.*--allow-memory-per-worker/,
    );
    expect(refused.out()).not.toContain('listening');

    const allowed = primary(['--workers', '2', '--allow-memory-per-worker'], { CACHE_PROVIDER: 'memory', QUEUE_PROVIDER: 'memory' });
    await waitFor(allowed, /primary: 2 workers serving/);
    expect(allowed.out()).toMatch(/WARNING: --workers 2 with the memory cache and queue and storage provider/);
    allowed.child.kill('SIGTERM');
    expect(await allowed.exited).toBe(0);
  });

  it('--workers takes a whole number or auto, with a one-line error otherwise', async () => {
    const bad = primary(['--workers', 'two']);
    expect(await bad.exited).toBe(1);
    expect(bad.out()).toContain('apigate: --workers: expected a whole number from 1 to 256 or "auto", got "two"');
    const one = primary(['--workers', '1']);
    await waitFor(one, /fixture worker 0 pid \d+ listening/);
    expect(one.out()).not.toContain('primary:');
    one.child.kill('SIGTERM');
    expect(await one.exited).toBe(0);
  });
});
