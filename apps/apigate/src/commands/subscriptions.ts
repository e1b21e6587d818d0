import {
  BillingError,
  type CustomerBilling,
  customerBillingFor,
  type ReconcileResult,
  type Subscription,
  usageReportsFor,
} from '@apigate/gateway';
import type { Command } from 'commander';
import { table } from '../output.js';
import { openRuntime, type Runtime } from '../runtime.js';
import { CliError, withJson } from './common.js';
import { EXIT_NOT_FOUND, output, pageQuery, when, withDomain, withPaging } from './domain-common.js';
import { withKernel } from './queue.js';

const row = (s: Subscription) => ({
  id: s.id,
  user: s.userId,
  plan: s.planId,
  provider: s.provider,
  status: s.status,
  periodEnd: when(s.currentPeriodEnd),
  cancelAtEnd: s.cancelAtPeriodEnd ? 'yes' : '',
  external: s.externalSubscriptionId ?? '',
});
const COLUMNS = ['id', 'user', 'plan', 'provider', 'status', 'periodEnd', 'cancelAtEnd', 'external'];

/** Runs `fn` with the selected payment provider's CustomerBilling; provider failures become one line with the reason. */
async function withBilling<T>(fn: (b: CustomerBilling, rt: Runtime) => Promise<T>): Promise<T> {
  return withKernel(['payment'], async (rt, kernel) => {
    const billing = customerBillingFor(kernel, { store: rt.store, logger: rt.logger });
    if (!billing)
      throw new CliError('no payment provider is selected (PAYMENT_PROVIDER=none); set PAYMENT_PROVIDER or payment.provider, e.g. stripe');
    try {
      return await fn(billing, rt);
    } catch (err) {
      if (err instanceof BillingError) throw new CliError(err.detail, err.status === 404 ? EXIT_NOT_FOUND : 1);
      throw err;
    }
  });
}

function syncText(r: ReconcileResult): string {
  const lines = [
    `${r.provider}: checked ${r.checked} subscription(s), repaired ${r.changed.length}${r.unknown ? `, ${r.unknown} not sold by this gateway (left alone)` : ''}`,
  ];
  for (const c of r.changed) {
    const before = c.before
      ? `${c.before.status}${c.before.cancelAtPeriodEnd ? ' (cancel at period end)' : ''} plan ${c.before.planId}`
      : 'not stored';
    lines.push(
      `  ${c.subscriptionId ?? c.externalSubscriptionId}: ${before} -> ${c.after.status}${c.after.cancelAtPeriodEnd ? ' (cancel at period end)' : ''} plan ${c.after.planId ?? '?'}`,
    );
  }
  for (const e of r.errors) lines.push(`  ${e.externalSubscriptionId}: not repaired: ${e.error}`);
  return lines.join('\n');
}

/** `apigate subscriptions list|show|cancel|sync|report-usage`. */
export function registerSubscriptions(program: Command): void {
  const subs = program
    .command('subscriptions')
    .description('subscriptions from the payment provider: list, show, cancel, sync (repair drift) and report overage');

  withJson(
    withPaging(
      subs
        .command('list')
        .description('list stored subscriptions, oldest first')
        .option('--user <user>', 'only this user (id or email)')
        .option(
          '--status <status>',
          'only this status: trialing, active, past_due, paused, canceled, incomplete, incomplete_expired, unpaid',
        ),
    ),
  ).action(async (o: { user?: string; status?: string; json?: boolean; limit: string; cursor?: string }) =>
    withDomain(
      async (d) => {
        const userId = o.user !== undefined ? (await d.users.resolve(o.user)).id : undefined;
        const page = await d.subscriptions.list({
          ...pageQuery(o),
          ...(userId ? { userId } : {}),
          ...(o.status ? { status: o.status } : {}),
        });
        output(o, { data: page.items, nextCursor: page.cursor ?? null }, () =>
          page.items.length
            ? `${table(page.items.map(row), COLUMNS)}${page.cursor ? `\nmore: apigate subscriptions list --cursor ${page.cursor}` : ''}`
            : 'no subscriptions; they arrive from the payment provider after a checkout',
        );
      },
      { status: '--status' },
    ),
  );

  withJson(subs.command('show <id>').description('one subscription with the overage usage reported for it')).action(
    async (id: string, o: { json?: boolean }) => {
      const rt = await openRuntime();
      try {
        const sub = await rt.store.domain.subscriptions.find(id);
        if (!sub) throw new CliError(`no subscription with id ${id}`, EXIT_NOT_FOUND);
        const reports = await usageReportsFor(rt.store, sub.id);
        const reportRows = reports.map((r) => ({
          period: r.period,
          quantity: r.quantity,
          cumulative: r.cumulative,
          status: r.status,
          at: when(r.reportedAt),
          error: r.error ?? '',
        }));
        output(o, { ...sub, usageReports: reports }, () =>
          [
            table([row(sub)], COLUMNS),
            reports.length
              ? `overage reported:\n${table(reportRows, ['period', 'quantity', 'cumulative', 'status', 'at', 'error'])}`
              : 'no overage reported',
          ].join('\n'),
        );
      } finally {
        await rt.close();
      }
    },
  );

  withJson(
    subs
      .command('cancel <id>')
      .description('cancel at the end of the paid period (the customer keeps the plan until then), or at once with --now')
      .option('--now', 'cancel immediately (where the provider allows it); the plan is withdrawn now'),
  ).action(async (id: string, o: { now?: boolean; json?: boolean }) =>
    withBilling(async (b, rt) => {
      const sub = await rt.store.domain.subscriptions.find(id);
      if (!sub) throw new CliError(`no subscription with id ${id}`, EXIT_NOT_FOUND);
      const after = await b.cancelSubscription(sub, { now: o.now === true });
      output(o, after, () =>
        o.now
          ? `canceled ${after.id} now (status ${after.status})`
          : `${after.id} ends at the end of its period${after.currentPeriodEnd ? ` (${when(after.currentPeriodEnd)})` : ''}; status ${after.status}`,
      );
    }),
  );

  withJson(
    subs
      .command('sync')
      .description(
        'read subscriptions from the payment provider and repair what the store has wrong (missed or failed webhooks); prints what changed',
      )
      .option('--user <user>', 'only this user (id or email)'),
  ).action(async (o: { user?: string; json?: boolean }) =>
    withBilling(async (b, rt) => {
      const userId =
        o.user !== undefined
          ? ((await rt.store.domain.users.find(o.user))?.id ?? (await rt.store.domain.users.findByEmail(o.user))?.id)
          : undefined;
      if (o.user !== undefined && !userId) throw new CliError(`no user with id or email "${o.user}"`, EXIT_NOT_FOUND);
      const r = await b.reconcile(userId ? { userId } : {});
      output(o, r, () => syncText(r));
      if (r.errors.length) process.exitCode = 1;
    }),
  );

  withJson(
    subs
      .command('report-usage')
      .description(
        'report overage above the monthly quota to the payment provider now (serve does it every payment.usage_report_interval_minutes)',
      ),
  ).action(async (o: { json?: boolean }) =>
    withBilling(async (b) => {
      const r = await b.reportOverage();
      output(o, r, () => {
        if (!r.supported)
          return `${r.provider} cannot bill metered usage (features.meteredBilling is false): nothing reported; bill overage outside ${r.provider}`;
        const lines = [`${r.provider}: reported ${r.reported.length} overage report(s), ${r.failed.length} failed`];
        for (const x of r.reported) lines.push(`  ${x.subscriptionId} ${x.period}: +${x.quantity} (total ${x.cumulative})`);
        for (const x of r.failed) lines.push(`  ${x.subscriptionId} ${x.period}: ${x.status}: ${x.error}`);
        return lines.join('\n');
      });
      if (r.failed.length) process.exitCode = 1;
    }),
  );
}
