import { type CloseSummary, unpublishedUsageLine } from '@apigate/gateway';
import type { Logger } from '@apigate/kernel';

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
      if (s && s.unpublished > 0) spooled = `; ${unpublishedUsageLine(s)}`;
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
