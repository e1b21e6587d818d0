import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

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

export interface Served {
  url: string;
  logs: () => string;
  child: ChildProcess;
  stop(): Promise<number>;
}

/** Starts `serve --port 0` and resolves with the URL it logs once listening (or rejects with its output). */
export function serve(bin: string, env: NodeJS.ProcessEnv, cwd = APP_DIR): Promise<Served> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, 'serve', '--port', '0', '--host', '127.0.0.1'], { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
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

export const DEV_PROVIDERS = [
  'payment/dummy',
  'email/log',
  'cache/memory',
  'storage/memory',
  'queue/memory',
  'notification/log',
];
