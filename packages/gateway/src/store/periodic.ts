import { type CacheProvider, describeError, type Logger } from '@apigate/kernel';

export interface PeriodicJobOptions<T> {
  intervalMs: number;
  /** A first round this long after the start, the interval counted from it (default: the first round comes after one interval). */
  firstRunMs?: number;
  /** With a shared cache, one instance runs each round: the one whose increment makes `lockKey`. */
  cache?: CacheProvider | undefined;
  lockKey: string;
  /** Instances sharing a PostgreSQL database also take the job's database lock (`store.exclusive`): never two rounds at once. */
  exclusive?: <R>(name: string, fn: () => Promise<R>) => Promise<{ ran: true; result: R } | { ran: false }>;
  logger: Logger;
  /** The warning logged when a round throws (the error's one-line description is appended). */
  failure: string;
  /** Extra fields for the failure log line. */
  logFields?: Record<string, unknown>;
  run(): Promise<T>;
}

export interface PeriodicJob<T> {
  /** Runs a round now (or returns the running one); undefined when skipped, failed or stopped. */
  runOnce(): Promise<T | undefined>;
  /** Stops the timer and waits for a running round. */
  stop(): Promise<void>;
}

/**
 * Runs a scheduled job every interval on an unref'd timer, one round at a time. With a shared cache
 * an atomic increment is the lock, held a little less than the interval so the next round on any
 * instance may run. Shared by the billing reconciler and usage reporter and the housekeeping job
 * (app/housekeeping.ts).
 */
export function startPeriodicJob<T>(o: PeriodicJobOptions<T>): PeriodicJob<T> {
  let running: Promise<T | undefined> | undefined;
  let stopped = false;
  const runOnce = async (): Promise<T | undefined> => {
    if (stopped || running) return running;
    running = (async () => {
      try {
        if (o.cache && (await o.cache.increment(o.lockKey, 1, { ttlMs: Math.max(1000, o.intervalMs - 1000) })) !== 1) return undefined;
        if (!o.exclusive) return await o.run();
        const r = await o.exclusive(o.lockKey, o.run);
        return r.ran ? r.result : undefined;
      } catch (err) {
        o.logger.warn(o.logFields ?? {}, `${o.failure}: ${describeError(err)}`);
        return undefined;
      } finally {
        running = undefined;
      }
    })();
    return running;
  };
  // With a first round, the interval counts from it: the cache lock it takes (held a little less
  // than the interval) is gone by this instance's next tick.
  let timer: ReturnType<typeof setInterval> | undefined;
  const every = () => {
    timer = setInterval(() => void runOnce(), o.intervalMs);
    timer.unref();
  };
  let first: ReturnType<typeof setTimeout> | undefined;
  if (o.firstRunMs === undefined) every();
  else {
    first = setTimeout(() => {
      first = undefined;
      every();
      void runOnce();
    }, o.firstRunMs);
    first.unref();
  }
  return {
    runOnce,
    async stop() {
      stopped = true;
      clearTimeout(first);
      clearInterval(timer);
      await running;
    },
  };
}
