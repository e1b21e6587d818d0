import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { deletePrefix, rawClient, SHARED_REDIS_URL, testPrefix } from './support/shared.js';

const WORKER = fileURLToPath(new URL('./fixtures/increment-worker.ts', import.meta.url));
const PACKAGE_DIR = fileURLToPath(new URL('..', import.meta.url));
const PROCESSES = 3;
const PER_PROCESS = 400;
const TTL_MS = 120_000;

type Reply = { values?: number[]; error?: string };

function startWorker(env: Record<string, string>): { child: ChildProcess; ready: Promise<void>; reply: Promise<Reply> } {
  // tsx runs the TypeScript worker against this package's source, like vitest does here.
  const child = fork(WORKER, [], { cwd: PACKAGE_DIR, execArgv: ['--import', 'tsx'], env: { ...process.env, ...env }, stdio: 'inherit' });
  const exited = new Promise<never>((_, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`increment worker exited (${code}) before it answered`)));
  });
  exited.catch(() => {});
  const next = () => Promise.race([once(child, 'message').then(([m]) => m), exited]);
  const ready = next().then((m) => {
    if (m !== 'ready') throw new Error(`increment worker said ${JSON.stringify(m)} instead of ready`);
  });
  const reply = ready.then(() => next() as Promise<Reply>);
  return { child, ready, reply };
}

describe('increment across processes', () => {
  const prefix = testPrefix('procs');
  const raw: Redis = rawClient();

  afterAll(async () => {
    await deletePrefix(raw, prefix);
    raw.disconnect();
  });

  it(`${PROCESSES} processes incrementing one key ${PER_PROCESS} times each, all at once, count exactly`, { timeout: 60_000 }, async () => {
    const env = { REDIS_URL: SHARED_REDIS_URL, PREFIX: prefix, KEY: 'counter', COUNT: String(PER_PROCESS), TTL_MS: String(TTL_MS) };
    const workers = Array.from({ length: PROCESSES }, () => startWorker(env));
    try {
      await Promise.all(workers.map((w) => w.ready));
      for (const w of workers) w.child.send('go');
      const replies = await Promise.all(workers.map((w) => w.reply));
      for (const r of replies) expect(r.error).toBeUndefined();

      const total = PROCESSES * PER_PROCESS;
      expect(Number(await raw.get(`${prefix}counter`))).toBe(total);
      // Atomic: every call saw a distinct value, together exactly 1..total.
      const seen = replies.flatMap((r) => r.values!).sort((a, b) => a - b);
      expect(seen).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      // The TTL was set once, by the call that created the key.
      const pttl = await raw.pttl(`${prefix}counter`);
      expect(pttl).toBeGreaterThan(0);
      expect(pttl).toBeLessThanOrEqual(TTL_MS);
    } finally {
      for (const w of workers) if (w.child.exitCode === null) w.child.kill();
      await Promise.all(workers.filter((w) => w.child.exitCode === null && w.child.signalCode === null).map((w) => once(w.child, 'exit')));
    }
  });
});
