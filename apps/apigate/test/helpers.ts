import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectPostgres } from '@apigate/gateway';
import { expect } from 'vitest';

export const APP_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_DIR = path.resolve(APP_DIR, '../..');
export const BIN = path.join(APP_DIR, 'dist', 'bin.js');

export const tempDir = (prefix: string) => mkdtempSync(path.join(tmpdir(), `apigate-${prefix}-`));

/** The environment a command sees: no provider selection leaking in from the caller's shell. */
export function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/_PROVIDER$|^APIGATE_|^REDIS_|^SMTP_|^S3_|^OAUTH_|^TLS_|^STORAGE_PATH$/.test(k)) env[k] = v;
  }
  return { ...env, LOG_LEVEL: 'info', ...extra };
}

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], opts: { env: NodeJS.ProcessEnv; cwd?: string }): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env, cwd: opts.cwd ?? APP_DIR, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

export const cli = (args: string[], env: NodeJS.ProcessEnv, bin = BIN) => run(process.execPath, [bin, ...args], { env });

/** Runs `apigate <args>`, expects exit status 0 (failing with its stderr) and returns its stdout. */
export async function ok(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const r = await cli(args, env);
  expect(r.code, `apigate ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

/** Polls `test` every 100 ms until it holds; throws naming `what` after `ms`. */
export async function waitFor(what: string, test: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await test())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface Upstream {
  url: string;
  close(): Promise<void>;
}

/** An upstream on a free loopback port answering `{"path": <request path>}`. */
export async function startUpstream(): Promise<Upstream> {
  const server = http.createServer((req, res) => res.end(JSON.stringify({ path: req.url })));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

/** The PostgreSQL the tests use (CI and this machine: 127.0.0.1:5432, user postgres, no password). */
export const PG_ADMIN_URL = process.env.APIGATE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

async function pgAdmin(sql: string): Promise<void> {
  const c = await connectPostgres(PG_ADMIN_URL, { max: 1 });
  try {
    await c.pool.query(sql);
  } finally {
    await c.close();
  }
}

/** A database of its own for one test file: created now, dropped (with its connections) by `drop()`. */
export async function tempPostgres(prefix = 'apigate_app'): Promise<{ url: string; name: string; drop(): Promise<void> }> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  await pgAdmin(`CREATE DATABASE ${name}`);
  return {
    url: Object.assign(new URL(PG_ADMIN_URL), { pathname: `/${name}` }).toString(),
    name,
    drop: () => pgAdmin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
  };
}

export interface Served {
  url: string;
  logs: () => string;
  child: ChildProcess;
  stop(): Promise<number>;
}

/** Starts `serve --port <port>` and resolves with the URL it logs once listening (or rejects with its output). */
export function serve(bin: string, env: NodeJS.ProcessEnv, cwd = APP_DIR, port = 0): Promise<Served> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, 'serve', '--port', String(port), '--host', '127.0.0.1'], {
      env,
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const exited = new Promise<number>((r) => child.on('close', (code) => r(code ?? -1)));
    const onData = (d: Buffer) => {
      out += d;
      const m = /apigate listening on (http:\/\/[^"\s]+)/.exec(out);
      if (m) {
        child.stdout.off('data', onData);
        child.stdout.on('data', (x) => (out += x));
        resolve({
          url: m[1]!,
          child,
          logs: () => out,
          stop: async () => {
            child.kill('SIGTERM');
            return exited;
          },
        });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (d) => (out += d));
    void exited.then((code) => reject(new Error(`serve exited with ${code} before listening:\n${out}`)));
  });
}

export interface ServedWorkers extends Served {
  /** The pids of the workers that logged "apigate listening". */
  workerPids: number[];
  /** Resolves with the primary's exit status. */
  exited: Promise<number>;
}

/** Starts `serve --workers <count> --port <port>` and resolves once the primary logs that every worker serves. */
export async function serveWorkers(env: NodeJS.ProcessEnv, count: number, bin = BIN, port = 0): Promise<ServedWorkers> {
  const args = [bin, 'serve', '--workers', String(count), '--port', String(port), '--host', '127.0.0.1'];
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number>((r) => child.on('close', (code) => r(code ?? -1)));
  try {
    await waitFor(
      `${count} workers serving`,
      () => {
        if (child.exitCode !== null) throw new Error(`serve --workers exited with ${child.exitCode}:\n${out}`);
        return out.includes(`primary: ${count} workers serving`);
      },
      60_000,
    );
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\n${out}`);
  }
  const listening = out.split('\n').filter((l) => l.includes('apigate listening on'));
  return {
    url: /apigate listening on (http:\/\/[^"\s]+)/.exec(out)![1]!,
    child,
    logs: () => out,
    workerPids: [...new Set(listening.map((l) => (JSON.parse(l) as { pid: number }).pid))],
    exited,
    stop: async () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

export const DEV_PROVIDERS = ['payment/dummy', 'email/log', 'cache/memory', 'storage/memory', 'queue/memory', 'notification/log'];
