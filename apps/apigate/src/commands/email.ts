import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { createOutbox, type DeliveryOutcome, type Enqueued, type Outbox, startDeliveryWorkers } from '@apigate/gateway';
import { describeError, type Kernel, NOTIFICATION_SEVERITIES, type QueueProvider, type Severity } from '@apigate/kernel';
import type { Command } from 'commander';
import { print, printJson } from '../output.js';
import { CliError, withJson } from './common.js';
import { type FollowedOutcome, followJob } from './follow-job.js';
import { queueInfo, withKernel } from './queue.js';

interface SendFlags {
  json?: boolean;
  wait?: boolean;
  timeout: string;
}

function withWait(cmd: Command): Command {
  return withJson(cmd)
    .option(
      '--wait',
      'wait until the message is delivered or has failed, whichever worker sends it (a running apigate serve, or one here if none takes it within 3 s; implied with the memory queue)',
    )
    .option('--timeout <seconds>', 'how long --wait waits', '120');
}

/**
 * Queues one message through the outbox, then (with --wait, or when the queue lives only in this
 * process) waits until that job is delivered or fails. On a durable (Redis) queue the job is
 * followed through the queue's job state, so the outcome is right when a running server's worker
 * sends it; a worker here starts only if nobody takes the job. On the memory queue a worker here
 * sends it. Exit 0 when delivered or queued for a running server, 1 when it failed or did not
 * finish in time.
 */
async function sendThroughOutbox(
  kind: 'email' | 'notification',
  o: SendFlags,
  enqueue: (outbox: Outbox, kernel: Kernel) => Promise<Enqueued>,
  what: string,
): Promise<void> {
  const timeoutS = Number(o.timeout);
  if (!Number.isFinite(timeoutS) || timeoutS <= 0) throw new CliError('--timeout: expected a number of seconds above 0');
  await withKernel([kind, 'queue'], async (rt, kernel) => {
    const queue = queueInfo(kernel);
    const provider = kernel.active.find((a) => a.capability === kind)?.name;
    if (!provider) throw new CliError(`no ${kind} provider is selected (${kind.toUpperCase()}_PROVIDER=none)`);
    const job = await enqueue(createOutbox(kernel, rt.store.settings), kernel);
    const base = { kind, jobId: job.id, queue: job.queue, provider: `${kind}/${provider}`, queueProvider: `queue/${queue.name}` };
    const wait = o.wait || !queue.durable;
    if (!wait) {
      if (o.json) printJson({ ...base, status: 'queued' });
      else print(`queued ${what} as job ${job.id} on ${job.queue} (queue/${queue.name}); a running apigate serve delivers it`);
      return;
    }
    if (!o.json && !o.wait) print(`queue/${queue.name} keeps jobs in this process only: waiting for the delivery here`);
    const onRetry = (r: DeliveryOutcome) => process.stderr.write(`attempt ${r.attempt} of ${r.maxAttempts} failed: ${r.error}; retrying\n`);
    const startWorkers = () => startDeliveryWorkers(kernel, { only: kind, logger: rt.logger });
    const queueProvider: QueueProvider = kernel.get('queue');
    let outcome: FollowedOutcome;
    try {
      // A third-party queue without jobStatus: only a worker here can tell the outcome.
      if (queue.durable && typeof queueProvider.jobStatus === 'function') {
        outcome = await followJob({
          queue: queueProvider,
          queueName: job.queue,
          jobId: job.id,
          timeoutMs: timeoutS * 1000,
          startWorkers,
          onRetry,
        });
      } else {
        const workers = startWorkers();
        try {
          outcome = { ...(await workers.waitFor(job.queue, job.id, { timeoutMs: timeoutS * 1000, onRetry })), deliveredBy: 'here' };
        } finally {
          await workers.close();
        }
      }
    } catch (err) {
      const lost = queue.durable ? '' : '; the memory queue drops it when this command exits';
      throw new CliError(`${describeError(err)}${lost}`);
    }
    const result = {
      ...base,
      status: outcome.status,
      attempt: outcome.attempt,
      maxAttempts: outcome.maxAttempts,
      deliveredBy: outcome.deliveredBy,
      ...(outcome.messageId ? { messageId: outcome.messageId } : {}),
      ...(outcome.error ? { error: outcome.error } : {}),
    };
    if (outcome.status === 'delivered') {
      if (o.json) printJson(result);
      else {
        const by = outcome.deliveredBy === 'elsewhere' ? ' by another worker (a running apigate serve)' : '';
        print(
          `delivered ${what} via ${kind}/${provider}${by} on attempt ${outcome.attempt}${outcome.messageId ? ` (message id ${outcome.messageId})` : ''}`,
        );
      }
      return;
    }
    if (o.json) {
      printJson(result);
      process.exitCode = 1;
      return;
    }
    throw new CliError(
      `${kind} job ${job.id} failed on attempt ${outcome.attempt} of ${outcome.maxAttempts}: ${outcome.error}; it is in the failed set (apigate queue retry ${job.queue} ${job.id})`,
    );
  });
}

export function registerEmail(program: Command): void {
  const email = program.command('email').description('send email through the outbox (the selected queue and email provider)');

  withWait(
    email
      .command('send-test')
      .description('queue a test email (text and HTML parts) through the outbox')
      .requiredOption('--to <address>', 'recipient')
      .option('--subject <text>', 'subject line', 'APIGate test email')
      .option('--from <address>', "sender (default: the provider's configured from address)"),
  ).action(async (o: SendFlags & { to: string; subject: string; from?: string }) =>
    sendThroughOutbox(
      'email',
      o,
      (outbox, kernel) => {
        const id = `send-test-${randomUUID()}`;
        const provider = kernel.active.find((a) => a.capability === 'email')?.name;
        const at = new Date().toISOString();
        return outbox.sendEmail(
          {
            to: o.to,
            ...(o.from ? { from: o.from } : {}),
            subject: o.subject,
            text: `This is a test email from APIGate, sent with \`apigate email send-test\` at ${at} through email/${provider}.`,
            html: `<p>This is a <strong>test email</strong> from APIGate, sent with <code>apigate email send-test</code> at ${at} through email/${provider}.</p>`,
            headers: { 'X-APIGate-Test': id },
          },
          { idempotencyId: id },
        );
      },
      `the test email to ${o.to}`,
    ),
  );

  const notify = program
    .command('notify')
    .description('send notifications through the outbox (the selected queue and notification provider)');

  withWait(
    notify
      .command('test')
      .description('queue a test notification through the outbox')
      .option('--title <text>', 'title', 'APIGate test notification')
      .option('--severity <level>', `one of ${NOTIFICATION_SEVERITIES.join(', ')}`, 'info'),
  ).action(async (o: SendFlags & { title: string; severity: string }) => {
    if (!NOTIFICATION_SEVERITIES.includes(o.severity as Severity)) {
      throw new CliError(`--severity: expected one of ${NOTIFICATION_SEVERITIES.join(', ')}, got "${o.severity}"`);
    }
    return sendThroughOutbox(
      'notification',
      o,
      (outbox) =>
        outbox.notify({
          id: `notify-test-${randomUUID()}`,
          event: 'apigate.test',
          title: o.title,
          text: 'Sent with `apigate notify test`: if you can read this, notifications reach you.',
          severity: o.severity as Severity,
          fields: { host: hostname() },
          occurredAt: new Date(),
        }),
      'the test notification',
    );
  });
}
