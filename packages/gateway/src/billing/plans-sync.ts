import type { Logger, PaymentProvider } from '@apigate/kernel';
import type { Store } from '../store/store.js';
import { MAPPING } from './processor.js';

export interface PlanSyncResult {
  planId: string;
  name: string;
  priceId: string;
  /** True when the provider gave a new price id (a new plan, or a changed amount or currency). */
  changed: boolean;
}

/**
 * Makes a provider price for every plan with a price and stores the plan -> price mapping. An
 * existing mapping is passed as `existingPriceId`, so an unchanged plan keeps its price; a changed
 * one gets a new price and the mapping moves to it.
 */
export async function syncPlanPrices(o: { store: Store; providerName: string; payment: Pick<PaymentProvider, 'upsertPrice'>; logger?: Logger }): Promise<PlanSyncResult[]> {
  const { domain, mappings } = o.store;
  const out: PlanSyncResult[] = [];
  for (const plan of await domain.plans.list()) {
    if (plan.priceCents <= 0) continue;
    const existing = await mappings.findExternal(o.providerName, MAPPING.plan, plan.id);
    const { priceId } = await o.payment.upsertPrice({
      planId: plan.id,
      name: plan.name,
      amountCents: plan.priceCents,
      currency: plan.currency,
      interval: 'month',
      ...(existing ? { existingPriceId: existing.externalId } : {}),
    });
    const changed = existing?.externalId !== priceId;
    if (existing && changed) await mappings.delete(o.providerName, MAPPING.plan, plan.id);
    await mappings.put({ provider: o.providerName, entityType: MAPPING.plan, localId: plan.id, externalId: priceId });
    o.logger?.info({ planId: plan.id, priceId, changed }, `plan ${plan.name}: price ${priceId}`);
    out.push({ planId: plan.id, name: plan.name, priceId, changed });
  }
  return out;
}
