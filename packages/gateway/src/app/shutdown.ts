import type { GatewayCloseReport } from '../gate/gateway.js';
import type { CloseSummary } from '../metering/recorder.js';

/**
 * Runs one shutdown step and waits for it until `deadline` (epoch ms; none: as long as it takes).
 * A step still running then is named in `abandoned` and left behind: a hung backend (a frozen
 * Redis) must not keep the process alive. A step that fails counts as done.
 */
export async function untilDeadline(
  deadline: number | undefined,
  what: string,
  fn: () => Promise<unknown>,
  abandoned: string[],
): Promise<void> {
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

/** One line on metered usage that did not reach the queue: spooled for the next start, or lost. */
export function unpublishedUsageLine(s: CloseSummary): string {
  return s.spooled
    ? `${s.unpublished} usage batches (${s.requests} requests) could not reach the queue: spooled to ${s.spoolFile}, published at the next start`
    : `${s.unpublished} usage batches (${s.requests} requests) could not reach the queue and could not be spooled: they are lost`;
}

export interface ShutdownOutcome {
  /** What could not be flushed (metered usage spooled or lost): the exit status is 1. */
  problems: string[];
  /** Steps left behind at the deadline (a worker or connection that did not close): logged, exit status unchanged. */
  warnings: string[];
}

/** What a shutdown could not flush, and what it stopped waiting for, one line each. */
export function shutdownOutcome(report: GatewayCloseReport | undefined, abandoned: readonly string[]): ShutdownOutcome {
  const problems: string[] = [];
  if (report && report.usage.unpublished > 0) problems.push(unpublishedUsageLine(report.usage));
  if (report && report.usageQueued > 0 && !report.usageQueuedKept) {
    problems.push(`${report.usageQueued} usage batches were still on the queue, not applied to the store, and are lost with it`);
  }
  const gaveUp = [...(report?.abandoned ?? []), ...abandoned];
  const warnings = gaveUp.length > 0 ? [`stopped waiting at the shutdown deadline for: ${gaveUp.join(', ')}`] : [];
  return { problems, warnings };
}
