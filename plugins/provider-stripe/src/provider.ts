import { createHash } from 'node:crypto';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import {
  type CheckoutInput,
  type Health,
  InvalidInputError,
  type Invoice,
  type PaymentEvent,
  type PaymentProvider,
  ProviderError,
  type SubscriptionState,
  type UpsertPriceInput,
  type VerifiedWebhook,
  type WebhookInput,
  WebhookModeMismatchError,
  WebhookSignatureError,
} from '@apigate/kernel';
import Stripe from 'stripe';
import { toStripeProviderError } from './errors.js';
import { invoiceOf } from './invoices.js';
import {
  type EventLike,
  idOf,
  isEnded,
  META_PLAN,
  META_USER,
  normaliseEvent,
  planItem,
  type SubscriptionLike,
  subscriptionState,
} from './normalise.js';

export interface StripeConfig {
  apiKey: string;
  webhookSecret: string;
  baseUrl: string;
  meterEventName: string;
  timeoutMs: number;
  maxNetworkRetries: number;
}

/** How long the SDK's own tolerance lets a signature age (stripe.webhooks.DEFAULT_TOLERANCE). */
export const WEBHOOK_TOLERANCE_SECONDS = 300;
const PAGE_SIZE = 100;
/** Stripe keeps meter event identifiers to 100 characters. */
const MAX_IDENTIFIER = 100;

/** The product that holds a plan's prices has an id derived from the plan, so a retried sync finds it instead of making a second. */
export function productIdFor(planId: string): string {
  return /^[A-Za-z0-9_-]{1,56}$/.test(planId)
    ? `apigate_${planId}`
    : `apigate_${createHash('sha256').update(planId).digest('hex').slice(0, 40)}`;
}

const isMissing = (err: unknown): boolean => err instanceof Stripe.errors.StripeError && err.code === 'resource_missing';

function invalid(operation: string, what: string): InvalidInputError {
  return new InvalidInputError(`payment/stripe ${operation} ${what}`);
}

function requireText(value: unknown, operation: string, field: string): string {
  if (typeof value !== 'string' || value.trim() === '') throw invalid(operation, `${field}: a non-empty string is required`);
  return value;
}

function requireUrl(value: unknown, operation: string, field: string): string {
  if (typeof value !== 'string' || !URL.canParse(value)) throw invalid(operation, `${field}: an absolute URL is required`);
  return value;
}

interface PriceTerms {
  amountCents: number;
  currency: string;
  interval: 'month' | 'year';
  metered: boolean;
}

/**
 * Payments through Stripe with the official SDK. Every call goes through `call`, which turns
 * SDK errors into ProviderErrors with Stripe's status and code, with `retryable` set
 * by the SDK's own retry rules.
 */
export class StripePayment implements PaymentProvider {
  readonly stripe: Stripe;
  private readonly agent: HttpAgent | HttpsAgent;
  private readonly host: string;
  private meterId: Promise<string> | undefined;

  constructor(private readonly cfg: StripeConfig) {
    const url = new URL(cfg.baseUrl);
    const https = url.protocol === 'https:';
    this.host = url.host;
    // An agent per instance (the SDK's default is shared by the process), so close() can let go of its sockets.
    this.agent = https ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true });
    this.stripe = new Stripe(cfg.apiKey, {
      host: url.hostname,
      port: url.port || (https ? 443 : 80),
      protocol: https ? 'https' : 'http',
      httpAgent: this.agent,
      timeout: cfg.timeoutMs,
      maxNetworkRetries: cfg.maxNetworkRetries,
      telemetry: false,
      appInfo: { name: 'APIGate' },
    });
  }

  private fail(err: unknown, operation: string): Error {
    if (err instanceof InvalidInputError || err instanceof ProviderError) return err;
    return toStripeProviderError(err, operation, this.host);
  }

  private async call<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.fail(err, operation);
    }
  }

  // -- customers --------------------------------------------------------------------------

  createCustomer(i: { userId: string; email: string; name?: string }) {
    return this.call('createCustomer', async () => {
      const customer = await this.stripe.customers.create({
        email: requireText(i.email, 'createCustomer', 'email'),
        ...(i.name ? { name: i.name } : {}),
        metadata: { [META_USER]: requireText(i.userId, 'createCustomer', 'userId') },
      });
      return { customerId: customer.id };
    });
  }

  /** Idempotent: a customer Stripe no longer knows is already deleted. Stripe ends their subscriptions. */
  deleteCustomer(customerId: string) {
    return this.call('deleteCustomer', async () => {
      try {
        await this.stripe.customers.del(requireText(customerId, 'deleteCustomer', 'customerId'));
      } catch (err) {
        if (!isMissing(err)) throw err;
      }
    });
  }

  // -- catalogue --------------------------------------------------------------------------

  /**
   * A product per plan (id `apigate_<planId>`, metadata apigate_plan_id) holding one active
   * price. Prices are immutable in Stripe, so a new amount, currency, interval or metering makes
   * a new price and archives the old one; a rename only renames the product. A matching active
   * price already on the product is reused, so a sync retried after a lost answer makes no duplicate.
   */
  upsertPrice(i: UpsertPriceInput) {
    return this.call('upsertPrice', async () => {
      const planId = requireText(i.planId, 'upsertPrice', 'planId');
      const name = requireText(i.name, 'upsertPrice', 'name');
      if (!Number.isInteger(i.amountCents) || i.amountCents < 0) {
        throw invalid('upsertPrice', 'amountCents: a whole number of cents, 0 or more, is required');
      }
      if (!/^[a-z]{3}$/i.test(i.currency ?? '')) throw invalid('upsertPrice', 'currency: a 3-letter ISO code is required');
      if (i.interval !== 'month' && i.interval !== 'year') throw invalid('upsertPrice', 'interval: month or year is required');
      const terms: PriceTerms = {
        amountCents: i.amountCents,
        currency: i.currency.toLowerCase(),
        interval: i.interval,
        metered: i.metered ?? false,
      };
      const meterId = terms.metered ? await this.meter() : undefined;

      let current: Stripe.Price | undefined;
      if (i.existingPriceId) {
        try {
          current = await this.stripe.prices.retrieve(i.existingPriceId);
        } catch (err) {
          if (!isMissing(err)) throw err;
        }
      }
      const productId = current ? idOf(current.product)! : productIdFor(planId);
      await this.syncProduct(productId, planId, name);

      const fits = (p: Stripe.Price) => p.active && matches(p, terms, meterId);
      if (current && fits(current)) return { priceId: current.id, productId };
      let price: Stripe.Price | undefined;
      for await (const p of this.stripe.prices.list({ product: productId, active: true, limit: PAGE_SIZE })) {
        if (fits(p)) {
          price = p;
          break;
        }
      }
      price ??= await this.stripe.prices.create({
        product: productId,
        currency: terms.currency,
        unit_amount: terms.amountCents,
        nickname: name,
        recurring: { interval: terms.interval, usage_type: terms.metered ? 'metered' : 'licensed', ...(meterId ? { meter: meterId } : {}) },
        metadata: { [META_PLAN]: planId },
      });
      if (current?.active && current.id !== price.id) await this.stripe.prices.update(current.id, { active: false });
      return { priceId: price.id, productId };
    });
  }

  /** Creates the plan's product when missing (a concurrent creator wins without error) and keeps its name and active flag. */
  private async syncProduct(productId: string, planId: string, name: string): Promise<void> {
    let product: Stripe.Product;
    try {
      product = await this.stripe.products.retrieve(productId);
    } catch (err) {
      if (!isMissing(err)) throw err;
      try {
        await this.stripe.products.create({ id: productId, name, metadata: { [META_PLAN]: planId } });
        return;
      } catch (createErr) {
        if (!(createErr instanceof Stripe.errors.StripeError && createErr.code === 'resource_already_exists')) throw createErr;
        product = await this.stripe.products.retrieve(productId);
      }
    }
    if (product.name !== name || !product.active) await this.stripe.products.update(productId, { name, active: true });
  }

  /**
   * The billing meter metered prices attach to (the API has required one since 2025-03-31.basil):
   * one per gateway, found by its event name or made on first use, summing `value` per customer.
   */
  private meter(): Promise<string> {
    this.meterId ??= (async () => {
      for await (const m of this.stripe.billing.meters.list({ limit: PAGE_SIZE })) {
        if (m.event_name !== this.cfg.meterEventName) continue;
        if (m.status === 'inactive') await this.stripe.billing.meters.reactivate(m.id);
        return m.id;
      }
      const created = await this.stripe.billing.meters.create({
        display_name: 'APIGate API requests',
        event_name: this.cfg.meterEventName,
        default_aggregation: { formula: 'sum' },
        customer_mapping: { type: 'by_id', event_payload_key: 'stripe_customer_id' },
        value_settings: { event_payload_key: 'value' },
      });
      return created.id;
    })().catch((err: unknown) => {
      this.meterId = undefined;
      throw err;
    });
    return this.meterId;
  }

  /** Idempotent. Subscriptions keep an archived price; new checkouts refuse it. */
  archivePrice(priceId: string) {
    return this.call('archivePrice', async () => {
      await this.stripe.prices.update(requireText(priceId, 'archivePrice', 'priceId'), { active: false });
    });
  }

  // -- checkout and portal ----------------------------------------------------------------

  createCheckout(i: CheckoutInput) {
    return this.call('createCheckout', async () => {
      const userId = requireText(i.userId, 'createCheckout', 'userId');
      const planId = requireText(i.planId, 'createCheckout', 'planId');
      const successUrl = requireUrl(i.successUrl, 'createCheckout', 'successUrl');
      const cancelUrl = requireUrl(i.cancelUrl, 'createCheckout', 'cancelUrl');
      if (i.trialDays !== undefined && (!Number.isInteger(i.trialDays) || i.trialDays < 0)) {
        throw invalid('createCheckout', 'trialDays: a whole number, 0 or more, is required');
      }
      // Checkout refuses a quantity on a metered line item and needs one otherwise.
      const price = await this.stripe.prices.retrieve(requireText(i.priceId, 'createCheckout', 'priceId'));
      if (!price.active) throw invalid('createCheckout', `priceId: price "${price.id}" is archived`);
      const metered = price.recurring?.usage_type === 'metered';
      // The overage price: a metered item next to the plan's, billed from the meter events reportUsage sends.
      const overage =
        i.meteredPriceId !== undefined
          ? await this.stripe.prices.retrieve(requireText(i.meteredPriceId, 'createCheckout', 'meteredPriceId'))
          : undefined;
      if (overage && (overage.recurring?.usage_type !== 'metered' || !overage.active)) {
        throw invalid('createCheckout', `meteredPriceId: price "${overage.id}" is ${overage.active ? 'not metered' : 'archived'}`);
      }
      const metadata = { [META_USER]: userId, [META_PLAN]: planId };
      const session = await this.stripe.checkout.sessions.create({
        mode: 'subscription',
        customer: requireText(i.customerId, 'createCheckout', 'customerId'),
        client_reference_id: userId,
        line_items: [{ price: price.id, ...(metered ? {} : { quantity: 1 }) }, ...(overage ? [{ price: overage.id }] : [])],
        success_url: successUrl,
        cancel_url: cancelUrl,
        metadata,
        subscription_data: { metadata, ...(i.trialDays ? { trial_period_days: i.trialDays } : {}) },
      });
      if (!session.url) throw new Error(`Stripe returned checkout session ${session.id} without a url`);
      return { url: session.url, sessionId: session.id };
    });
  }

  createPortalSession(i: { customerId: string; returnUrl: string }) {
    return this.call('createPortalSession', async () => {
      const session = await this.stripe.billingPortal.sessions.create({
        customer: requireText(i.customerId, 'createPortalSession', 'customerId'),
        return_url: requireUrl(i.returnUrl, 'createPortalSession', 'returnUrl'),
      });
      return { url: session.url };
    });
  }

  // -- subscriptions ----------------------------------------------------------------------

  private async retrieveSubscription(subscriptionId: string, operation: string): Promise<Stripe.Subscription> {
    return this.stripe.subscriptions.retrieve(requireText(subscriptionId, operation, 'subscriptionId'));
  }

  getSubscription(subscriptionId: string) {
    return this.call('getSubscription', async () => state(await this.retrieveSubscription(subscriptionId, 'getSubscription')));
  }

  /**
   * Every status, not only live ones (the API's default leaves out canceled), page by page.
   * Stripe keeps no last-modified time on subscriptions, so `updatedSince` only drops those that
   * ended before it (they cannot change again); every live one is listed. A superset is what
   * reconciliation needs: an update is never missed.
   */
  async *listSubscriptions(i: { customerId?: string; updatedSince?: Date }): AsyncGenerator<SubscriptionState> {
    const since = i.updatedSince ? Math.floor(i.updatedSince.getTime() / 1000) : undefined;
    try {
      const pages = this.stripe.subscriptions.list({
        status: 'all',
        limit: PAGE_SIZE,
        ...(i.customerId ? { customer: i.customerId } : {}),
      });
      for await (const sub of pages) {
        if (since !== undefined && isEnded(sub.status) && typeof sub.ended_at === 'number' && sub.ended_at < since) continue;
        yield state(sub);
      }
    } catch (err) {
      throw this.fail(err, 'listSubscriptions');
    }
  }

  /** The customer's finalized invoices, newest first (Stripe's own order); drafts are left out. */
  listInvoices(i: { customerId: string; limit?: number }): Promise<Invoice[]> {
    return this.call('listInvoices', async () => {
      const customer = requireText(i.customerId, 'listInvoices', 'customerId');
      const limit = i.limit ?? 12;
      if (!Number.isInteger(limit) || limit < 1 || limit > PAGE_SIZE)
        throw invalid('listInvoices', `limit: a whole number from 1 to ${PAGE_SIZE} is required`);
      const page = await this.stripe.invoices.list({ customer, limit });
      return page.data.map(invoiceOf).filter((inv): inv is Invoice => inv !== undefined);
    });
  }

  /** Swaps the price of the subscription's item, prorated. Asking for the price it already has changes nothing. */
  changeSubscription(i: { subscriptionId: string; priceId: string }) {
    return this.call('changeSubscription', async () => {
      const priceId = requireText(i.priceId, 'changeSubscription', 'priceId');
      const sub = await this.retrieveSubscription(i.subscriptionId, 'changeSubscription');
      // The plan's item; a metered overage item stays as it is.
      const item = planItem(sub.items.data);
      if (!item) throw invalid('changeSubscription', `subscriptionId: subscription "${sub.id}" has no items`);
      if (item.price.id === priceId) return state(sub);
      const updated = await this.stripe.subscriptions.update(sub.id, {
        items: [{ id: item.id, price: priceId }],
        proration_behavior: 'create_prorations',
      });
      return state(updated);
    });
  }

  /** At period end sets cancel_at_period_end; otherwise cancels now. An ended subscription is returned as it is (a retried cancel is no error). */
  cancelSubscription(i: { subscriptionId: string; atPeriodEnd: boolean }) {
    return this.call('cancelSubscription', async () => {
      const sub = await this.retrieveSubscription(i.subscriptionId, 'cancelSubscription');
      if (isEnded(sub.status)) return state(sub);
      const next = i.atPeriodEnd
        ? await this.stripe.subscriptions.update(sub.id, { cancel_at_period_end: true })
        : await this.stripe.subscriptions.cancel(sub.id);
      return state(next);
    });
  }

  // -- usage ------------------------------------------------------------------------------

  /**
   * One billing meter event (`POST /v1/billing/meter_events`) for the customer. The idempotency
   * key is both the event's `identifier` (Stripe drops repeats within at least 24 hours) and the
   * request's Idempotency-Key header (a retried request gets the first answer); a key longer than
   * an identifier may be is replaced by its SHA-256, the same for every repeat. Meters count per
   * customer, so the subscription id is not sent.
   */
  reportUsage(i: { customerId: string; subscriptionId: string; quantity: number; timestamp: Date; idempotencyKey: string }) {
    return this.call('reportUsage', async () => {
      const customerId = requireText(i.customerId, 'reportUsage', 'customerId');
      if (!Number.isInteger(i.quantity) || i.quantity < 0) throw invalid('reportUsage', 'quantity: a whole number, 0 or more, is required');
      if (!(i.timestamp instanceof Date) || Number.isNaN(i.timestamp.getTime()))
        throw invalid('reportUsage', 'timestamp: a valid Date is required');
      const given = requireText(i.idempotencyKey, 'reportUsage', 'idempotencyKey');
      const key = given.length <= MAX_IDENTIFIER ? given : `sha256_${createHash('sha256').update(given).digest('hex')}`;
      await this.stripe.billing.meterEvents.create(
        {
          event_name: this.cfg.meterEventName,
          payload: { stripe_customer_id: customerId, value: String(i.quantity) },
          identifier: key,
          timestamp: Math.floor(i.timestamp.getTime() / 1000),
        },
        { idempotencyKey: key },
      );
    });
  }

  // -- webhooks ---------------------------------------------------------------------------

  /** Whether the configured key is a live key (sk_live_/rk_live_) rather than a test key. */
  get livemode(): boolean {
    return /^(sk|rk)_live_/.test(this.cfg.apiKey);
  }

  /**
   * Verifies `Stripe-Signature` with the SDK's `webhooks.constructEvent` (HMAC-SHA256 of
   * "<t>.<body>" with the whsec secret, any v1 value may match, at most 300 s old) and reads the
   * envelope. Bad signatures are WebhookSignatureError; a verified body that is not a Stripe event
   * is InvalidInputError; an event whose `livemode` is not the key's mode (a test event reaching
   * a live key, or the reverse) is WebhookModeMismatchError. No network call.
   */
  async verifyWebhook(i: WebhookInput): Promise<VerifiedWebhook> {
    let event: unknown;
    try {
      event = this.stripe.webhooks.constructEvent(
        i.rawBody,
        i.headers['stripe-signature'] ?? '',
        this.cfg.webhookSecret,
        WEBHOOK_TOLERANCE_SECONDS,
      );
    } catch (err) {
      const reason = ((err as Error)?.message ?? String(err)).split('\n')[0]!.trim();
      if (err instanceof Stripe.errors.StripeSignatureVerificationError) {
        throw new WebhookSignatureError(`payment/stripe webhook: ${reason} (Stripe-Signature checked with payment.stripe.webhook_secret)`);
      }
      throw new InvalidInputError(`payment/stripe webhook: the verified body is not a Stripe event: ${reason}`);
    }
    const e = eventOf(event);
    const livemode = (event as { livemode?: unknown }).livemode;
    if (typeof livemode === 'boolean' && livemode !== this.livemode) {
      throw new WebhookModeMismatchError(
        `payment/stripe webhook: event ${e.id} is a ${livemode ? 'live' : 'test'}-mode event and the API key is a ${this.livemode ? 'live' : 'test'} key`,
      );
    }
    return { id: e.id, type: e.type, occurredAt: new Date(e.created * 1000), ...(typeof livemode === 'boolean' ? { livemode } : {}) };
  }

  /** Normalises a body verifyWebhook accepted (no signature or age check; no network call). */
  async normalizeWebhook(i: WebhookInput): Promise<PaymentEvent> {
    let event: unknown;
    try {
      event = JSON.parse(Buffer.from(i.rawBody).toString('utf8'));
    } catch {
      throw new InvalidInputError('payment/stripe webhook: the body is not JSON');
    }
    return normaliseEvent(eventOf(event));
  }

  async parseWebhook(i: WebhookInput): Promise<PaymentEvent> {
    await this.verifyWebhook(i);
    return this.normalizeWebhook(i);
  }

  // -- lifecycle --------------------------------------------------------------------------

  /**
   * `GET /v1/balance`: needs a valid key, changes nothing, and says live or test mode. A
   * restricted key without balance access is `degraded` (the key works; this call may not).
   */
  async check(signal: AbortSignal): Promise<Health> {
    try {
      const balance = await abortable(this.stripe.balance.retrieve(undefined, { maxNetworkRetries: 0 }), signal);
      return { status: 'connected', detail: `${this.host} (${balance.livemode ? 'live' : 'test'} mode)` };
    } catch (err) {
      const pe = this.fail(err, 'check');
      if (pe instanceof ProviderError && pe.status === 403) {
        return { status: 'degraded', detail: `${this.host}: the key may not read the balance (restricted key?)`, error: pe.message };
      }
      return { status: 'error', error: pe.message };
    }
  }

  async close(): Promise<void> {
    this.agent.destroy();
  }
}

const state = (sub: Stripe.Subscription): SubscriptionState => subscriptionState(sub as unknown as SubscriptionLike);

function matches(p: Stripe.Price, terms: PriceTerms, meterId: string | undefined): boolean {
  const r = p.recurring;
  return (
    p.unit_amount === terms.amountCents &&
    p.currency === terms.currency &&
    r?.interval === terms.interval &&
    (r.interval_count ?? 1) === 1 &&
    (r.usage_type === 'metered') === terms.metered &&
    (!terms.metered || r.meter === meterId)
  );
}

/** Settles with `p`, or rejects when `signal` aborts first (the SDK takes no signal; its own timeout ends the request). */
function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason ?? new Error('aborted'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason ?? new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function eventOf(event: unknown): EventLike {
  const e = event as Partial<EventLike> | null;
  if (!e || typeof e.id !== 'string' || typeof e.type !== 'string' || typeof e.created !== 'number') {
    throw new InvalidInputError('payment/stripe webhook: the verified body is not a Stripe event (id, type and created are required)');
  }
  return e as EventLike;
}
