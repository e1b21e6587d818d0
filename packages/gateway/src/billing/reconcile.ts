import { type CacheProvider, describeError, type Logger, type PaymentProvider, type SubscriptionState } from '@apigate/kernel';
import type { Subscription } from '../domain/subscriptions.js';
import type { Store } from '../domain/open-store.js';
import { LIVE_STATUSES, type SubscriptionStateApplier } from './states.js';
import { type PeriodicJob, startPeriodicJob } from '../store/periodic.js';
import { PLAN_PRICE_TYPES } from './plans-sync.js';
import { MAPPING } from './processor.js';

/** One subscription whose stored state differed from the provider's and was repaired. */
export interface ReconcileChange {
  externalSubscriptionId: string;
  subscriptionId: string | null;
  userId: string | null;
  before: { status: string; planId: string; cancelAtPeriodEnd: boolean; currentPeriodEnd: Date | null } | null;
  after: { status: string; planId: string | null; cancelAtPeriodEnd: boolean; currentPeriodEnd: Date | null };
}

export interface ReconcileResult {
  provider: string;
  /** Subscriptions the provider listed (or was asked about). */
  checked: number;
  changed: ReconcileChange[];
  /** Subscriptions at the provider this gateway never sold (no customer or price mapping): left alone. */
  unknown: number;
  /** Subscriptions that could not be read or applied, with the one-line reason. */
  errors: { externalSubscriptionId: string; error: string }[];
}

export interface ReconcileOptions {
  store: Store;
  logger: Logger;
  providerName: string;
  payment: Pick<PaymentProvider, 'listSubscriptions' | 'getSubscription'>;
  applier: SubscriptionStateApplier;
  /** Only this user's subscriptions (their customer's, plus the ones stored for them). */
  userId?: string | undefined;
  now?: () => Date;
}

const sameTime = (a: Date | null | undefined, b: Date | null | undefined) => (a?.getTime() ?? null) === (b?.getTime() ?? null);

/**
 * Reads subscriptions from the provider and repairs drift: a webhook the provider gave up on
 * (LemonSqueezy retries 3 times) or sent while we were down leaves the stored state behind. Every
 * subscription the provider lists (for the user's customer, or all) is compared with the stored
 * one; stored live subscriptions it did not list are read one by one. A difference is applied
 * through the processor's state apply, so the same access rules decide the plan.
 */
export async function reconcileSubscriptions(o: ReconcileOptions): Promise<ReconcileResult> {
  const { domain, mappings } = o.store;
  const now = o.now ?? (() => new Date());
  const result: ReconcileResult = { provider: o.providerName, checked: 0, changed: [], unknown: 0, errors: [] };
  let customerId: string | undefined;
  if (o.userId !== undefined) {
    await domain.users.get(o.userId);
    customerId = (await mappings.findExternal(o.providerName, MAPPING.user, o.userId))?.externalId;
  }

  const seen = new Set<string>();
  const check = async (state: SubscriptionState) => {
    seen.add(state.subscriptionId);
    result.checked++;
    let stored: Subscription | undefined;
    try {
      stored = await domain.subscriptions.findByExternal(o.providerName, state.subscriptionId);
      const planId = await planOf(o, state.priceId);
      if (stored && !differs(stored, state, planId)) return;
      if (!stored && !LIVE_STATUSES.has(state.status)) return; // ended before we ever knew it: nothing to repair
      await o.applier.applyState(o.providerName, state, { at: now() });
      const after = await domain.subscriptions.findByExternal(o.providerName, state.subscriptionId);
      // The stored state came from a later event (the read was older): nothing was repaired.
      if (stored && after && !moved(stored, after)) return;
      const change: ReconcileChange = {
        externalSubscriptionId: state.subscriptionId,
        subscriptionId: after?.id ?? stored?.id ?? null,
        userId: after?.userId ?? stored?.userId ?? null,
        before: stored
          ? {
              status: stored.status,
              planId: stored.planId,
              cancelAtPeriodEnd: stored.cancelAtPeriodEnd,
              currentPeriodEnd: stored.currentPeriodEnd,
            }
          : null,
        after: {
          status: state.status,
          planId: after?.planId ?? planId ?? null,
          cancelAtPeriodEnd: state.cancelAtPeriodEnd,
          currentPeriodEnd: state.currentPeriodEnd ?? null,
        },
      };
      result.changed.push(change);
      o.logger.info(
        { provider: o.providerName, ...change },
        `reconcile: ${state.subscriptionId} repaired (${change.before?.status ?? 'unknown'} -> ${state.status})`,
      );
    } catch (err) {
      if (!stored && (err as { code?: string }).code === 'PAYMENT_MAPPING_MISSING') result.unknown++;
      else result.errors.push({ externalSubscriptionId: state.subscriptionId, error: describeError(err) });
    }
  };

  if (o.userId === undefined || customerId !== undefined) {
    for await (const state of o.payment.listSubscriptions(customerId !== undefined ? { customerId } : {})) await check(state);
  }
  // Stored live subscriptions the list did not include (another customer id, or the provider lost them).
  const stored = o.userId !== undefined ? await domain.subscriptions.listForUser(o.userId) : await allLive(o.store, o.providerName);
  for (const s of stored) {
    if (s.provider !== o.providerName || !s.externalSubscriptionId || seen.has(s.externalSubscriptionId) || !LIVE_STATUSES.has(s.status))
      continue;
    let state: SubscriptionState;
    try {
      state = await o.payment.getSubscription(s.externalSubscriptionId);
    } catch (err) {
      result.checked++;
      result.errors.push({ externalSubscriptionId: s.externalSubscriptionId, error: describeError(err) });
      continue;
    }
    await check(state);
  }
  return result;
}

async function allLive(store: Store, provider: string): Promise<Subscription[]> {
  const out: Subscription[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.domain.subscriptions.list({ provider, limit: 1000, ...(cursor ? { cursor } : {}) });
    out.push(...page.items.filter((s) => LIVE_STATUSES.has(s.status)));
    cursor = page.cursor;
  } while (cursor);
  return out;
}

async function planOf(o: ReconcileOptions, priceId: string): Promise<string | undefined> {
  if (!priceId) return undefined;
  for (const type of PLAN_PRICE_TYPES) {
    const m = await o.store.mappings.findLocal(o.providerName, type, priceId);
    if (m) return m.localId;
  }
  return undefined;
}

const moved = (a: Subscription, b: Subscription) =>
  a.status !== b.status ||
  a.planId !== b.planId ||
  a.cancelAtPeriodEnd !== b.cancelAtPeriodEnd ||
  !sameTime(a.currentPeriodEnd, b.currentPeriodEnd);

function differs(stored: Subscription, state: SubscriptionState, planId: string | undefined): boolean {
  return (
    stored.status !== state.status ||
    stored.cancelAtPeriodEnd !== state.cancelAtPeriodEnd ||
    (state.currentPeriodEnd !== undefined && !sameTime(stored.currentPeriodEnd, state.currentPeriodEnd)) ||
    (planId !== undefined && stored.planId !== planId)
  );
}

export interface ReconcilerOptions extends Omit<ReconcileOptions, 'userId'> {
  intervalMs: number;
  /** With a shared cache, one instance runs each round (a lock held for the interval). */
  cache?: CacheProvider | undefined;
}

/** Runs `reconcileSubscriptions` every interval (unref timer); `stop()` waits for a running round. */
export function startReconciler(o: ReconcilerOptions): PeriodicJob<ReconcileResult> {
  return startPeriodicJob({
    intervalMs: o.intervalMs,
    cache: o.cache,
    lockKey: `payment:reconcile:${o.providerName}`,
    exclusive: (name, fn) => o.store.exclusive(name, fn),
    logger: o.logger,
    failure: 'payment reconciliation failed',
    logFields: { provider: o.providerName },
    run: async () => {
      const r = await reconcileSubscriptions(o);
      if (r.changed.length || r.errors.length) {
        o.logger.info(
          { provider: o.providerName, checked: r.checked, changed: r.changed.length, errors: r.errors.length },
          'payment reconciliation done',
        );
      }
      return r;
    },
  });
}
