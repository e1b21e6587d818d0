import { monthBounds, monthOf } from '@apigate/gateway';
import type { Command } from 'commander';
import { table } from '../output.js';
import { CliError, withJson } from './common.js';
import { orUnlimited, output, when, withDomain } from './domain-common.js';
import { registerUsageExport } from './usage-export.js';

const pct = (used: number, limit: number | null) => (limit === null ? '' : `${Math.floor((used / limit) * 100)}%`);

export function registerUsage(program: Command): void {
  const usage = program.command('usage').description('read metered usage');

  withJson(
    usage
      .command('show')
      .description('usage for a month: every user, or one user (per key) or one key')
      .option('--user <user>', 'one user (id or email)')
      .option('--key <key-id>', 'one API key')
      .option('--month <YYYY-MM>', 'UTC month (default: this month)'),
  ).action(async (o: { user?: string; key?: string; month?: string; json?: boolean }) =>
    withDomain(
      async (d) => {
        if (o.user && o.key) throw new CliError('--user and --key: give one of them');
        const month = o.month ?? monthOf(new Date());
        const resetsAt = monthBounds(month).end;
        if (o.key) {
          const key = await d.keys.get(o.key);
          const s = await d.usage.forKey(key.id, month);
          output(o, { keyId: key.id, userId: key.userId, month, totals: s.totals }, () =>
            [
              `key ${key.id} (${key.prefix}...) in ${month}`,
              table([s.totals as never], ['requests', 'bytesIn', 'bytesOut', 'errors']),
            ].join('\n'),
          );
          return;
        }
        if (o.user) {
          const user = await d.users.resolve(o.user);
          const plan = await d.plans.get(user.planId);
          const s = await d.usage.forUser(user.id, month);
          const limit = plan.requestsPerMonth;
          const quota = { limit, remaining: limit === null ? null : Math.max(0, limit - s.totals.requests), resetsAt };
          output(o, { userId: user.id, ...s, quota }, () =>
            [
              `${user.email} (${user.id}) in ${month}, plan ${plan.name}: ${s.totals.requests} of ${orUnlimited(limit)} requests${limit === null ? '' : ` (${pct(s.totals.requests, limit)})`}, resets ${when(resetsAt)}`,
              s.keys.length ? table(s.keys as never, ['keyId', 'requests', 'bytesIn', 'bytesOut', 'errors']) : 'no requests this month',
            ].join('\n'),
          );
          return;
        }
        const rows = await d.usage.byUser(month);
        const plans = new Map((await d.plans.list()).map((p) => [p.id, p]));
        const people = await Promise.all(rows.map((r) => d.users.find(r.userId)));
        output(o, { month, data: rows }, () => {
          if (!rows.length) return `no usage in ${month}`;
          const lines = rows.map((r, i) => {
            const user = people[i];
            const plan = user ? plans.get(user.planId) : undefined;
            const limit = plan?.requestsPerMonth ?? null;
            return {
              ...r,
              user: user?.email ?? `${r.userId} (deleted)`,
              plan: plan?.name ?? '',
              quota: orUnlimited(limit),
              used: pct(r.requests, limit),
            };
          });
          return [
            `usage in ${month} (quotas reset ${when(resetsAt)})`,
            table(lines, ['user', 'plan', 'requests', 'quota', 'used', 'bytesIn', 'bytesOut', 'errors']),
          ].join('\n');
        });
      },
      { month: '--month' },
    ),
  );

  registerUsageExport(usage);
}
