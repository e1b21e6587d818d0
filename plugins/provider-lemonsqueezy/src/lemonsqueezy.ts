import {
  assertCheckoutInput,
  assertUpsertPriceInput,
  type CheckoutInput,
  emailAddressOf,
  type Health,
  InvalidInputError,
  type Invoice,
  type PaymentEvent,
  type PaymentProvider,
  type ProviderContext,
  type ProviderError,
  type SubscriptionState,
  type UpsertPriceInput,
  type VerifiedWebhook,
  type WebhookInput,
  WebhookModeMismatchError,
} from '@apigate/kernel';
import { type Doc, LemonClient, one, PAGE_SIZE, type Resource } from './client.js';
import { invoiceOf, type SubscriptionInvoiceAttributes } from './invoices.js';
import {
  CUSTOM,
  identity,
  normalise,
  parseBody,
  SIGNATURE_HEADER,
  type SubscriptionAttributes,
  toSubscriptionState,
  verifySignature,
  type WebhookBody,
} from './webhook.js';

export interface LemonConfig {
  apiKey: string;
  storeId: string;
  webhookSecret: string;
  baseUrl: string;
  timeoutMs: number;
  /** The store mode of the API key (test or live); unset: learned from the `test_mode` of objects the API returns. */
  mode?: 'test' | 'live' | undefined;
}

interface VariantAttributes {
  product_id: number;
  name: string;
  status: string;
}

/** LemonSqueezy's price model of a variant (the variant's own price fields are deprecated). */
interface PriceAttributes {
  category: string;
  unit_price: number | null;
  usage_aggregation: string | null;
  renewal_interval_unit: string | null;
  renewal_interval_quantity: number | null;
  trial_interval_unit: string | null;
  trial_interval_quantity: number | null;
}

interface Candidate {
  variant: Resource<VariantAttributes>;
  productName: string;
  price: PriceAttributes;
}

/** Statuses in which a subscription still bills or can bill again. */
const LIVE = new Set(['on_trial', 'active', 'paused', 'past_due', 'unpaid']);
const TRIAL_UNIT_DAYS: Record<string, number> = { day: 1, week: 7 };

const money = (cents: number, currency: string) => `${(cents / 100).toFixed(2)} ${currency.toUpperCase()}`;
const same = (a: string, b: string) => a.trim().toLowerCase() === b.trim().toLowerCase();

/**
 * Payments through LemonSqueezy's API (JSON:API) for one store. LemonSqueezy's catalogue is made in
 * its dashboard (the API cannot create or change products, variants or prices), so plans are
 * matched to the variants the seller made; checkouts, customers and subscriptions go through the API.
 */
export class LemonSqueezyPayment implements PaymentProvider {
  private readonly api: LemonClient;
  /** The store's currency and URL, read once. */
  private storeCache: { currency: string; url: string } | undefined;
  /** `test_mode` of the last object the API returned: the key's mode when none is configured. */
  private learnedTestMode: boolean | undefined;

  constructor(
    private readonly cfg: LemonConfig,
    private readonly logger: ProviderContext['logger'],
  ) {
    this.api = new LemonClient({ apiKey: cfg.apiKey, baseUrl: cfg.baseUrl, timeoutMs: cfg.timeoutMs });
  }

  private get storeRef() {
    return { store: { data: { type: 'stores', id: this.cfg.storeId } } };
  }

  private call<A = Record<string, any>>(
    operation: string,
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    path: string,
    opts: Parameters<LemonClient['call']>[3] = {},
  ) {
    return this.api.call<A>(operation, method, path, opts).then((doc) => {
      this.learnMode(doc as Doc);
      return doc;
    });
  }

  private async *list<A>(operation: string, path: string, query: Record<string, string>): AsyncIterable<Resource<A>> {
    for await (const r of this.api.pages<A>(operation, path, query)) {
      this.learnMode({ data: r as Resource });
      yield r;
    }
  }

  /** Objects of a test-mode key say `test_mode: true`; the last one seen tells the key's mode. */
  private learnMode(doc: Pick<Doc, 'data'> | undefined): void {
    const data = doc?.data;
    const first = Array.isArray(data) ? data[0] : data;
    const tm = (first?.attributes as { test_mode?: unknown } | undefined)?.test_mode;
    if (typeof tm === 'boolean') this.learnedTestMode = tm;
  }

  /** True for a test-mode store key, false for live, undefined while neither configured nor learned. */
  get testMode(): boolean | undefined {
    return this.cfg.mode ? this.cfg.mode === 'test' : this.learnedTestMode;
  }

  // -- customers ----------------------------------------------------------------------------

  /**
   * Customers belong to the store and are known by email (checkouts attach orders to the customer
   * with the buyer's email), so an existing customer with the email is reused. LemonSqueezy keeps
   * no custom data on customers: the user id lives in the gateway's mapping only.
   */
  async createCustomer(i: { userId: string; email: string; name?: string }): Promise<{ customerId: string }> {
    if (typeof i?.userId !== 'string' || !i.userId.trim())
      throw new InvalidInputError('payment/lemonsqueezy createCustomer userId: a non-empty string is required');
    const email = i.email?.trim();
    if (emailAddressOf(email) !== email)
      throw new InvalidInputError('payment/lemonsqueezy createCustomer email: an email address is required');
    for await (const c of this.list('createCustomer', '/v1/customers', { 'filter[store_id]': this.cfg.storeId, 'filter[email]': email })) {
      return { customerId: c.id };
    }
    const doc = await this.call('createCustomer', 'POST', '/v1/customers', {
      // LemonSqueezy requires a name; the email stands in when the user has none.
      body: { data: { type: 'customers', attributes: { name: i.name?.trim() || email, email }, relationships: this.storeRef } },
    });
    return { customerId: one(doc).id };
  }

  /**
   * LemonSqueezy cannot delete customers: the closest is archiving. Their subscriptions that still
   * bill are cancelled first (which in LemonSqueezy means at the end of the paid period). An
   * unknown id is done.
   */
  async deleteCustomer(customerId: string): Promise<void> {
    let customer: Resource;
    try {
      customer = one(await this.call('deleteCustomer', 'GET', `/v1/customers/${encodeURIComponent(customerId)}`));
    } catch (err) {
      if ((err as ProviderError).status === 404) return;
      throw err;
    }
    for await (const s of this.subscriptionsOf('deleteCustomer', customer)) {
      if (LIVE.has(s.attributes.status)) await this.call('deleteCustomer', 'DELETE', `/v1/subscriptions/${s.id}`);
    }
    await this.call('deleteCustomer', 'PATCH', `/v1/customers/${customer.id}`, {
      body: { data: { type: 'customers', id: customer.id, attributes: { status: 'archived' } } },
    });
  }

  /** LemonSqueezy lists subscriptions by buyer email, not customer id: filtered by both here. */
  private async *subscriptionsOf(operation: string, customer: Resource): AsyncIterable<Resource<SubscriptionAttributes>> {
    const query = { 'filter[store_id]': this.cfg.storeId, 'filter[user_email]': String(customer.attributes.email) };
    for await (const s of this.list<SubscriptionAttributes>(operation, '/v1/subscriptions', query)) {
      if (String(s.attributes.customer_id) === customer.id) yield s;
    }
  }

  // -- catalogue ------------------------------------------------------------------------------

  /**
   * Finds the variant the seller made for the plan: published (or a product's only, "pending",
   * variant), named like the plan (its own name or its product's), a subscription billed every
   * month or year at exactly the plan's amount in the store's currency. `existingPriceId` is kept
   * while it still matches (a rename needs nothing in LemonSqueezy). No match is a final error
   * saying what to create in the dashboard.
   */
  async upsertPrice(i: UpsertPriceInput): Promise<{ priceId: string; productId: string }> {
    assertUpsertPriceInput(i, 'payment/lemonsqueezy upsertPrice');
    if (i.metered) {
      throw new InvalidInputError(
        'payment/lemonsqueezy upsertPrice metered: usage reporting is not supported (features.meteredBilling is false)',
      );
    }
    const { currency } = await this.store('upsertPrice');
    const sells = (c: Candidate) =>
      c.price.category === 'subscription' &&
      c.price.renewal_interval_unit === i.interval &&
      (c.price.renewal_interval_quantity ?? 1) === 1 &&
      c.price.unit_price === i.amountCents &&
      same(currency, i.currency);

    if (i.existingPriceId) {
      const kept = await this.candidate('upsertPrice', i.existingPriceId).catch((err: ProviderError) => {
        if (err.status === 404) return undefined;
        throw err;
      });
      if (kept && kept.variant.attributes.status !== 'draft' && sells(kept)) {
        return { priceId: kept.variant.id, productId: String(kept.variant.attributes.product_id) };
      }
    }

    const named: Candidate[] = [];
    const products = new Map<string, string>();
    for await (const p of this.list<{ name: string }>('upsertPrice', '/v1/products', { 'filter[store_id]': this.cfg.storeId }))
      products.set(p.id, p.attributes.name);
    for (const [productId, productName] of products) {
      for await (const v of this.list<VariantAttributes>('upsertPrice', '/v1/variants', { 'filter[product_id]': productId })) {
        if (v.attributes.status === 'draft' || !(same(v.attributes.name, i.name) || same(productName, i.name))) continue;
        named.push({ variant: v, productName, price: await this.priceOf('upsertPrice', v.id) });
      }
    }
    const match = named.find(sells);
    if (match) return { priceId: match.variant.id, productId: String(match.variant.attributes.product_id) };

    const wanted = `subscription variant named "${i.name}" billed every ${i.interval} at ${money(i.amountCents, i.currency)}`;
    const found = named.map((c) => `"${c.productName} / ${c.variant.attributes.name}" (${describePrice(c.price, currency)})`);
    throw this.api.fail(
      'upsertPrice',
      `store ${this.cfg.storeId} has no ${wanted}${found.length ? `; found ${found.join(', ')}` : ''}${same(currency, i.currency) ? '' : ` (the store sells in ${currency})`}. ` +
        'Create or edit it in the LemonSqueezy dashboard: the API cannot create or change products',
      { retryable: false, code: 'NO_MATCHING_VARIANT' },
    );
  }

  private async candidate(operation: string, variantId: string): Promise<Candidate> {
    const variant = one(await this.call<VariantAttributes>(operation, 'GET', `/v1/variants/${encodeURIComponent(variantId)}`));
    const product = one(
      await this.call<{ name: string; store_id: number }>(operation, 'GET', `/v1/products/${variant.attributes.product_id}`),
    );
    if (String(product.attributes.store_id) !== this.cfg.storeId) {
      throw this.api.fail(operation, `variant ${variantId} belongs to another store than LEMON_STORE_ID ${this.cfg.storeId}`, {
        status: 404,
      });
    }
    return { variant, productName: product.attributes.name, price: await this.priceOf(operation, variant.id) };
  }

  private async priceOf(operation: string, variantId: string): Promise<PriceAttributes> {
    return one(await this.call<PriceAttributes>(operation, 'GET', `/v1/variants/${encodeURIComponent(variantId)}/price-model`)).attributes;
  }

  private async store(operation: string): Promise<{ currency: string; url: string }> {
    if (!this.storeCache) {
      const a = one(await this.call(operation, 'GET', `/v1/stores/${this.cfg.storeId}`)).attributes;
      this.storeCache = { currency: String(a.currency), url: String(a.url) };
    }
    return this.storeCache;
  }

  /**
   * The API cannot archive variants. Succeeds (the contract's callers archive as cleanup) and logs
   * that the variant stays on sale until it is set to draft in the dashboard.
   */
  async archivePrice(priceId: string): Promise<void> {
    this.logger.warn(
      { priceId },
      `LemonSqueezy's API cannot archive variant ${priceId}; set it to draft in the dashboard to stop selling it`,
    );
  }

  // -- checkout and portal ----------------------------------------------------------------------

  /**
   * A hosted checkout for the variant, prefilled with the customer's email and name and carrying
   * the user and plan ids as custom data (echoed in the order and subscription webhooks). After
   * payment LemonSqueezy sends the buyer to `successUrl`; it has no cancel URL. Trials are set on
   * the variant: `trialDays` is accepted only when it is the variant's own trial.
   */
  async createCheckout(i: CheckoutInput): Promise<{ url: string; sessionId: string }> {
    assertCheckoutInput(i, 'payment/lemonsqueezy createCheckout');
    const customer = one(await this.call('createCheckout', 'GET', `/v1/customers/${encodeURIComponent(i.customerId)}`)).attributes;
    if (i.trialDays) await this.assertVariantTrial(i.priceId, i.trialDays);
    const doc = await this.call<{ url: string }>('createCheckout', 'POST', '/v1/checkouts', {
      body: {
        data: {
          type: 'checkouts',
          attributes: {
            checkout_data: { email: customer.email, name: customer.name, custom: { [CUSTOM.userId]: i.userId, [CUSTOM.planId]: i.planId } },
            product_options: { redirect_url: i.successUrl, enabled_variants: [Number(i.priceId)] },
          },
          relationships: { ...this.storeRef, variant: { data: { type: 'variants', id: i.priceId } } },
        },
      },
    });
    const checkout = one(doc);
    return { url: checkout.attributes.url, sessionId: checkout.id };
  }

  private async assertVariantTrial(variantId: string, trialDays: number): Promise<void> {
    const p = await this.priceOf('createCheckout', variantId);
    const per = p.trial_interval_unit ? TRIAL_UNIT_DAYS[p.trial_interval_unit] : undefined;
    const days = per !== undefined && p.trial_interval_quantity ? per * p.trial_interval_quantity : undefined;
    if (days === trialDays) return;
    const has =
      p.trial_interval_unit && p.trial_interval_quantity ? `a ${p.trial_interval_quantity}-${p.trial_interval_unit} trial` : 'no trial';
    throw new InvalidInputError(
      `payment/lemonsqueezy createCheckout trialDays: LemonSqueezy sets free trials on the variant, and variant ${variantId} has ${has}; ` +
        `set a ${trialDays}-day trial on it in the dashboard, or leave trialDays out`,
    );
  }

  /**
   * The customer's own portal link (pre-signed, valid 24 hours). LemonSqueezy has none for a
   * customer who never subscribed; they get the store's portal sign-in page (`<store url>/billing`,
   * where they sign in by email). The portal takes no return URL.
   */
  async createPortalSession(i: { customerId: string; returnUrl: string }): Promise<{ url: string }> {
    const c = one(await this.call('createPortalSession', 'GET', `/v1/customers/${encodeURIComponent(i.customerId)}`));
    const url = c.attributes.urls?.customer_portal;
    if (typeof url === 'string' && url) return { url };
    return { url: `${(await this.store('createPortalSession')).url.replace(/\/+$/, '')}/billing` };
  }

  // -- subscriptions --------------------------------------------------------------------------

  async getSubscription(subscriptionId: string): Promise<SubscriptionState> {
    const doc = await this.call<SubscriptionAttributes>(
      'getSubscription',
      'GET',
      `/v1/subscriptions/${encodeURIComponent(subscriptionId)}`,
    );
    return toSubscriptionState(one(doc));
  }

  /** LemonSqueezy cannot filter by customer id or update time: by buyer email and store, the rest here. */
  async *listSubscriptions(i: { customerId?: string; updatedSince?: Date }): AsyncIterable<SubscriptionState> {
    const keep = (s: Resource<SubscriptionAttributes>) =>
      !i.updatedSince || new Date(s.attributes.updated_at).getTime() >= i.updatedSince.getTime();
    if (i.customerId) {
      let customer: Resource;
      try {
        customer = one(await this.call('listSubscriptions', 'GET', `/v1/customers/${encodeURIComponent(i.customerId)}`));
      } catch (err) {
        if ((err as ProviderError).status === 404) return;
        throw err;
      }
      for await (const s of this.subscriptionsOf('listSubscriptions', customer)) if (keep(s)) yield toSubscriptionState(s);
      return;
    }
    for await (const s of this.list<SubscriptionAttributes>('listSubscriptions', '/v1/subscriptions', {
      'filter[store_id]': this.cfg.storeId,
    })) {
      if (keep(s)) yield toSubscriptionState(s);
    }
  }

  /**
   * The customer's subscription invoices, newest first. LemonSqueezy filters invoices by
   * subscription, not customer: the customer's subscriptions (by email, checked by customer id),
   * then the first page of each one's invoices (newest first), merged. An unknown customer has none.
   */
  async listInvoices(i: { customerId: string; limit?: number }): Promise<Invoice[]> {
    if (typeof i.customerId !== 'string' || i.customerId.trim() === '')
      throw new InvalidInputError('payment/lemonsqueezy listInvoices customerId: a non-empty string is required');
    const limit = i.limit ?? 12;
    if (!Number.isInteger(limit) || limit < 1 || limit > PAGE_SIZE)
      throw new InvalidInputError(`payment/lemonsqueezy listInvoices limit: a whole number from 1 to ${PAGE_SIZE} is required`);
    let customer: Resource;
    try {
      customer = one(await this.call('listInvoices', 'GET', `/v1/customers/${encodeURIComponent(i.customerId)}`));
    } catch (err) {
      if ((err as ProviderError).status === 404) return [];
      throw err;
    }
    const out: Invoice[] = [];
    for await (const sub of this.subscriptionsOf('listInvoices', customer)) {
      const doc = await this.call<SubscriptionInvoiceAttributes>('listInvoices', 'GET', '/v1/subscription-invoices', {
        query: {
          'filter[store_id]': this.cfg.storeId,
          'filter[subscription_id]': sub.id,
          'page[number]': '1',
          'page[size]': String(limit),
        },
      });
      for (const r of (doc.data as Resource<SubscriptionInvoiceAttributes>[] | null) ?? []) {
        const inv = invoiceOf(r);
        if (inv) out.push(inv);
      }
    }
    return out.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime()).slice(0, limit);
  }

  /** Moves the subscription to another variant; LemonSqueezy prorates it on the next invoice. */
  async changeSubscription(i: { subscriptionId: string; priceId: string }): Promise<SubscriptionState> {
    if (!/^\d+$/.test(i.priceId ?? ''))
      throw new InvalidInputError('payment/lemonsqueezy changeSubscription priceId: a LemonSqueezy variant id (digits) is required');
    const doc = await this.call<SubscriptionAttributes>(
      'changeSubscription',
      'PATCH',
      `/v1/subscriptions/${encodeURIComponent(i.subscriptionId)}`,
      {
        body: { data: { type: 'subscriptions', id: i.subscriptionId, attributes: { variant_id: Number(i.priceId) } } },
      },
    );
    return toSubscriptionState(one(doc));
  }

  /**
   * `DELETE /v1/subscriptions/{id}` cancels at the end of the paid period (LemonSqueezy's grace
   * period); it has no immediate cancel, so `atPeriodEnd: false` is refused as final
   * (features.immediateCancel is false) and changes nothing.
   */
  async cancelSubscription(i: { subscriptionId: string; atPeriodEnd: boolean }): Promise<SubscriptionState> {
    if (!i.atPeriodEnd) {
      throw this.api.fail(
        'cancelSubscription',
        "LemonSqueezy's API cancels only at the end of the paid period (features.immediateCancel is false); cancel with atPeriodEnd: true, or refund and cancel in the dashboard",
        { retryable: false, code: 'NOT_SUPPORTED' },
      );
    }
    const doc = await this.call<SubscriptionAttributes>(
      'cancelSubscription',
      'DELETE',
      `/v1/subscriptions/${encodeURIComponent(i.subscriptionId)}`,
    );
    return toSubscriptionState(one(doc));
  }

  /** LemonSqueezy's usage records take no idempotency key, so a retried report would bill twice: refused. */
  async reportUsage(): Promise<void> {
    throw this.api.fail(
      'reportUsage',
      'LemonSqueezy usage records have no idempotency key, so a retry would bill twice (features.meteredBilling is false)',
      { retryable: false, code: 'NOT_SUPPORTED' },
    );
  }

  // -- webhooks -------------------------------------------------------------------------------

  /**
   * Checks `X-Signature` (LemonSqueezy signs the body alone: no timestamp, so no age check is
   * possible; the inbox's event id dedupe stops replays) and reads the envelope; no network call.
   * An event whose `meta.test_mode` is not the key's mode (LEMON_MODE, or learned from the API's
   * objects) is WebhookModeMismatchError.
   */
  async verifyWebhook(i: WebhookInput): Promise<VerifiedWebhook> {
    verifySignature(i.rawBody, i.headers[SIGNATURE_HEADER], this.cfg.webhookSecret);
    const body = parseBody(i.rawBody);
    this.assertMode(body);
    const { id, occurredAt } = identity(body);
    const tm = body.meta.test_mode;
    return { id, type: body.meta.event_name, occurredAt, ...(typeof tm === 'boolean' ? { livemode: !tm } : {}) };
  }

  /**
   * Normalises a verified body (no signature check). An `order_created` does not name the
   * subscription it started: it is looked up by order id here, in the worker, not before the 200.
   */
  async normalizeWebhook(i: WebhookInput): Promise<PaymentEvent> {
    const body = parseBody(i.rawBody);
    const event = normalise(body);
    if (event.type !== 'checkout.completed') return event;
    // One lookup by order id (none for one-off products); it may teach the mode, so check it again.
    for await (const s of this.list<SubscriptionAttributes>('normalizeWebhook', '/v1/subscriptions', {
      'filter[order_id]': body.data.id,
    })) {
      this.assertMode(body);
      return { ...event, subscriptionId: s.id };
    }
    return event;
  }

  async parseWebhook(i: WebhookInput): Promise<PaymentEvent> {
    await this.verifyWebhook(i);
    return this.normalizeWebhook(i);
  }

  private assertMode(body: WebhookBody): void {
    const tm = body.meta.test_mode;
    const mine = this.testMode;
    if (typeof tm !== 'boolean' || mine === undefined || tm === mine) return;
    throw new WebhookModeMismatchError(
      `payment/lemonsqueezy webhook: a ${tm ? 'test' : 'live'}-mode event (meta.test_mode ${tm}) and the API key is a ${mine ? 'test' : 'live'}-mode key${this.cfg.mode ? ' (LEMON_MODE)' : ' (learned from the API)'}`,
    );
  }

  // -- health and lifecycle -------------------------------------------------------------------

  /** `GET /v1/stores/{id}`: authenticated, one read, and proves LEMON_STORE_ID is the key's store. */
  async check(signal: AbortSignal): Promise<Health> {
    try {
      const s = one(await this.call('check', 'GET', `/v1/stores/${this.cfg.storeId}`, { signal })).attributes;
      return { status: 'connected', detail: `store ${this.cfg.storeId} "${s.name}" (${s.currency}) at ${this.api.host}` };
    } catch (err) {
      const e = err as ProviderError;
      const error = e.status === 404 ? `${e.message}; LEMON_STORE_ID ${this.cfg.storeId} is not a store this API key can see` : e.message;
      return { status: 'error', error };
    }
  }

  async close(): Promise<void> {
    await this.api.close();
  }
}

function describePrice(p: PriceAttributes, currency: string): string {
  if (p.category !== 'subscription') return `${p.category}, not a subscription`;
  const every =
    p.renewal_interval_quantity && p.renewal_interval_quantity !== 1
      ? `${p.renewal_interval_quantity} ${p.renewal_interval_unit}s`
      : p.renewal_interval_unit;
  return `${p.unit_price === null ? 'tiered' : money(p.unit_price, currency)} every ${every}`;
}
