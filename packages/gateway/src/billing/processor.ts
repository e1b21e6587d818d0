import {
  ApigateError,
  describeError,
  type Logger,
  type PaymentEvent,
  type SubscriptionState,
  type SubscriptionStatus,
} from '@apigate/kernel';
import type { Subscription } from '../domain/subscriptions.js';
import type { WebhookDispatcher } from '../delivery/outbound-webhooks.js';
import type { Store } from '../domain/open-store.js';

/** Mapping entity types shared with checkout and `apigate plans sync`. */
export const MAPPING = { user: 'user', plan: 'plan', planYear: 'plan_year' } as const;

/** Days a past_due subscription keeps its plan when neither the option nor the setting says. */
export const DEFAULT_PAST_DUE_GRACE_DAYS = 7;
const DAY_MS = 86_400_000;

export interface PaymentProcessorOptions {
  store: Store;
  logger: Logger;
  /** Outbound `subscription.*` / `payment.*` webhooks; absent: none are sent. */
  webhooks?: Pick<WebhookDispatcher, 'emit'> | undefined;
  /** Days a past_due subscription keeps its plan; default: setting `payment.past_due_grace_days`, else 7. */
  pastDueGraceDays?: number;
  now?: () => Date;
}

/**
 * An event or state that names a customer or price with no local counterpart: retrying cannot
 * help until someone creates the mapping (`apigate plans sync`, a checkout); then replay it.
 */
export class PaymentMappingError extends ApigateError {
  constructor(message: string) {
    super('PAYMENT_MAPPING_MISSING', message);
  }
}

/** What applying an event or a provider state did. */
export interface ApplyResult {
  /** applied: the subscription row moved; skipped: nothing to apply, or older than the stored state. */
  status: 'applied' | 'skipped';
  subscription?: Subscription;
  /** The user's plan after the access rules ran (when a user was found). */
  userPlanId?: string;
}

/** Where a provider fact comes from, for the ordering rules. */
export interface StateSource {
  /** When the provider said it: an event's time, or the time of an API read. */
  at: Date;
  /** The provider's sequence where it has one. */
  sequence?: number | string;
}

/** Statuses that hold the subscription's plan (past_due only during its grace period). */
const ENTITLED: ReadonlySet<string> = new Set(['active', 'trialing']);

interface Fact {
  provider: string;
  subscriptionId: string;
  customerId: string | undefined;
  priceId: string | undefined;
  status: SubscriptionStatus | undefined;
  currentPeriodEnd: Date | undefined;
  cancelAtPeriodEnd: boolean | undefined;
  at: Date;
  sequence: number | string | undefined;
  refUserId: string | undefined;
  /** What to call it in errors. */
  what: string;
}

const text = (v: string | undefined): string | undefined => (v && v.trim() !== '' ? v : undefined);

/**
 * Applies provider facts (webhook events, or states read from the provider's API) to
 * subscriptions and users, under one set of rules:
 *
 * - **Order**: the subscription row keeps the time, provider sequence and status of the fact it
 *   reflects; an older fact changes nothing (time, then sequence, then status precedence: a
 *   terminal status beats active at the same instant; never arrival order).
 * - **Plan**: only the `plan` mapping of the provider's price decides it. `localRefs.planId` is
 *   buyer-settable custom data and is never used.
 * - **User**: the `user` mapping of the customer id. `localRefs.userId` (also custom data) is
 *   accepted only when that customer has no mapping yet, the customer id is new (no stored
 *   subscription has it) and the user has no other customer with this provider; the pairing is then
 *   stored. When a mapping exists and the custom data names someone else, the mapping wins.
 * - **Access**: the user's plan is the best plan (highest price) among their subscriptions that
 *   are active, trialing, or past_due within the grace period. With none, a user whose plan came
 *   from one of their subscriptions goes back to the default plan (unpaid, paused,
 *   incomplete_expired, canceled, and past_due after the grace period all withdraw it).
 */
export class PaymentProcessor {
  readonly #now: () => Date;

  constructor(private readonly o: PaymentProcessorOptions) {
    this.#now = o.now ?? (() => new Date());
  }

  /** Grace period of past_due subscriptions, in milliseconds (the option, else the setting, else 7 days). */
  get graceMs(): number {
    if (this.o.pastDueGraceDays !== undefined) return this.o.pastDueGraceDays * DAY_MS;
    const raw = this.o.store.settings.get(PAST_DUE_GRACE_SETTING);
    const days = raw !== undefined && /^\d+(\.\d+)?$/.test(raw.trim()) ? Number(raw) : DEFAULT_PAST_DUE_GRACE_DAYS;
    return days * DAY_MS;
  }

  /**
   * Applies one normalised event. Throws PaymentMappingError when no local user or plan can be
   * found (the inbox marks it failed; replay it once the mapping exists).
   */
  async applyEvent(provider: string, e: PaymentEvent): Promise<ApplyResult> {
    if (e.type === 'ignored') return { status: 'skipped' };
    const subscriptionId = text(e.subscription?.subscriptionId) ?? text(e.subscriptionId);
    // Nothing to attach it to (a one-off order, say).
    if (!subscriptionId) return { status: 'skipped' };
    const state = e.subscription;
    const status: SubscriptionStatus | undefined =
      e.type === 'subscription.deleted'
        ? state?.status === 'incomplete_expired'
          ? 'incomplete_expired'
          : 'canceled'
        : e.type === 'invoice.payment_failed' && !state
          ? 'past_due'
          : state?.status;
    const result = await this.#apply({
      provider,
      subscriptionId,
      customerId: text(state?.customerId) ?? text(e.customerId),
      priceId: text(state?.priceId) ?? text(e.priceId),
      status: status ?? (e.type === 'checkout.completed' ? 'active' : undefined),
      currentPeriodEnd: state?.currentPeriodEnd,
      cancelAtPeriodEnd: state?.cancelAtPeriodEnd,
      at: e.occurredAt,
      sequence: e.sequence,
      refUserId: text(e.localRefs?.userId),
      what: `payment event ${provider}:${e.id} (${e.type})`,
    });
    if (result.status === 'applied' && result.subscription) await this.#emit(provider, e, result.subscription, result.created);
    else if (result.status === 'skipped')
      this.o.logger.info({ provider, eventId: e.id, type: e.type }, 'payment event older than the stored subscription state: ignored');
    return {
      status: result.status,
      ...(result.subscription ? { subscription: result.subscription } : {}),
      ...(result.userPlanId ? { userPlanId: result.userPlanId } : {}),
    };
  }

  /**
   * Applies a subscription state read from the provider (reconciliation, `subscriptions sync`)
   * through the same rules as events. `source.at` is when it was read: a stored fact from a later
   * event is kept. Throws PaymentMappingError when the customer or price has no local mapping.
   */
  async applyState(provider: string, state: SubscriptionState, source: StateSource): Promise<ApplyResult> {
    const result = await this.#apply({
      provider,
      subscriptionId: state.subscriptionId,
      customerId: text(state.customerId),
      priceId: text(state.priceId),
      status: state.status,
      currentPeriodEnd: state.currentPeriodEnd,
      cancelAtPeriodEnd: state.cancelAtPeriodEnd,
      at: source.at,
      sequence: source.sequence,
      refUserId: undefined,
      what: `${provider} subscription ${state.subscriptionId}`,
    });
    return {
      status: result.status,
      ...(result.subscription ? { subscription: result.subscription } : {}),
      ...(result.userPlanId ? { userPlanId: result.userPlanId } : {}),
    };
  }

  /**
   * Withdraws the plan of users whose past_due subscription outlived the grace period (run
   * periodically by the payment worker). Returns the ids of users whose plan changed.
   */
  async expirePastDue(): Promise<string[]> {
    const due = await this.o.store.domain.subscriptions.listPastDueSince(new Date(this.#now().getTime() - this.graceMs));
    const changed: string[] = [];
    for (const userId of new Set(due.map((s) => s.userId))) {
      const before = (await this.o.store.domain.users.find(userId))?.planId;
      const after = await this.entitle(userId);
      if (after !== undefined && after !== before) changed.push(userId);
    }
    return changed;
  }

  /**
   * Sets the user's plan from their subscriptions (the access rule above) and returns it.
   * Public for the customer path (after an admin cancel, say).
   */
  async entitle(userId: string): Promise<string | undefined> {
    const { domain } = this.o.store;
    const user = await domain.users.find(userId);
    if (!user) return undefined;
    const subs = await domain.subscriptions.listForUser(userId);
    const graceStart = this.#now().getTime() - this.graceMs;
    const entitled = subs.filter(
      (s) => ENTITLED.has(s.status) || (s.status === 'past_due' && (s.pastDueSince ?? s.lastEventAt ?? s.updatedAt).getTime() > graceStart),
    );
    let planId: string | undefined;
    if (entitled.length > 0) {
      let bestPrice = -1;
      for (const s of entitled) {
        const price = (await domain.plans.find(s.planId))?.priceCents ?? 0;
        if (price > bestPrice) {
          bestPrice = price;
          planId = s.planId;
        }
      }
    } else if (subs.some((s) => s.planId === user.planId)) {
      // The plan came from a subscription that no longer grants it. A plan an admin gave by hand stays.
      planId = (await domain.plans.getDefault())?.id;
    }
    if (planId && planId !== user.planId) {
      await domain.users.update(userId, { planId });
      this.o.logger.info({ userId, from: user.planId, to: planId }, 'payment: user plan follows their subscriptions');
    }
    return planId ?? user.planId;
  }

  async #apply(f: Fact): Promise<ApplyResult & { created: boolean }> {
    const { domain, mappings } = this.o.store;
    const existing = await domain.subscriptions.findByExternal(f.provider, f.subscriptionId);
    const customerId = f.customerId ?? existing?.externalCustomerId ?? undefined;
    const userId = existing?.userId ?? (await this.#user(f.provider, customerId, f.refUserId));
    if (!userId) {
      throw new PaymentMappingError(
        `${f.what}: no local user for ${f.provider} customer ${customerId ?? '(none)'}; it must come from a checkout made by this gateway (the customer mapping)`,
      );
    }
    let planId: string | undefined;
    if (f.priceId) {
      // The monthly price (`plan`) or the yearly one (`plan_year`, see plans-sync PRICE_KINDS).
      planId =
        (await mappings.findLocal(f.provider, MAPPING.plan, f.priceId))?.localId ??
        (await mappings.findLocal(f.provider, MAPPING.planYear, f.priceId))?.localId;
      if (!planId) {
        throw new PaymentMappingError(
          `${f.what}: no plan for ${f.provider} price ${f.priceId}; map it with apigate plans sync, then replay the event`,
        );
      }
    } else {
      planId = existing?.planId;
      if (!planId) throw new PaymentMappingError(`${f.what}: the event names no price and the subscription is not known yet`);
    }
    const status = f.status ?? (existing?.status as SubscriptionStatus | undefined) ?? 'active';
    const { subscription, applied } = await domain.subscriptions.sync({
      userId,
      planId,
      provider: f.provider,
      externalCustomerId: customerId ?? null,
      externalSubscriptionId: f.subscriptionId,
      status,
      currentPeriodEnd: f.currentPeriodEnd ?? existing?.currentPeriodEnd ?? null,
      cancelAtPeriodEnd: f.cancelAtPeriodEnd ?? existing?.cancelAtPeriodEnd ?? false,
      lastEventAt: f.at,
      lastEventSeq: f.sequence === undefined ? null : String(f.sequence),
    });
    if (!applied) return { status: 'skipped', subscription, created: false };
    const userPlanId = await this.entitle(userId);
    return { status: 'applied', subscription, created: existing === undefined, ...(userPlanId ? { userPlanId } : {}) };
  }

  async #user(provider: string, customerId: string | undefined, refUserId: string | undefined): Promise<string | undefined> {
    const { domain, mappings } = this.o.store;
    if (!customerId) return undefined;
    const mapped = await mappings.findLocal(provider, MAPPING.user, customerId);
    if (mapped) {
      if (refUserId && refUserId !== mapped.localId) {
        this.o.logger.warn({ provider, customerId }, 'payment: custom data names another user than the customer mapping; the mapping wins');
      }
      return mapped.localId;
    }
    if (!refUserId || !(await domain.users.find(refUserId))) return undefined;
    // Custom data is settable by whoever starts a checkout: trust it only for a customer nobody has yet.
    const own = await mappings.findExternal(provider, MAPPING.user, refUserId);
    if (own && own.externalId !== customerId) {
      this.o.logger.warn(
        { provider, customerId },
        `payment: custom data names user ${refUserId}, who already has another ${provider} customer; not trusted`,
      );
      return undefined;
    }
    if ((await domain.subscriptions.listForCustomer(provider, customerId)).some((s) => s.userId !== refUserId)) {
      this.o.logger.warn(
        { provider, customerId },
        `payment: custom data names user ${refUserId} for a customer another user's subscription has; not trusted`,
      );
      return undefined;
    }
    try {
      await mappings.put({ provider, entityType: MAPPING.user, localId: refUserId, externalId: customerId });
    } catch (err) {
      this.o.logger.warn({ provider, customerId }, `payment: cannot map user ${refUserId} to the customer: ${describeError(err)}`);
      return undefined;
    }
    return refUserId;
  }

  async #emit(provider: string, e: PaymentEvent, s: Subscription, created: boolean): Promise<void> {
    if (!this.o.webhooks) return;
    const type =
      e.type === 'invoice.paid'
        ? 'payment.succeeded'
        : e.type === 'invoice.payment_failed'
          ? 'payment.failed'
          : e.type === 'subscription.deleted'
            ? 'subscription.deleted'
            : created
              ? 'subscription.created'
              : 'subscription.updated';
    const data: Record<string, unknown> = {
      subscription_id: s.id,
      user_id: s.userId,
      plan_id: s.planId,
      status: s.status,
      provider,
      external_subscription_id: s.externalSubscriptionId,
      current_period_end: s.currentPeriodEnd?.toISOString() ?? null,
      cancel_at_period_end: s.cancelAtPeriodEnd,
      ...(e.invoice
        ? {
            invoice: {
              id: e.invoice.id,
              amount_cents: e.invoice.amountCents,
              currency: e.invoice.currency,
              attempt: e.invoice.attempt ?? null,
            },
          }
        : {}),
    };
    // The provider's event id makes the outbound event idempotent: a retried job sends nothing new.
    await this.o.webhooks.emit(type, data, { id: `${provider}:${e.id}`, at: e.occurredAt });
  }
}

/** Setting: days a past_due subscription keeps its plan. */
export const PAST_DUE_GRACE_SETTING = 'payment.past_due_grace_days';
