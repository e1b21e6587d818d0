import {
  ApigateError,
  describeError,
  InvalidInputError,
  type Invoice,
  type Kernel,
  type Logger,
  type PaymentFeatures,
  type PaymentProvider,
  ProviderError,
  type SubscriptionState,
} from '@apigate/kernel';
import type { Plan } from '../domain/plans.js';
import type { Subscription } from '../domain/subscriptions.js';
import type { User } from '../domain/users.js';
import type { Store } from '../domain/open-store.js';
import { PRICE_KINDS, type PriceKind, syncPlan } from './plans-sync.js';
import { MAPPING, PaymentProcessor } from './processor.js';
import { selectedPayment } from './inbound-webhooks.js';
import { LIVE_STATUSES, type SubscriptionStateApplier } from './states.js';
import { type ReconcileResult, reconcileSubscriptions } from './reconcile.js';
import { reportOverage, type UsageReportResult } from './usage-report.js';

export type BillingStatus = 400 | 404 | 409 | 501 | 502 | 503;

/** A billing request that cannot be done, with the HTTP status the portal and admin API answer. */
export class BillingError extends ApigateError {
  constructor(
    readonly status: BillingStatus,
    code: string,
    message: string,
    readonly field?: string,
    cause?: unknown,
  ) {
    super(code, message, cause === undefined ? undefined : { cause });
  }

  /** The message with the provider's own reason, for admins (the portal shows only `message`). */
  get detail(): string {
    return this.cause === undefined ? this.message : `${this.message}: ${describeError(this.cause)}`;
  }
}

export interface CustomerBillingOptions {
  store: Store;
  logger: Logger;
  providerName: string;
  payment: PaymentProvider;
  features?: PaymentFeatures | undefined;
  /** Where the provider's answers to change and cancel are applied; without it they wait for the provider's webhook. */
  applier?: SubscriptionStateApplier | undefined;
  now?: () => Date;
}

export type BillingInterval = 'month' | 'year';

/** What GET /portal/api/billing shows. */
export interface BillingOverview {
  provider: string;
  plan: {
    id: string;
    name: string;
    priceCents: number;
    yearlyPriceCents: number | null;
    currency: string;
    overageCentsPerRequest: number | null;
  } | null;
  subscription: {
    id: string;
    status: string;
    planId: string;
    currentPeriodEnd: Date | null;
    cancelAtPeriodEnd: boolean;
  } | null;
  /** What the provider can and cannot do, so a UI hides what would fail. */
  features: { customerPortal: boolean; meteredBilling: boolean; immediateCancel: boolean; checkoutTrials: boolean; invoices: boolean };
  /** The customer's invoices at the provider, newest first (at most 12); null where the provider has no invoice list, or it failed. */
  invoices: Invoice[] | null;
  /** Why `invoices` is null although the provider has them (the provider's own reason stays in the log). */
  invoices_error?: string;
}

/** How many invoices the billing overview shows. */
export const OVERVIEW_INVOICES = 12;

/**
 * The customer's side of billing over the kernel's payment capability: checkout, the billing
 * overview, the provider's customer portal, plan change and cancel. A plan is never granted here:
 * only a verified provider event (or, after change and cancel, the provider's own answer applied
 * through the processor's rules) moves the user's plan.
 */
export class CustomerBilling {
  readonly providerName: string;
  readonly features: Required<Omit<PaymentFeatures, 'webhookPath'>>;
  readonly #now: () => Date;

  constructor(private readonly o: CustomerBillingOptions) {
    this.providerName = o.providerName;
    const f = o.features ?? {};
    this.features = {
      meteredBilling: f.meteredBilling === true,
      customerPortal: f.customerPortal === true,
      checkoutTrials: f.checkoutTrials !== false,
      immediateCancel: f.immediateCancel !== false,
      invoices: f.invoices === true && typeof o.payment.listInvoices === 'function',
    };
    this.#now = o.now ?? (() => new Date());
  }

  get payment(): PaymentProvider {
    return this.o.payment;
  }

  /** The provider customer of a user: the stored mapping, else a new customer, mapped. */
  async customerFor(user: User): Promise<string> {
    const { mappings } = this.o.store;
    const existing = await mappings.findExternal(this.providerName, MAPPING.user, user.id);
    if (existing) return existing.externalId;
    const { customerId } = await this.call('createCustomer', () =>
      this.o.payment.createCustomer({ userId: user.id, email: user.email, ...(user.name ? { name: user.name } : {}) }),
    );
    try {
      await mappings.put({ provider: this.providerName, entityType: MAPPING.user, localId: user.id, externalId: customerId });
      return customerId;
    } catch (err) {
      // A concurrent checkout of the same user mapped its customer first: use that one, drop ours.
      const winner = await mappings.findExternal(this.providerName, MAPPING.user, user.id);
      if (!winner) throw err;
      await this.o.payment.deleteCustomer(customerId).catch((e: unknown) => {
        this.o.logger.warn(
          { provider: this.providerName, userId: user.id },
          `billing: cannot delete the spare customer: ${describeError(e)}`,
        );
      });
      return winner.externalId;
    }
  }

  /** The provider price of a plan, synced first when the mapping is missing (the plan-sync job may not have run yet). */
  async priceFor(plan: Plan, kind: PriceKind): Promise<string | undefined> {
    const { mappings } = this.o.store;
    const type = PRICE_KINDS[kind];
    const found = await mappings.findExternal(this.providerName, type, plan.id);
    if (found) return found.externalId;
    const synced = await this.call('upsertPrice', () =>
      syncPlan(
        { store: this.o.store, providerName: this.providerName, payment: this.o.payment, features: this.o.features, logger: this.o.logger },
        plan,
      ),
    );
    return synced.find((r) => r.kind === kind)?.priceId;
  }

  /** The subscription that decides the user's billing: live ones first (entitled before others), newest first. */
  async current(userId: string): Promise<Subscription | undefined> {
    const subs = (await this.o.store.domain.subscriptions.listForUser(userId)).filter((s) => s.provider === this.providerName);
    const rank = (s: Subscription) => (s.status === 'active' || s.status === 'trialing' ? 0 : LIVE_STATUSES.has(s.status) ? 1 : 2);
    return subs.sort((a, b) => rank(a) - rank(b) || b.createdAt.getTime() - a.createdAt.getTime())[0];
  }

  async #live(userId: string, action: string): Promise<Subscription> {
    const sub = await this.current(userId);
    if (!sub || !LIVE_STATUSES.has(sub.status) || !sub.externalSubscriptionId) {
      throw new BillingError(
        409,
        'NO_SUBSCRIPTION',
        `${action}: there is no running subscription to ${action}; subscribe first with POST /portal/api/billing/checkout`,
      );
    }
    return sub;
  }

  async #plan(ref: unknown): Promise<Plan> {
    if (typeof ref !== 'string' || ref.trim() === '')
      throw new BillingError(400, 'INVALID_INPUT', 'plan: expected a plan id or name', 'plan');
    const plan = await this.o.store.domain.plans.resolve(ref.trim()).catch(() => undefined);
    if (!plan) throw new BillingError(404, 'PLAN_NOT_FOUND', `plan: no plan with id or name "${ref}"`, 'plan');
    if (plan.priceCents <= 0)
      throw new BillingError(400, 'PLAN_NOT_FOR_SALE', `plan: ${plan.name} has no price, so there is nothing to buy`, 'plan');
    return plan;
  }

  async #price(plan: Plan, interval: BillingInterval): Promise<string> {
    if (interval === 'year' && plan.yearlyPriceCents === null) {
      throw new BillingError(400, 'NO_YEARLY_PRICE', `interval: ${plan.name} has no yearly price; use month`, 'interval');
    }
    const priceId = await this.priceFor(plan, interval);
    if (!priceId)
      throw new BillingError(
        400,
        'PLAN_WITHOUT_PRICE',
        `plan: ${plan.name} has no ${interval}ly price at ${this.providerName}; run apigate plans sync`,
        'plan',
      );
    return priceId;
  }

  /**
   * The provider's checkout URL for a plan. The plan is granted later, by the provider's verified
   * event, never by the customer reaching `successUrl`.
   */
  async checkout(
    user: User,
    i: { plan: unknown; interval?: BillingInterval; returnBase: string },
  ): Promise<{ url: string; sessionId: string }> {
    const plan = await this.#plan(i.plan);
    const interval = i.interval ?? 'month';
    const current = await this.current(user.id);
    if (current && LIVE_STATUSES.has(current.status)) {
      throw new BillingError(
        409,
        'ALREADY_SUBSCRIBED',
        `checkout: you already have a ${current.status} subscription; change plans with POST /portal/api/billing/change instead`,
      );
    }
    const priceId = await this.#price(plan, interval);
    const metered = this.features.meteredBilling
      ? await this.priceFor(plan, interval === 'year' ? 'overageYear' : 'overageMonth')
      : undefined;
    const customerId = await this.customerFor(user);
    const trialDays = plan.trialDays > 0 && this.features.checkoutTrials ? plan.trialDays : undefined;
    return this.call('createCheckout', () =>
      this.o.payment.createCheckout({
        customerId,
        priceId,
        userId: user.id,
        planId: plan.id,
        successUrl: `${i.returnBase}/portal/billing?checkout=success`,
        cancelUrl: `${i.returnBase}/portal/billing?checkout=cancel`,
        ...(trialDays ? { trialDays } : {}),
        ...(metered ? { meteredPriceId: metered } : {}),
      }),
    );
  }

  async overview(user: User): Promise<BillingOverview> {
    const { domain } = this.o.store;
    const [plan, sub, invoices] = await Promise.all([domain.plans.find(user.planId), this.current(user.id), this.#invoices(user)]);
    return {
      provider: this.providerName,
      plan: plan
        ? {
            id: plan.id,
            name: plan.name,
            priceCents: plan.priceCents,
            yearlyPriceCents: plan.yearlyPriceCents,
            currency: plan.currency,
            overageCentsPerRequest: plan.overageCentsPerRequest,
          }
        : null,
      subscription: sub
        ? {
            id: sub.id,
            status: sub.status,
            planId: sub.planId,
            currentPeriodEnd: sub.currentPeriodEnd,
            cancelAtPeriodEnd: sub.cancelAtPeriodEnd,
          }
        : null,
      features: { ...this.features },
      ...invoices,
    };
  }

  /** The user's invoices for the overview; a provider failure leaves them out (null + a masked reason) instead of failing it. */
  async #invoices(user: User): Promise<Pick<BillingOverview, 'invoices' | 'invoices_error'>> {
    if (!this.features.invoices) return { invoices: null };
    const mapping = await this.o.store.mappings.findExternal(this.providerName, MAPPING.user, user.id);
    if (!mapping) return { invoices: [] };
    try {
      const list = await this.call('listInvoices', () =>
        this.o.payment.listInvoices!({ customerId: mapping.externalId, limit: OVERVIEW_INVOICES }),
      );
      return { invoices: [...list].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime()).slice(0, OVERVIEW_INVOICES) };
    } catch (err) {
      // `call` logged the provider's reason; the customer sees only BillingError's masked message.
      return { invoices: null, invoices_error: err instanceof BillingError ? err.message : 'invoices are not available right now' };
    }
  }

  async portal(user: User, returnUrl: string): Promise<{ url: string }> {
    if (!this.features.customerPortal) {
      throw new BillingError(501, 'PORTAL_UNSUPPORTED', `billing portal: the payment provider ${this.providerName} has no customer portal`);
    }
    const mapping = await this.o.store.mappings.findExternal(this.providerName, MAPPING.user, user.id);
    if (!mapping)
      throw new BillingError(
        409,
        'NO_CUSTOMER',
        'billing portal: you have no billing account yet; subscribe first with POST /portal/api/billing/checkout',
      );
    return this.call('createPortalSession', () => this.o.payment.createPortalSession({ customerId: mapping.externalId, returnUrl }));
  }

  /** Moves the running subscription to another plan's price; the provider prorates. */
  async change(user: User, i: { plan: unknown; interval?: BillingInterval }): Promise<Subscription> {
    const plan = await this.#plan(i.plan);
    const sub = await this.#live(user.id, 'change');
    const priceId = await this.#price(plan, i.interval ?? 'month');
    const state = await this.call('changeSubscription', () =>
      this.o.payment.changeSubscription({ subscriptionId: sub.externalSubscriptionId!, priceId }),
    );
    return this.#applied(sub, state);
  }

  /** Cancels the user's running subscription at the end of the paid period. */
  async cancel(user: User): Promise<Subscription> {
    const sub = await this.#live(user.id, 'cancel');
    return this.cancelSubscription(sub, { now: false });
  }

  /** Cancels a subscription (admins may cancel now, where the provider allows it). */
  async cancelSubscription(sub: Subscription, o: { now: boolean }): Promise<Subscription> {
    if (sub.provider !== this.providerName) {
      throw new BillingError(
        409,
        'OTHER_PROVIDER',
        `subscription ${sub.id} is at ${sub.provider}, not the selected payment provider ${this.providerName}`,
      );
    }
    if (!sub.externalSubscriptionId)
      throw new BillingError(409, 'NO_EXTERNAL_ID', `subscription ${sub.id} has no ${sub.provider} subscription id`);
    if (o.now && !this.features.immediateCancel) {
      throw new BillingError(
        501,
        'IMMEDIATE_CANCEL_UNSUPPORTED',
        `cancel now: ${this.providerName} cancels only at the end of the paid period; cancel at period end, or refund and cancel in its dashboard`,
      );
    }
    const state = await this.call('cancelSubscription', () =>
      this.o.payment.cancelSubscription({ subscriptionId: sub.externalSubscriptionId!, atPeriodEnd: !o.now }),
    );
    return this.#applied(sub, state);
  }

  /** Applies a provider state through the applier (the processor's access rules). */
  async applyState(provider: string, state: SubscriptionState, o: { at: Date }): Promise<unknown> {
    if (!this.o.applier) throw new BillingError(503, 'RECONCILE_UNAVAILABLE', 'the payment processor is not available');
    return this.o.applier.applyState(provider, state, o);
  }

  /** `reconcileSubscriptions` with this provider and applier (what `apigate subscriptions sync` runs). */
  async reconcile(o: { userId?: string | undefined } = {}): Promise<ReconcileResult> {
    if (!this.o.applier) throw new BillingError(503, 'RECONCILE_UNAVAILABLE', 'subscriptions sync: the payment processor is not available');
    return reconcileSubscriptions({
      store: this.o.store,
      logger: this.o.logger,
      providerName: this.providerName,
      payment: this.o.payment,
      applier: this.o.applier,
      ...(o.userId !== undefined ? { userId: o.userId } : {}),
      now: this.#now,
    });
  }

  /** `reportOverage` with this provider: overage above the quota reported for metered billing. */
  reportOverage(): Promise<UsageReportResult> {
    return reportOverage({
      store: this.o.store,
      logger: this.o.logger,
      providerName: this.providerName,
      payment: this.o.payment,
      features: this.o.features,
      now: this.#now,
    });
  }

  /** The provider's answer is a provider API read: applied through the processor's rules, else left to the webhook. */
  async #applied(sub: Subscription, state: SubscriptionState): Promise<Subscription> {
    if (this.o.applier) {
      await this.o.applier.applyState(this.providerName, state, { at: this.#now() });
      return (await this.o.store.domain.subscriptions.find(sub.id)) ?? sub;
    }
    return sub;
  }

  /** Runs a provider call; its refusals become BillingErrors (bad input 400, anything else 502) with the provider's one-line reason. */
  async call<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof BillingError) throw err;
      this.o.logger.warn({ provider: this.providerName, operation }, `billing: ${operation} failed: ${describeError(err)}`);
      if (err instanceof InvalidInputError)
        throw new BillingError(400, 'PAYMENT_REFUSED', `${this.providerName} refused ${operation}: ${err.message}`);
      const retryable = err instanceof ProviderError && err.retryable;
      throw new BillingError(
        502,
        'PAYMENT_PROVIDER_ERROR',
        `the payment provider ${this.providerName} failed (${operation})${retryable ? '; try again shortly' : ''}`,
        undefined,
        err,
      );
    }
  }
}

/**
 * The customer billing of the kernel's selected payment provider, applying provider answers
 * through a PaymentProcessor on the same store; undefined when no payment provider is selected.
 */
export function customerBillingFor(
  kernel: Kernel,
  o: { store: Store; logger: Logger; applier?: SubscriptionStateApplier; now?: () => Date },
): CustomerBilling | undefined {
  const pay = selectedPayment(kernel);
  if (!pay) return undefined;
  const features = kernel.selected('payment')?.features;
  return new CustomerBilling({
    store: o.store,
    logger: o.logger,
    providerName: pay.name,
    payment: pay.payment,
    features,
    applier: o.applier ?? new PaymentProcessor({ store: o.store, logger: o.logger, ...(o.now ? { now: o.now } : {}) }),
    ...(o.now ? { now: o.now } : {}),
  });
}
