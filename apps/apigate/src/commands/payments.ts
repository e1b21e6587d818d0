import {
  findPaymentEvent,
  isDomainError,
  PaymentInbox,
  paymentEventDetail,
  parseEventStatus,
  type RecordedPaymentEvent,
  replayPaymentEvent,
} from '@apigate/gateway';
import type { Command } from 'commander';
import { table } from '../output.js';
import { openRuntime } from '../runtime.js';
import { CliError, withJson } from './common.js';
import { EXIT_NOT_FOUND, output, pageQuery, when, withPaging } from './domain-common.js';
import { queueInfo, withKernel } from './queue.js';

const row = (e: RecordedPaymentEvent) => ({
  id: e.eventId,
  provider: e.provider,
  type: e.type,
  occurredAt: when(e.occurredAt),
  status: e.status,
  attempts: e.attempts,
  next: when(e.nextAttemptAt),
  error: (e.lastError ?? '').slice(0, 80),
});
const COLUMNS = ['id', 'provider', 'type', 'occurredAt', 'status', 'attempts', 'next', 'error'];

/** The `--status` flag, checked like the admin API's `status` query. */
function statusFlag(raw: string | undefined) {
  try {
    return parseEventStatus(raw);
  } catch (err) {
    throw new CliError(`--status: ${(err as Error).message.replace(/^status: /, '')}`);
  }
}

/** `apigate payments events list|show|replay`: the payment webhook inbox. */
export function registerPayments(program: Command): void {
  const payments = program.command('payments').description('the payment webhook inbox: events received from the payment provider');
  const events = payments.command('events').description('list, show and replay payment webhook events (payment_events)');

  withJson(
    withPaging(
      events
        .command('list')
        .description('list received events, oldest first')
        .option('--status <status>', 'only this status: queued, applied, skipped, failed')
        .option('--provider <name>', 'only this payment provider'),
    ),
  ).action(async (o: { status?: string; provider?: string; json?: boolean; limit: string; cursor?: string }) => {
    const status = statusFlag(o.status);
    const query = { ...pageQuery(o), ...(status ? { status } : {}), ...(o.provider ? { provider: o.provider } : {}) };
    await withInbox(async (inbox) => {
      const page = await asCliAsync(() => inbox.list(query));
      output(o, { data: page.items, nextCursor: page.cursor ?? null }, () =>
        page.items.length
          ? `${table(page.items.map(row), COLUMNS)}${page.cursor ? `\nmore: apigate payments events list --cursor ${page.cursor}` : ''}`
          : `no payment events${status ? ` with status ${status}` : ''}`,
      );
    });
  });

  withJson(
    events
      .command('show <id>')
      .description('one event with its stored body')
      .option('--provider <name>', 'the provider, when several have this event id'),
  ).action(async (id: string, o: { provider?: string; json?: boolean }) =>
    withInbox(async (inbox) => {
      const detail = await paymentEventDetail(inbox, await asCliAsync(() => findPaymentEvent(inbox, id, o.provider)));
      output(o, detail, () =>
        [
          table([row(detail)], COLUMNS),
          detail.lastError ? `last error: ${detail.lastError}` : '',
          detail.body ? `body:\n${detail.body}` : 'no stored body',
        ]
          .filter(Boolean)
          .join('\n'),
      );
    }),
  );

  withJson(
    events
      .command('replay <id>')
      .description('send a failed event back to the worker with fresh tries (after creating the missing mapping, say)')
      .option('--provider <name>', 'the provider, when several have this event id'),
  ).action(async (id: string, o: { provider?: string; json?: boolean }) =>
    withKernel(['queue'], async (rt, kernel) => {
      // A shared (durable) queue reaches the server's worker now; with the memory queue the server's sweep takes the row within a minute.
      const durable = queueInfo(kernel).durable;
      const inbox = new PaymentInbox(rt.store);
      const replayed = await asCliAsync(() =>
        replayPaymentEvent({ inbox, queue: durable ? kernel.get('queue') : undefined }, id, o.provider),
      );
      output(
        o,
        replayed,
        () =>
          `payment event ${replayed.eventId} queued again with fresh tries; ${durable ? 'the payment worker applies it now' : 'a running apigate serve applies it within a minute'} (check: apigate payments events show ${replayed.eventId})`,
      );
    }),
  );
}

async function withInbox<T>(fn: (inbox: PaymentInbox) => Promise<T>): Promise<T> {
  const rt = await openRuntime();
  try {
    return await fn(new PaymentInbox(rt.store));
  } finally {
    await rt.close();
  }
}

async function asCliAsync<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (isDomainError(err)) throw new CliError(err.message, err.kind === 'not_found' ? EXIT_NOT_FOUND : 1);
    throw err;
  }
}
