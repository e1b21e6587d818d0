import type { CloseSummary, GatewayCloseReport } from '@apigate/gateway';
import type { Logger } from '@apigate/kernel';

/**
 * Runs one shutdown step and waits for it until `deadline` (epoch ms; none: as long as it takes).
 * A step still running then is named in `abandoned` and left behind: a hung backend (a frozen
 * Redis) must not keep the process alive.
 */
export async function untilDeadline(deadline: number | undefined, what: string, fn: () => Promise<unknown>, abandoned: string[]): Promise<void> {
  if (deadline === undefined) return void (await fn());
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
  });
  const done = fn().then(
    () => true,
    () => true,
  );
  const settled = await Promise.race([done, late]).finally(() => clearTimeout(timer));
  if (!settled) abandoned.push(what);
}

const usageLine = (s: CloseSummary) =>
  s.spooled
    ? `${s.unpublished} usage batches (${s.requests} requests) could not reach the queue: spooled to ${s.spoolFile}, published at the next start`
    : `${s.unpublished} usage batches (${s.requests} requests) could not reach the queue and could not be spooled: they are lost`;

export interface ShutdownOutcome {
  /** What could not be flushed (metered usage spooled or lost): the exit status is 1. */
  problems: string[];
  /** Steps left behind at the deadline (a worker or connection that did not close): logged, exit status unchanged. */
  warnings: string[];
}

/** What a shutdown could not flush, and what it stopped waiting for, one line each. */
export function shutdownOutcome(report: GatewayCloseReport | undefined, abandoned: readonly string[]): ShutdownOutcome {
  const problems: string[] = [];
  if (report && report.usage.unpublished > 0) problems.push(usageLine(report.usage));
  if (report && report.usageQueued > 0 && !report.usageQueuedKept) {
    problems.push(`${report.usageQueued} usage batches were still on the queue, not applied to the store, and are lost with it`);
  }
  const gaveUp = [...(report?.abandoned ?? []), ...abandoned];
  const warnings = gaveUp.length > 0 ? [`stopped waiting at the shutdown deadline for: ${gaveUp.join(', ')}`] : [];
  return { problems, warnings };
}

export interface ShutdownWatch {
  /** Epoch ms by which the process is gone. */
  readonly deadline: number;
  /** Shutdown finished: the process exits with `code` by the deadline at the latest, even if a handle lingers. */
  finish(code: number): void;
}

/**
 * Arms the shutdown deadline: if shutdown is still running when it passes, the metered usage is
 * spooled synchronously (`spool`), one error line says what was being waited for and what was
 * spooled, and the process exits with status 1. Providers with their own exit hooks (the memory
 * queue's spool) run on that exit.
 */
export function armShutdownDeadline(o: {
  timeoutMs: number;
  logger: Logger;
  spool: () => CloseSummary | undefined;
  current: () => string;
}): ShutdownWatch {
  const deadline = Date.now() + o.timeoutMs;
  let finished = false;
  const timer = setTimeout(() => {
    if (finished) return;
    let spooled = '';
    try {
      const s = o.spool();
      if (s && s.unpublished > 0) spooled = `; ${usageLine(s)}`;
    } catch (err) {
      spooled = `; the usage spool could not be written: ${(err as Error).message}`;
    }
    o.logger.error(`shutdown deadline of ${o.timeoutMs} ms passed while waiting for ${o.current()}${spooled}; exiting with status 1`);
    process.exit(1);
  }, o.timeoutMs);
  return {
    deadline,
    finish(code) {
      finished = true;
      clearTimeout(timer);
      setTimeout(() => process.exit(code), Math.max(0, deadline - Date.now())).unref();
    },
  };
}
