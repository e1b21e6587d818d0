import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { readShutdownTimeout } from '@apigate/gateway';
import { type Env, type Logger, selectProviders } from '@apigate/kernel';
import { CliError } from './commands/common.js';
import { assertNoPluginProblems, openRuntime } from './runtime.js';

/** `apigate serve` flags this module reads. */
export interface WorkerFlags {
  workers?: string;
  allowMemoryPerWorker?: boolean;
}

export const WORKERS_ENV = 'APIGATE_WORKERS';
const MAX_WORKERS = 256;
/** A worker that crashes after it served is restarted, unless this many crashed within a minute. */
const MAX_RESTARTS_PER_MINUTE = 5;
/** The primary waits this much past the workers' own shutdown deadline before it kills what is left. */
const KILL_MARGIN_MS = 3000;

/** `--workers` (else APIGATE_WORKERS, else 1): a whole number, or `auto` for the number of cores. */
export function parseWorkers(value: string | undefined, env: Env = process.env): number {
  const flag = value !== undefined;
  const raw = (value ?? env[WORKERS_ENV] ?? '1').trim();
  if (raw === 'auto') return availableParallelism();
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 1 || n > MAX_WORKERS) {
    throw new CliError(`${flag ? '--workers' : WORKERS_ENV}: expected a whole number from 1 to ${MAX_WORKERS} or "auto", got "${raw}"`);
  }
  return n;
}

/**
 * Providers that keep their state in the process: with several workers each would have its own.
 * Cache and queue are refused (limits, quotas and metering would be per worker); memory storage
 * (admin exports) only warned about.
 */
const PER_PROCESS = [
  { capability: 'cache', holds: 'rate limits and quotas', refuse: true },
  { capability: 'queue', holds: 'queued jobs (usage batches, emails, webhooks)', refuse: true },
  { capability: 'storage', holds: 'stored files (admin exports)', refuse: false },
] as const;

/**
 * Runs `apigate serve` as `count` worker processes sharing the listener (node:cluster), when this
 * is the primary and more than one worker is asked for: resolves true once every worker stopped
 * (process.exitCode set). Resolves false when this process should serve itself (one worker, or it
 * is a worker). The primary opens the store once first, so migrations run before any worker starts.
 */
export async function serveWithWorkers(flags: WorkerFlags, logger: Logger, env: Env = process.env): Promise<boolean> {
  if (cluster.isWorker) {
    stopGracefullyWhenOrphaned(logger);
    return false;
  }
  const count = parseWorkers(flags.workers, env);
  if (count === 1) return false;
  const rt = await openRuntime({ env, logger });
  let stopTimeoutMs: number;
  try {
    assertNoPluginProblems(rt.catalog);
    stopTimeoutMs = readShutdownTimeout(env, rt.store.settings);
    const local = PER_PROCESS.filter((p) => selectProviders(p.capability, env, rt.store.settings).names.includes('memory'));
    const describe = (list: typeof local) =>
      `--workers ${count} with the memory ${list.map((p) => p.capability).join(' and ')} provider: each worker would keep its own ${list.map((p) => p.holds).join('; ')}`;
    const refused = local.filter((p) => p.refuse);
    if (refused.length > 0 && !flags.allowMemoryPerWorker) {
      throw new CliError(
        `${describe(refused)}, so limits would be per worker instead of global. Select shared providers (CACHE_PROVIDER=redis, QUEUE_PROVIDER=redis) or pass --allow-memory-per-worker`,
      );
    }
    if (local.length > 0) logger.warn(`WARNING: ${describe(local)}${refused.length > 0 ? ', allowed by --allow-memory-per-worker' : ''}`);
  } finally {
    await rt.close();
  }
  process.exitCode = await superviseWorkers({ count, logger, stopTimeoutMs });
  return true;
}

/**
 * Forks `count` workers (they re-run this command line) and keeps them running: a worker that
 * exits before it ever listened stops them all (status 1, it printed why); one that crashes after
 * serving is restarted. SIGTERM/SIGINT are forwarded as SIGTERM, so every worker runs its own
 * graceful shutdown; resolves with 0 when every worker stopped cleanly, else 1.
 */
export function superviseWorkers(o: { count: number; logger: Logger; stopTimeoutMs: number }): Promise<number> {
  const { count, logger } = o;
  return new Promise((resolve) => {
    const live = new Map<number, { index: number; worker: Worker; listened: boolean }>();
    const crashes: number[] = [];
    let stopping = false;
    let failed = false;
    let announced = false;
    let killTimer: NodeJS.Timeout | undefined;

    const fork = (index: number) => {
      const worker = cluster.fork({ APIGATE_WORKER_INDEX: String(index) });
      live.set(worker.id, { index, worker, listened: false });
    };
    const stopAll = (why: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ workers: live.size }, `primary: ${why}; stopping ${live.size} worker(s)`);
      for (const { worker } of live.values()) worker.process.kill('SIGTERM');
      // The workers exit by their own deadline; this only catches one that hangs past it.
      killTimer = setTimeout(() => {
        for (const { index, worker } of live.values()) {
          logger.error(
            `primary: worker ${index} (pid ${worker.process.pid}) still running ${KILL_MARGIN_MS} ms past the shutdown deadline; killing it`,
          );
          worker.process.kill('SIGKILL');
        }
        failed = true;
      }, o.stopTimeoutMs + KILL_MARGIN_MS);
      killTimer.unref();
      finishIfDone();
    };
    const finishIfDone = () => {
      if (!stopping || live.size > 0) return;
      clearTimeout(killTimer);
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      cluster.off('listening', onListening);
      cluster.off('exit', onExit);
      logger.info(failed ? 'primary: stopped with problems; exit status 1' : 'primary: every worker stopped');
      resolve(failed ? 1 : 0);
    };
    const onListening = (worker: Worker) => {
      const w = live.get(worker.id);
      if (!w || w.listened) return;
      w.listened = true;
      if (!announced && [...live.values()].every((x) => x.listened)) {
        announced = true;
        logger.info({ workers: count, pid: process.pid }, `primary: ${count} workers serving`);
      }
    };
    const onExit = (worker: Worker, code: number | null, signal: string | null) => {
      const w = live.get(worker.id);
      if (!w) return;
      live.delete(worker.id);
      const how = signal ? `signal ${signal}` : `status ${code}`;
      if (stopping) {
        if (code !== 0 || signal) {
          failed = true;
          logger.error(`primary: worker ${w.index} (pid ${worker.process.pid}) stopped with ${how}`);
        }
        return finishIfDone();
      }
      if (!w.listened) {
        failed = true;
        logger.error(`primary: worker ${w.index} exited with ${how} before it listened`);
        return stopAll('a worker could not start');
      }
      const now = Date.now();
      crashes.push(now);
      while (crashes.length > 0 && crashes[0]! < now - 60_000) crashes.shift();
      if (crashes.length > MAX_RESTARTS_PER_MINUTE) {
        failed = true;
        logger.error(`primary: worker ${w.index} exited with ${how}; ${crashes.length} crashes within a minute, giving up`);
        return stopAll('workers keep crashing');
      }
      logger.error(`primary: worker ${w.index} (pid ${worker.process.pid}) exited with ${how}; starting another`);
      fork(w.index);
    };
    const onTerm = () => stopAll('SIGTERM');
    const onInt = () => stopAll('SIGINT');
    cluster.on('listening', onListening);
    cluster.on('exit', onExit);
    process.on('SIGTERM', onTerm);
    process.on('SIGINT', onInt);
    logger.info({ workers: count, pid: process.pid }, `primary: starting ${count} workers`);
    for (let i = 1; i <= count; i++) fork(i);
  });
}

/**
 * In a worker: when the IPC channel to the primary closes without the primary asking (it was
 * SIGKILLed or crashed), node's cluster makes the worker exit(0) at once, dropping the metered
 * usage it has not flushed yet. This marks that disconnect as expected (so node does not exit)
 * and sends the worker SIGTERM instead: it runs serve's graceful shutdown like `kill -TERM`
 * (in-flight requests finish, usage reaches the queue or the spool, then it exits).
 */
export function stopGracefullyWhenOrphaned(logger: Logger): void {
  const worker = cluster.worker;
  if (!worker) return;
  worker.once('disconnect', () => {
    // The primary disconnected it on purpose (worker.disconnect()): node's own handling is right.
    if (worker.exitedAfterDisconnect) return;
    worker.exitedAfterDisconnect = true;
    logger.warn(
      { pid: process.pid, worker: process.env.APIGATE_WORKER_INDEX },
      'worker: the primary is gone (IPC channel closed); stopping gracefully',
    );
    // Only once serve listens for SIGTERM: while it is still starting, the default action would kill it
    // (so wait for the handler); once a SIGTERM started its shutdown, the handler is gone and another
    // would cut that shutdown short (the unref'd timer then just lets the process exit when it is done).
    const stop = () => {
      if (process.listenerCount('SIGTERM') === 0) return false;
      process.kill(process.pid, 'SIGTERM');
      return true;
    };
    if (stop()) return;
    const timer = setInterval(() => stop() && clearInterval(timer), 100);
    timer.unref();
  });
}
