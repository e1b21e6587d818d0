import { type CacheProvider, describeError, isRetryable, type Logger, type PaymentFeatures, type PaymentProvider } from '@apigate/kernel';
import { and, asc, eq, inArray, sql } from 'drizzle-orm';
import { monthBounds, monthOf } from '../domain/usage.js';
import type { Subscription } from '../domain/subscriptions.js';
import type { Store } from '../domain/open-store.js';
import { type PeriodicJob, startPeriodicJob } from '../store/periodic.js';
import { overageUnits } from './plans-sync.js';

/** Subscriptions whose overage is billed: the ones the provider still charges. */
const BILLED: ReadonlySet<string> = new Set(['active', 'trialing', 'past_due']);

export interface UsageReportRow {
  id: string;
  subscriptionId: string;
  provider: string;
  period: string;
  cumulative: number;
  quantity: number;
  status: 'pending' | 'reported' | 'failed';
  error: string | null;
  createdAt: Date;
  reportedAt: Date | null;
}

export interface UsageReportOptions {
  store: Store;
  logger: Logger;
  providerName: string;
  payment: Pick<PaymentProvider, 'reportUsage'>;
  features?: PaymentFeatures | undefined;
  now?: () => Date;
}

export interface UsageReportResult {
  provider: string;
  /** False where the provider cannot bill usage (features.meteredBilling): nothing was reported. */
  supported: boolean;
  reported: UsageReportRow[];
  failed: UsageReportRow[];
}

/** The idempotency key of a report: the same subscription, period and running total is the same report. */
export const usageReportKey = (subscriptionId: string, period: string, cumulative: number) => `${subscriptionId}:${period}:${cumulative}`;

/**
 * Reports overage above the monthly quota to the payment provider, from stored usage. For each
 * billed subscription on a plan with an overage price and a quota, the period's overage units
 * (see overageUnits) are compared with what `usage_reports` says was reported; the difference is
 * recorded as a `pending` row keyed `<subscription>:<period>:<cumulative units>` BEFORE the
 * provider is called with that key as its idempotency key, and marked `reported` after. A crash
 * between the two leaves a pending row that the next run sends again with the same key, which the
 * provider counts once: nothing is ever reported twice, nothing is lost. The previous month is
 * reported too until its total is final (usage still arriving after the month ended).
 */
export async function reportOverage(o: UsageReportOptions): Promise<UsageReportResult> {
  const now = (o.now ?? (() => new Date()))();
  const result: UsageReportResult = { provider: o.providerName, supported: o.features?.meteredBilling === true, reported: [], failed: [] };
  if (!result.supported) return result;
  const { domain } = o.store;
  const periods = [monthOf(new Date(monthBounds(monthOf(now)).start.getTime() - 1)), monthOf(now)];

  let cursor: string | undefined;
  const subs: Subscription[] = [];
  do {
    const page = await domain.subscriptions.list({ provider: o.providerName, limit: 1000, ...(cursor ? { cursor } : {}) });
    subs.push(...page.items);
    cursor = page.cursor;
  } while (cursor);

  for (const sub of subs) {
    if (!sub.externalSubscriptionId || !sub.externalCustomerId) continue;
    const plan = await domain.plans.find(sub.planId);
    if (!plan || plan.requestsPerMonth === null || overageUnits(plan, 1) === 0) continue;
    for (const period of periods) {
      // Overage of a month before the subscription started is not its to bill.
      if (monthBounds(period).end <= sub.createdAt) continue;
      // A final refusal (no metered item on the subscription, say) will not fix itself: nothing more is
      // recorded for the period until an admin deals with it (subscriptions show lists the reason).
      if (BILLED.has(sub.status) && !(await hasFailed(o.store, sub.id, period))) {
        const requests = (await domain.usage.forUser(sub.userId, period)).totals.requests;
        const units = overageUnits(plan, Math.max(0, requests - plan.requestsPerMonth));
        await recordDue(o.store, sub, o.providerName, period, units, now);
      }
      await sendPending(o, sub, period, now, result);
    }
  }
  return result;
}

async function hasFailed(store: Store, subscriptionId: string, period: string): Promise<boolean> {
  const { usageReports } = store.t;
  const rows = await store.db
    .select({ id: usageReports.id })
    .from(usageReports)
    .where(and(eq(usageReports.subscriptionId, subscriptionId), eq(usageReports.period, period), eq(usageReports.status, 'failed')))
    .limit(1);
  return rows.length > 0;
}

/** Adds a pending row for the units not yet reported (or being reported) in the period. */
async function recordDue(store: Store, sub: Subscription, provider: string, period: string, units: number, now: Date): Promise<void> {
  const { usageReports } = store.t;
  await store.tx(async (tx) => {
    const [row] = await tx
      .select({ max: sql<number>`coalesce(max(${usageReports.cumulative}), 0)`.mapWith(Number) })
      .from(usageReports)
      .where(
        and(
          eq(usageReports.subscriptionId, sub.id),
          eq(usageReports.period, period),
          inArray(usageReports.status, ['pending', 'reported']),
        ),
      );
    const done = row!.max;
    if (units <= done) return;
    await tx
      .insert(usageReports)
      .values({
        id: usageReportKey(sub.id, period, units),
        subscriptionId: sub.id,
        provider,
        period,
        cumulative: units,
        quantity: units - done,
        status: 'pending',
        createdAt: now,
      })
      .onConflictDoNothing();
  });
}

async function sendPending(o: UsageReportOptions, sub: Subscription, period: string, now: Date, result: UsageReportResult): Promise<void> {
  const { usageReports } = o.store.t;
  const pending = await o.store.db
    .select()
    .from(usageReports)
    .where(and(eq(usageReports.subscriptionId, sub.id), eq(usageReports.period, period), eq(usageReports.status, 'pending')))
    .orderBy(asc(usageReports.cumulative));
  // Inside the period it belongs to: the provider bills it in that period's invoice.
  const { end } = monthBounds(period);
  const timestamp = new Date(Math.min(now.getTime(), end.getTime() - 1000));
  for (const row of pending) {
    try {
      await o.payment.reportUsage({
        customerId: sub.externalCustomerId!,
        subscriptionId: sub.externalSubscriptionId!,
        quantity: row.quantity,
        timestamp,
        idempotencyKey: row.id,
      });
      await o.store.db.update(usageReports).set({ status: 'reported', reportedAt: now, error: null }).where(eq(usageReports.id, row.id));
      result.reported.push({ ...row, status: 'reported', reportedAt: now, error: null });
      o.logger.info(
        { provider: o.providerName, subscriptionId: sub.id, period, quantity: row.quantity },
        `usage: reported ${row.quantity} overage units`,
      );
    } catch (err) {
      const error = describeError(err);
      // A retryable failure stays pending (the next run sends it with the same key); a refusal is final.
      const status = isRetryable(err) ? 'pending' : 'failed';
      await o.store.db.update(usageReports).set({ status, error }).where(eq(usageReports.id, row.id));
      result.failed.push({ ...row, status, error });
      o.logger.warn({ provider: o.providerName, subscriptionId: sub.id, period }, `usage: overage report failed (${status}): ${error}`);
      break; // later rows wait: their cumulative totals build on this one
    }
  }
}

/** What was reported for a subscription, oldest first. */
export async function usageReportsFor(store: Store, subscriptionId: string): Promise<UsageReportRow[]> {
  const { usageReports } = store.t;
  const rows = await store.db
    .select()
    .from(usageReports)
    .where(eq(usageReports.subscriptionId, subscriptionId))
    .orderBy(asc(usageReports.createdAt), asc(usageReports.cumulative));
  return rows as UsageReportRow[];
}

export interface UsageReporterOptions extends UsageReportOptions {
  intervalMs: number;
  cache?: CacheProvider | undefined;
}

/** Runs `reportOverage` every interval (unref timer), once across instances with a shared cache. */
export function startUsageReporter(o: UsageReporterOptions): PeriodicJob<UsageReportResult> {
  return startPeriodicJob({
    intervalMs: o.intervalMs,
    cache: o.cache,
    lockKey: `payment:usage-report:${o.providerName}`,
    exclusive: (name, fn) => o.store.exclusive(name, fn),
    logger: o.logger,
    failure: 'usage reporting failed',
    logFields: { provider: o.providerName },
    run: () => reportOverage(o),
  });
}
