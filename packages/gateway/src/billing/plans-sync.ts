import type { Logger, PaymentFeatures, PaymentProvider } from '@apigate/kernel';
import { overageCents, type Plan } from '../domain/plans.js';
import type { Store } from '../domain/open-store.js';
import { MAPPING } from './processor.js';

/**
 * The provider prices a plan can have, each stored as a mapping (provider, entity type, plan id)
 * -> price id. `month` is the processor's `plan` mapping (a subscription's price picks its plan).
 */
export const PRICE_KINDS = {
  month: MAPPING.plan,
  year: MAPPING.planYear,
  /** The metered overage price billed next to a monthly subscription. */
  overageMonth: 'plan_overage',
  /** The same for a yearly subscription (a subscription's prices share one interval). */
  overageYear: 'plan_overage_year',
} as const;
export type PriceKind = keyof typeof PRICE_KINDS;

/** Mapping entity types whose price, as a subscription's main price, means the plan. */
export const PLAN_PRICE_TYPES: readonly string[] = [PRICE_KINDS.month, PRICE_KINDS.year];

/**
 * What one unit of the overage price is: a request when the plan's overage price is a whole
 * number of cents, else one cent of overage (prices are whole cents at every provider), so
 * `units * amountCents` is always the plan's exact overage charge rounded up to a cent.
 */
export function overageUnit(plan: Pick<Plan, 'overageCentsPerRequest'>): { unit: 'request' | 'cent'; amountCents: number } | undefined {
  const c = plan.overageCentsPerRequest;
  if (c === null || c <= 0) return undefined;
  return Number.isInteger(c) ? { unit: 'request', amountCents: c } : { unit: 'cent', amountCents: 1 };
}

/** The overage units of `requests` over the quota (see overageUnit). */
export function overageUnits(plan: Pick<Plan, 'overageCentsPerRequest'>, requests: number): number {
  const u = overageUnit(plan);
  if (!u || requests <= 0) return 0;
  return u.unit === 'request' ? requests : overageCents(plan, requests);
}

export interface PlanSyncResult {
  planId: string;
  name: string;
  /** Which price: month, year, overageMonth, overageYear. */
  kind: PriceKind;
  priceId: string;
  /** True when the provider gave a new price id (a new plan, or a changed amount or currency). */
  changed: boolean;
}

export interface PlanSyncOptions {
  store: Store;
  providerName: string;
  payment: Pick<PaymentProvider, 'upsertPrice'>;
  /** The provider's features: metered overage prices only where `meteredBilling` is true. */
  features?: PaymentFeatures | undefined;
  logger?: Logger | undefined;
}

/** The prices a plan needs at this provider (none for a free plan). */
function wanted(plan: Plan, features: PaymentFeatures | undefined) {
  if (plan.priceCents <= 0) return [];
  const base = { planId: plan.id, currency: plan.currency };
  const out: { kind: PriceKind; input: Omit<Parameters<PaymentProvider['upsertPrice']>[0], 'existingPriceId'> }[] = [
    { kind: 'month', input: { ...base, name: plan.name, amountCents: plan.priceCents, interval: 'month' } },
  ];
  if (plan.yearlyPriceCents !== null)
    out.push({ kind: 'year', input: { ...base, name: plan.name, amountCents: plan.yearlyPriceCents, interval: 'year' } });
  const unit = overageUnit(plan);
  if (unit && features?.meteredBilling) {
    const name = `${plan.name} overage (per ${unit.unit === 'request' ? 'request' : 'cent of overage'})`;
    out.push({ kind: 'overageMonth', input: { ...base, name, amountCents: unit.amountCents, interval: 'month', metered: true } });
    if (plan.yearlyPriceCents !== null)
      out.push({ kind: 'overageYear', input: { ...base, name, amountCents: unit.amountCents, interval: 'year', metered: true } });
  }
  return out;
}

/**
 * Makes (or updates) the provider prices of one plan and stores the plan -> price mappings. An
 * existing mapping is passed as `existingPriceId`, so an unchanged plan keeps its price; a changed
 * one gets a new price and the mapping moves to it. Mappings of prices the plan no longer has
 * (a yearly price removed) stay, so subscriptions still on them keep finding their plan.
 */
export async function syncPlan(o: PlanSyncOptions, plan: Plan): Promise<PlanSyncResult[]> {
  const { mappings } = o.store;
  const out: PlanSyncResult[] = [];
  const want = wanted(plan, o.features);
  for (const { kind, input } of want) {
    const type = PRICE_KINDS[kind];
    const existing = await mappings.findExternal(o.providerName, type, plan.id);
    const { priceId } = await o.payment.upsertPrice({ ...input, ...(existing ? { existingPriceId: existing.externalId } : {}) });
    const changed = existing?.externalId !== priceId;
    if (existing && changed) await mappings.delete(o.providerName, type, plan.id);
    if (changed) await mappings.put({ provider: o.providerName, entityType: type, localId: plan.id, externalId: priceId });
    o.logger?.info({ planId: plan.id, kind, priceId, changed }, `plan ${plan.name}: ${kind} price ${priceId}`);
    out.push({ planId: plan.id, name: plan.name, kind, priceId, changed });
  }
  return out;
}

/** `syncPlan` for every plan (what `apigate plans sync` runs: a full resync). */
export async function syncPlanPrices(o: PlanSyncOptions): Promise<PlanSyncResult[]> {
  const out: PlanSyncResult[] = [];
  for (const plan of await o.store.domain.plans.list()) out.push(...(await syncPlan(o, plan)));
  return out;
}
