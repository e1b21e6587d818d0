import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';

const REDIS_SERVER = process.env.REDIS_SERVER_BIN ?? '/usr/bin/redis-server';

/** A port nobody listens on right now (the OS picks it; we release it for redis-server). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as { port: number };
  srv.close();
  await once(srv, 'close');
  return port;
}

/**
 * A private, throw-away redis-server (no persistence) a test owns: it can be stopped, frozen
 * and restarted on the same port without touching the shared Redis on 6379. `extraArgs` are
 * redis-server options (e.g. `['--requirepass', pw]`, `['--maxmemory-policy', 'allkeys-lru']`).
 * The binary is REDIS_SERVER_BIN or /usr/bin/redis-server.
 */
export class PrivateRedis {
  private proc: ChildProcess | undefined;

  private constructor(
    readonly port: number,
    private readonly extraArgs: string[],
  ) {}

  static async start(extraArgs: string[] = []): Promise<PrivateRedis> {
    const r = new PrivateRedis(await freePort(), extraArgs);
    await r.start();
    return r;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts the server and resolves once it logs that it accepts connections. */
  async start(): Promise<void> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...this.extraArgs];
    const proc = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('Ready to accept connections')) {
          proc.stdout!.off('data', onData);
          proc.off('exit', onExit);
          // Keep draining so a chatty server never blocks on a full pipe.
          proc.stdout!.resume();
          resolve();
        }
      };
      const onExit = (code: number | null) =>
        reject(new Error(`redis-server on port ${this.port} exited (${code}) before it was ready:\n${output}`));
      proc.stdout!.on('data', onData);
      proc.stderr!.on('data', (c: Buffer) => {
        output += c.toString();
      });
      proc.once('exit', onExit);
      proc.once('error', reject);
    });
  }

  /** Kills the server outright (as a crash would) and waits until the process is gone. */
  async kill(): Promise<void> {
    const proc = this.proc;
    this.proc = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = once(proc, 'exit');
    proc.kill('SIGKILL');
    await exited;
  }

  /** Freezes the process: connections stay open but nothing is answered (a hung server). */
  freeze(): void {
    this.proc?.kill('SIGSTOP');
  }

  thaw(): void {
    this.proc?.kill('SIGCONT');
  }
}
