import type { CreatePlanInput, Plan } from '@apigate/gateway';
import type { Command } from 'commander';
import { table } from '../output.js';
import { withJson } from './common.js';
import { decimalFlag, intFlag, money, orUnlimited, output, withDomain } from './domain-common.js';

const FLAGS = {
  name: '--name',
  requests_per_minute: '--rpm',
  requests_per_month: '--monthly',
  price_cents: '--price-cents',
  yearly_price_cents: '--yearly-price-cents',
  currency: '--currency',
  trial_days: '--trial-days',
  overage_cents_per_request: '--overage',
};

interface PlanFlags {
  name?: string;
  rpm?: string;
  monthly?: string;
  priceCents?: string;
  yearlyPriceCents?: string;
  currency?: string;
  trialDays?: string;
  overage?: string;
  default?: boolean;
  json?: boolean;
}

function planOptions(cmd: Command): Command {
  return cmd
    .option('--rpm <n>', 'requests per minute per key, or "unlimited"')
    .option('--monthly <n>', 'requests per month per user (the quota), or "unlimited"')
    .option('--price-cents <n>', 'monthly price in cents (2900 = 29.00)')
    .option('--yearly-price-cents <n>', 'yearly price in cents (29000 = 290.00), or "none" for monthly only')
    .option('--currency <code>', 'ISO 4217 currency, e.g. usd')
    .option('--trial-days <n>', 'free trial length in days')
    .option('--overage <cents>', 'price per request over the quota in cents (e.g. 0.05), or "none" to stop at the quota');
}

/** The flags given, as plan fields (absent flags stay absent). */
function fields(o: PlanFlags): Partial<CreatePlanInput> {
  const f: Partial<CreatePlanInput> = {};
  if (o.name !== undefined) f.name = o.name;
  if (o.rpm !== undefined) f.requestsPerMinute = intFlag(o.rpm, '--rpm', { nullWord: 'unlimited' });
  if (o.monthly !== undefined) f.requestsPerMonth = intFlag(o.monthly, '--monthly', { nullWord: 'unlimited' });
  if (o.priceCents !== undefined) f.priceCents = intFlag(o.priceCents, '--price-cents')!;
  if (o.yearlyPriceCents !== undefined) f.yearlyPriceCents = intFlag(o.yearlyPriceCents, '--yearly-price-cents', { nullWord: 'none' });
  if (o.currency !== undefined) f.currency = o.currency;
  if (o.trialDays !== undefined) f.trialDays = intFlag(o.trialDays, '--trial-days')!;
  if (o.overage !== undefined) f.overageCentsPerRequest = decimalFlag(o.overage, '--overage', 'none');
  if (o.default) f.isDefault = true;
  return f;
}

const row = (p: Plan) => ({
  id: p.id,
  name: p.name,
  default: p.isDefault ? '*' : '',
  rpm: orUnlimited(p.requestsPerMinute),
  monthly: orUnlimited(p.requestsPerMonth),
  price: money(p.priceCents, p.currency),
  yearly: p.yearlyPriceCents === null ? '' : money(p.yearlyPriceCents, p.currency),
  trial: p.trialDays ? `${p.trialDays}d` : '',
  overage: p.overageCentsPerRequest === null ? '' : `${p.overageCentsPerRequest}c/req`,
});
const COLUMNS = ['id', 'name', 'default', 'rpm', 'monthly', 'price', 'yearly', 'trial', 'overage'];

export function registerPlans(program: Command): void {
  const plans = program.command('plans').description('manage plans: rate limit, monthly quota and price');

  withJson(
    planOptions(
      plans.command('create <name>').description('create a plan (limits default to unlimited; the first plan becomes the default)'),
    ).option('--default', 'make it the plan new users get'),
  ).action(async (name: string, o: PlanFlags) =>
    withDomain(async (d) => {
      const plan = await d.plans.create({ ...fields(o), name });
      output(
        o,
        plan,
        () => `created plan ${plan.name} (${plan.id})${plan.isDefault ? ', the default plan' : ''}\n${table([row(plan)], COLUMNS)}`,
      );
    }, FLAGS),
  );

  withJson(plans.command('list').description('list plans; * marks the default')).action(async (o: { json?: boolean }) =>
    withDomain(async (d) => {
      const all = await d.plans.list();
      output(o, { data: all }, () =>
        all.length ? table(all.map(row), COLUMNS) : 'no plans; create one with `apigate plans create <name>`',
      );
    }),
  );

  withJson(
    planOptions(plans.command('update <plan>').description('change a plan (by id or name)')).option('--name <name>', 'rename the plan'),
  ).action(async (ref: string, o: PlanFlags) =>
    withDomain(async (d) => {
      const plan = await d.plans.update((await d.plans.resolve(ref)).id, fields(o));
      output(o, plan, () => `updated plan ${plan.name} (${plan.id})\n${table([row(plan)], COLUMNS)}`);
    }, FLAGS),
  );

  withJson(plans.command('set-default <plan>').description('make a plan the one new users get')).action(
    async (ref: string, o: { json?: boolean }) =>
      withDomain(async (d) => {
        const plan = await d.plans.setDefault((await d.plans.resolve(ref)).id);
        output(o, plan, () => `${plan.name} (${plan.id}) is now the default plan`);
      }),
  );

  withJson(plans.command('delete <plan>').description('delete a plan nobody is on (not the default)')).action(
    async (ref: string, o: { json?: boolean }) =>
      withDomain(async (d) => {
        const plan = await d.plans.resolve(ref);
        await d.plans.delete(plan.id);
        output(o, { id: plan.id, deleted: true }, () => `deleted plan ${plan.name} (${plan.id})`);
      }),
  );
}
