import type { CapabilityName, Kernel } from '@apigate/kernel';
import type { Command } from 'commander';
import { print, printJson, table } from '../output.js';
import { openRuntime, type Runtime, startKernel } from '../runtime.js';
import { CliError, withJson } from './common.js';
import { pageQuery, withPaging } from './domain-common.js';

/** Builds the kernel with only the capabilities a command needs, runs `fn`, then closes kernel and store. */
export async function withKernel<T>(only: readonly CapabilityName[], fn: (rt: Runtime, kernel: Kernel) => Promise<T>): Promise<T> {
  const rt = await openRuntime();
  try {
    const kernel = await startKernel(rt, only);
    try {
      return await fn(rt, kernel);
    } finally {
      await kernel.close();
    }
  } finally {
    await rt.close();
  }
}

/** The selected provider's name and whether its jobs outlive this process. */
export function queueInfo(kernel: Kernel): { name: string; durable: boolean } {
  const a = kernel.selected('queue');
  if (!a) throw new CliError('no queue provider is selected (QUEUE_PROVIDER=none); set QUEUE_PROVIDER to memory or redis');
  return { name: a.name, durable: a.features.durable === true };
}

const MEMORY_NOTE =
  'the memory queue lives inside one process: this command sees only its own, empty queue (use QUEUE_PROVIDER=redis to share jobs)';

export function registerQueue(program: Command): void {
  const queue = program
    .command('queue')
    .description('inspect the failed set of a queue (e.g. email.send, notification.send) and retry jobs');

  withJson(
    withPaging(queue.command('failed <queue>').description('list the jobs that used up their attempts, oldest failure first')),
  ).action(async (name: string, o: { json?: boolean; limit: string; cursor?: string }) =>
    withKernel(['queue'], async (_rt, kernel) => {
      const info = queueInfo(kernel);
      const page = await kernel.get('queue').failed(name, pageQuery(o));
      if (o.json) {
        printJson({ queue: name, provider: info.name, items: page.items, cursor: page.cursor ?? null });
        return;
      }
      if (!info.durable) print(`note: ${MEMORY_NOTE}`);
      if (page.items.length === 0) {
        print(`no failed jobs in ${name}`);
        return;
      }
      const rows = page.items.map((j) => ({
        id: j.id,
        attempts: `${j.attempt}/${j.maxAttempts}`,
        failedAt: j.failedAt,
        error: j.error.split('\n')[0],
      }));
      print(table(rows, ['id', 'attempts', 'failedAt', 'error']));
      if (page.cursor) print(`more: apigate queue failed ${name} --cursor ${page.cursor}`);
    }),
  );

  withJson(
    queue
      .command('retry <queue> [jobId]')
      .description('move one failed job (or all of them) back to waiting, with a fresh set of attempts'),
  ).action(async (name: string, jobId: string | undefined, o: { json?: boolean }) =>
    withKernel(['queue'], async (_rt, kernel) => {
      const info = queueInfo(kernel);
      const retried = await kernel.get('queue').retryFailed(name, jobId);
      if (jobId !== undefined && retried === 0) {
        throw new CliError(`no failed job "${jobId}" in ${name}${info.durable ? '' : `; note: ${MEMORY_NOTE}`}`, 3);
      }
      if (o.json) printJson({ queue: name, provider: info.name, retried });
      else print(`moved ${retried} job${retried === 1 ? '' : 's'} of ${name} back to waiting; a running apigate serve sends them`);
    }),
  );
}
