import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import {
  type CheckoutInput,
  defineProvider,
  InvalidInputError,
  type Invoice,
  type PaymentEvent,
  type PaymentEventType,
  type PaymentProvider,
  type SubscriptionState,
  type SubscriptionStatus,
  type UpsertPriceInput,
  utf8,
  type VerifiedWebhook,
  type WebhookInput,
  WebhookModeMismatchError,
  WebhookSignatureError,
  z,
} from '@apigate/kernel';

/** Signs the dummy's webhooks unless `payment.dummy.webhook_secret` is set. Public on purpose: development only. */
export const DEV_WEBHOOK_SECRET = 'whsec_dummy_development_only_not_a_secret';
export const SIGNATURE_HEADER = 'apigate-dummy-signature';
/** Signatures older (or newer) than this are refused, so a captured webhook cannot be replayed later. */
export const TOLERANCE_SECONDS = 300;

/** Reported as a final failure: the id is not in this process's memory (a restart forgets everything). */
export class DummyNotFoundError extends Error {
  readonly status = 404;
  readonly retryable = false;
  constructor(kind: string, id: string) {
    super(`no ${kind} "${id}" in the dummy payment provider (its state is in memory and lost on restart)`);
    this.name = 'DummyNotFoundError';
  }
}

interface Customer {
  id: string;
  userId: string;
  email: string;
  name?: string;
}

interface Price {
  id: string;
  productId: string;
  planId: string;
  name: string;
  amountCents: number;
  currency: string;
  interval: 'month' | 'year';
  metered: boolean;
  active: boolean;
}

export interface CheckoutSession extends CheckoutInput {
  sessionId: string;
  url: string;
  createdAt: Date;
  subscriptionId?: string;
  /** The checkout.completed event, kept so completing twice returns the same event id. */
  completedEvent?: DummyEvent;
}

interface Subscription extends SubscriptionState {
  /** The checkout's metered price, billed next to `priceId` from reported usage. */
  meteredPriceId?: string;
  userId: string;
  planId: string;
  currentPeriodStart: Date;
  updatedAt: Date;
  invoiceAttempts: number;
}

interface StoredInvoice extends Invoice {
  customerId: string;
  subscriptionId: string;
}

interface UsageRecord {
  subscriptionId: string;
  quantity: number;
  timestamp: Date;
}

/** The body of a dummy webhook: the normalised event itself, with dates as ISO strings. */
export interface DummyEvent extends Omit<PaymentEvent, 'raw' | 'type'> {
  /** One of PaymentEventType; anything else is parsed as `ignored`. */
  type: string;
  sessionId?: string;
  /** The dummy is test-only: an event saying `livemode: true` is refused (the mode check every provider makes). */
  livemode?: boolean;
}

export interface SignedWebhook {
  rawBody: Uint8Array;
  headers: Record<string, string>;
}

/** A state change made by hand (checkout paid, renewal, failed payment) with the webhook it would send. */
export interface StateChange {
  subscription: SubscriptionState;
  event: DummyEvent;
  webhook: SignedWebhook;
}

const KNOWN_TYPES = new Set<PaymentEventType>([
  'checkout.completed',
  'subscription.created',
  'subscription.updated',
  'subscription.deleted',
  'invoice.paid',
  'invoice.payment_failed',
]);

const isoDate = z.iso.datetime({ offset: true }).transform((s) => new Date(s));
const envelopeSchema = z.object({
  id: z.string().min(1),
  type: z.string().min(1),
  occurredAt: isoDate,
  livemode: z.boolean().optional(),
});
const bodySchema = envelopeSchema.extend({
  sequence: z.union([z.number().int().nonnegative(), z.string().min(1)]).optional(),
  customerId: z.string().optional(),
  subscriptionId: z.string().optional(),
  priceId: z.string().optional(),
  subscription: z
    .object({
      subscriptionId: z.string(),
      customerId: z.string(),
      priceId: z.string(),
      status: z.enum(['trialing', 'active', 'past_due', 'paused', 'canceled', 'incomplete', 'incomplete_expired', 'unpaid']),
      currentPeriodEnd: isoDate.optional(),
      cancelAtPeriodEnd: z.boolean(),
    })
    .optional(),
  invoice: z
    .object({ id: z.string(), amountCents: z.number().int(), currency: z.string(), attempt: z.number().int().optional() })
    .optional(),
  localRefs: z.object({ userId: z.string().optional(), planId: z.string().optional() }).optional(),
  sessionId: z.string().optional(),
});

function parseJson<T>(rawBody: Uint8Array, schema: z.ZodType<T>): { data: T; json: unknown } {
  let json: unknown;
  try {
    json = JSON.parse(utf8.decode(rawBody));
  } catch {
    throw new InvalidInputError('payment/dummy webhook: body is not JSON');
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new InvalidInputError(`payment/dummy webhook: body field ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return { data: parsed.data, json };
}

const newId = (prefix: string): string => `${prefix}_dummy_${randomBytes(8).toString('hex')}`;
const stableId = (prefix: string, key: string): string => `${prefix}_dummy_${createHash('sha256').update(key).digest('hex').slice(0, 16)}`;

/** Adds one billing interval, clamping to the month's last day (Jan 31 + 1 month = Feb 28/29), as Stripe does. */
export function addInterval(from: Date, interval: 'month' | 'year', count = 1): Date {
  const months = interval === 'year' ? 12 * count : count;
  const d = new Date(from);
  const day = d.getUTCDate();
  d.setUTCDate(1);
  d.setUTCMonth(d.getUTCMonth() + months);
  const last = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate();
  d.setUTCDate(Math.min(day, last));
  return d;
}

const sign = (secret: string, t: number, body: Uint8Array): string =>
  createHmac('sha256', secret).update(`${t}.`).update(body).digest('hex');

function requireText(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.trim() === '')
    throw new InvalidInputError(`payment/dummy ${what}: a non-empty string is required`);
  return value;
}

function requireUrl(value: unknown, what: string): string {
  if (typeof value !== 'string' || !URL.canParse(value)) throw new InvalidInputError(`payment/dummy ${what}: an absolute URL is required`);
  return value;
}

/**
 * A payment provider that keeps customers, prices, subscriptions and usage in memory, never
 * calls out, and signs its own webhook-shaped events so the gateway's billing flow runs end to end.
 */
export class DummyPayment implements PaymentProvider {
  private readonly customers = new Map<string, Customer>();
  private readonly prices = new Map<string, Price>();
  private readonly products = new Map<string, string>();
  private readonly sessions = new Map<string, CheckoutSession>();
  private readonly subscriptions = new Map<string, Subscription>();
  private readonly usage = new Map<string, UsageRecord>();
  /** Invoices in the order they were made: a paid checkout or renewal, an open one after a failed charge. */
  private readonly invoices: StoredInvoice[] = [];
  private readonly baseUrl: string;
  /** Counts the events this instance makes: their `sequence`, the tie-break between events of one instant. */
  private sequence = 0;

  constructor(private readonly config: { checkoutBaseUrl: string; webhookSecret: string }) {
    this.baseUrl = config.checkoutBaseUrl.replace(/\/+$/, '');
  }

  /** True while webhooks are signed with the published DEV_WEBHOOK_SECRET: anyone can forge them. */
  get usesDevelopmentSecret(): boolean {
    return this.config.webhookSecret === DEV_WEBHOOK_SECRET;
  }

  // -- catalogue and customers ------------------------------------------------------------

  async createCustomer(i: { userId: string; email: string; name?: string }) {
    const customer: Customer = {
      id: newId('cus'),
      userId: requireText(i.userId, 'createCustomer userId'),
      email: requireText(i.email, 'createCustomer email'),
      ...(i.name ? { name: i.name } : {}),
    };
    this.customers.set(customer.id, customer);
    return { customerId: customer.id };
  }

  /** Idempotent: deleting an unknown or deleted customer succeeds. Their subscriptions end, as in Stripe. */
  async deleteCustomer(customerId: string) {
    this.customers.delete(customerId);
    for (const sub of this.subscriptions.values()) {
      if (sub.customerId === customerId && sub.status !== 'canceled') this.setStatus(sub, 'canceled');
    }
  }

  /**
   * A price per plan. Changing the amount, currency, interval or metering makes a new price on the
   * same product and archives the old one (prices are immutable in Stripe too); a rename keeps the id.
   * Ids are derived from the plan and the terms, so a restarted dummy (its memory empty) gives the
   * same plan the same price id again: stored plan -> price mappings, and events naming them, stay good.
   */
  async upsertPrice(i: UpsertPriceInput) {
    requireText(i.planId, 'upsertPrice planId');
    requireText(i.name, 'upsertPrice name');
    if (!Number.isInteger(i.amountCents) || i.amountCents < 0) {
      throw new InvalidInputError('payment/dummy upsertPrice amountCents: a whole number of cents, 0 or more, is required');
    }
    if (!/^[a-z]{3}$/i.test(i.currency ?? ''))
      throw new InvalidInputError('payment/dummy upsertPrice currency: a 3-letter ISO code is required');
    if (i.interval !== 'month' && i.interval !== 'year')
      throw new InvalidInputError('payment/dummy upsertPrice interval: month or year is required');
    const wanted = { amountCents: i.amountCents, currency: i.currency.toLowerCase(), interval: i.interval, metered: i.metered ?? false };

    const existing = i.existingPriceId ? this.prices.get(i.existingPriceId) : undefined;
    if (existing) {
      existing.name = i.name;
      const same = (Object.keys(wanted) as (keyof typeof wanted)[]).every((k) => existing[k] === wanted[k]);
      if (same) return { priceId: existing.id, productId: existing.productId };
      existing.active = false;
    }
    let productId = this.products.get(i.planId);
    if (!productId) {
      productId = stableId('prod', i.planId);
      this.products.set(i.planId, productId);
    }
    const id = stableId('price', `${i.planId}|${wanted.amountCents}|${wanted.currency}|${wanted.interval}|${wanted.metered}`);
    const known = this.prices.get(id);
    if (known) {
      // The same terms again (back to an earlier amount): that price, sold again.
      Object.assign(known, { name: i.name, active: true });
      return { priceId: known.id, productId };
    }
    const price: Price = { id, productId, planId: i.planId, name: i.name, ...wanted, active: true };
    this.prices.set(price.id, price);
    return { priceId: price.id, productId };
  }

  /** Idempotent. Existing subscriptions keep the price; new checkouts refuse it. */
  async archivePrice(priceId: string) {
    const price = this.prices.get(priceId);
    if (price) price.active = false;
  }

  // -- checkout and portal ----------------------------------------------------------------

  async createCheckout(i: CheckoutInput) {
    this.customer(i.customerId);
    const price = this.price(i.priceId);
    if (!price.active) throw new InvalidInputError(`payment/dummy createCheckout: price "${price.id}" is archived`);
    requireText(i.userId, 'createCheckout userId');
    requireText(i.planId, 'createCheckout planId');
    requireUrl(i.successUrl, 'createCheckout successUrl');
    requireUrl(i.cancelUrl, 'createCheckout cancelUrl');
    if (i.trialDays !== undefined && (!Number.isInteger(i.trialDays) || i.trialDays < 0)) {
      throw new InvalidInputError('payment/dummy createCheckout trialDays: a whole number, 0 or more, is required');
    }
    if (i.meteredPriceId !== undefined && !this.price(i.meteredPriceId).metered) {
      throw new InvalidInputError(`payment/dummy createCheckout meteredPriceId: price "${i.meteredPriceId}" is not metered`);
    }
    const sessionId = newId('cs');
    const session: CheckoutSession = { ...i, sessionId, url: `${this.baseUrl}/${sessionId}`, createdAt: new Date() };
    this.sessions.set(sessionId, session);
    return { url: session.url, sessionId };
  }

  async createPortalSession(i: { customerId: string; returnUrl: string }) {
    this.customer(i.customerId);
    const url = new URL(`${this.baseUrl}/portal`);
    url.searchParams.set('customer', i.customerId);
    url.searchParams.set('return_url', requireUrl(i.returnUrl, 'createPortalSession returnUrl'));
    return { url: url.href };
  }

  /** What a dummy checkout page needs to show: the session, its price and where to send the user back. */
  getCheckoutSession(sessionId: string): CheckoutSession & { amountCents: number; currency: string; interval: 'month' | 'year' } {
    const session = this.sessions.get(sessionId);
    if (!session) throw new DummyNotFoundError('checkout session', sessionId);
    const { amountCents, currency, interval } = this.price(session.priceId);
    return { ...session, amountCents, currency, interval };
  }

  /**
   * Plays the customer paying on the checkout page: creates the subscription (trialing when the
   * session had trial days) and returns it with a signed `checkout.completed` webhook. Completing
   * the same session again returns the same subscription and event id.
   */
  completeCheckout(sessionId: string): StateChange {
    const session = this.sessions.get(sessionId);
    if (!session) throw new DummyNotFoundError('checkout session', sessionId);
    if (session.subscriptionId && session.completedEvent) {
      const sub = this.subscription(session.subscriptionId);
      return { subscription: this.state(sub), event: session.completedEvent, webhook: this.signEvent(session.completedEvent) };
    }
    const price = this.price(session.priceId);
    const now = new Date();
    const trial = session.trialDays ?? 0;
    const sub: Subscription = {
      subscriptionId: newId('sub'),
      customerId: session.customerId,
      priceId: price.id,
      status: trial > 0 ? 'trialing' : 'active',
      currentPeriodStart: now,
      currentPeriodEnd: trial > 0 ? new Date(now.getTime() + trial * 86_400_000) : addInterval(now, price.interval),
      cancelAtPeriodEnd: false,
      ...(session.meteredPriceId ? { meteredPriceId: session.meteredPriceId } : {}),
      userId: session.userId,
      planId: session.planId,
      updatedAt: now,
      invoiceAttempts: 0,
    };
    this.subscriptions.set(sub.subscriptionId, sub);
    // A trial is not charged: its first invoice comes with the first renewal.
    if (trial === 0) this.bill(sub, 'paid');
    session.subscriptionId = sub.subscriptionId;
    session.completedEvent = this.event('checkout.completed', sub, { sessionId });
    return { subscription: this.state(sub), event: session.completedEvent, webhook: this.signEvent(session.completedEvent) };
  }

  /**
   * Ends the current period now: a subscription set to cancel at period end is deleted, a
   * trial turns active, anything else starts a new paid period (`invoice.paid`).
   */
  renewSubscription(subscriptionId: string): StateChange {
    const sub = this.subscription(subscriptionId);
    if (sub.status === 'canceled') throw new InvalidInputError(`payment/dummy renew: subscription "${subscriptionId}" is canceled`);
    if (sub.cancelAtPeriodEnd) {
      this.setStatus(sub, 'canceled');
      return this.change(sub, this.event('subscription.deleted', sub));
    }
    const price = this.price(sub.priceId);
    sub.currentPeriodStart = new Date();
    sub.currentPeriodEnd = addInterval(sub.currentPeriodStart, price.interval);
    const attempts = sub.invoiceAttempts;
    sub.invoiceAttempts = 0;
    this.setStatus(sub, 'active');
    // After failed charges the open invoice is the one that gets paid; else a new one.
    const open = this.openInvoice(sub);
    const paid = open ? Object.assign(open, { status: 'paid' as const }) : this.bill(sub, 'paid');
    return this.change(sub, this.event('invoice.paid', sub, { invoice: this.invoice(sub, open ? attempts + 1 : 1, paid.id) }));
  }

  /** A renewal charge that fails: the subscription goes past_due (`invoice.payment_failed`, attempt counting up). */
  failPayment(subscriptionId: string): StateChange {
    const sub = this.subscription(subscriptionId);
    if (sub.status === 'canceled') throw new InvalidInputError(`payment/dummy failPayment: subscription "${subscriptionId}" is canceled`);
    sub.invoiceAttempts++;
    this.setStatus(sub, 'past_due');
    const open = this.openInvoice(sub) ?? this.bill(sub, 'open');
    return this.change(sub, this.event('invoice.payment_failed', sub, { invoice: this.invoice(sub, sub.invoiceAttempts, open.id) }));
  }

  // -- subscriptions and usage ------------------------------------------------------------

  async getSubscription(subscriptionId: string) {
    return this.state(this.subscription(subscriptionId));
  }

  async *listSubscriptions(i: { customerId?: string; updatedSince?: Date }) {
    for (const sub of [...this.subscriptions.values()]) {
      if (i.customerId !== undefined && sub.customerId !== i.customerId) continue;
      if (i.updatedSince && sub.updatedAt < i.updatedSince) continue;
      yield this.state(sub);
    }
  }

  async changeSubscription(i: { subscriptionId: string; priceId: string }) {
    const sub = this.subscription(i.subscriptionId);
    const price = this.price(i.priceId);
    if (sub.status === 'canceled')
      throw new InvalidInputError(`payment/dummy changeSubscription: subscription "${sub.subscriptionId}" is canceled`);
    if (!price.active) throw new InvalidInputError(`payment/dummy changeSubscription: price "${price.id}" is archived`);
    sub.priceId = price.id;
    sub.planId = price.planId;
    sub.updatedAt = new Date();
    return this.state(sub);
  }

  /** Canceling a canceled subscription returns its state (a retried cancel is not an error). */
  async cancelSubscription(i: { subscriptionId: string; atPeriodEnd: boolean }) {
    const sub = this.subscription(i.subscriptionId);
    if (sub.status === 'canceled') return this.state(sub);
    if (i.atPeriodEnd) {
      sub.cancelAtPeriodEnd = true;
      sub.updatedAt = new Date();
    } else {
      sub.cancelAtPeriodEnd = false;
      this.setStatus(sub, 'canceled');
    }
    return this.state(sub);
  }

  async reportUsage(i: { customerId: string; subscriptionId: string; quantity: number; timestamp: Date; idempotencyKey: string }) {
    const sub = this.subscription(i.subscriptionId);
    if (sub.customerId !== i.customerId) {
      throw new InvalidInputError(
        `payment/dummy reportUsage: subscription "${sub.subscriptionId}" does not belong to customer "${i.customerId}"`,
      );
    }
    if (!this.price(sub.priceId).metered && !sub.meteredPriceId) {
      throw new InvalidInputError(
        `payment/dummy reportUsage: price "${sub.priceId}" is not metered and the subscription has no metered price`,
      );
    }
    if (!Number.isInteger(i.quantity) || i.quantity < 0) {
      throw new InvalidInputError('payment/dummy reportUsage quantity: a whole number, 0 or more, is required');
    }
    if (!(i.timestamp instanceof Date) || Number.isNaN(i.timestamp.getTime())) {
      throw new InvalidInputError('payment/dummy reportUsage timestamp: a valid Date is required');
    }
    requireText(i.idempotencyKey, 'reportUsage idempotencyKey');
    // A repeated key is the same report (a retried job), not more usage.
    if (this.usage.has(i.idempotencyKey)) return;
    this.usage.set(i.idempotencyKey, { subscriptionId: sub.subscriptionId, quantity: i.quantity, timestamp: new Date(i.timestamp) });
  }

  /** Usage recorded for a subscription (repeated idempotency keys counted once). */
  usageFor(subscriptionId: string): { total: number; records: UsageRecord[] } {
    const records = [...this.usage.values()].filter((r) => r.subscriptionId === subscriptionId);
    return { total: records.reduce((n, r) => n + r.quantity, 0), records };
  }

  /** The customer's invoices, newest first (an unknown customer has none). */
  async listInvoices(i: { customerId: string; limit?: number }): Promise<Invoice[]> {
    requireText(i.customerId, 'listInvoices customerId');
    const limit = i.limit ?? 12;
    if (!Number.isInteger(limit) || limit < 1 || limit > 100)
      throw new InvalidInputError('payment/dummy listInvoices limit: a whole number from 1 to 100 is required');
    return this.invoices
      .filter((inv) => inv.customerId === i.customerId)
      .reverse()
      .slice(0, limit)
      .map(({ customerId: _c, subscriptionId: _s, ...inv }) => ({
        ...inv,
        createdAt: new Date(inv.createdAt),
        ...(inv.periodStart ? { periodStart: new Date(inv.periodStart) } : {}),
        ...(inv.periodEnd ? { periodEnd: new Date(inv.periodEnd) } : {}),
      }));
  }

  // -- webhooks ---------------------------------------------------------------------------

  /**
   * Signs a dummy event body the way parseWebhook verifies it: header
   * `apigate-dummy-signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
   */
  signEvent(event: DummyEvent, opts: { signedAt?: Date; secret?: string } = {}): SignedWebhook {
    const rawBody = utf8.encode(JSON.stringify(event));
    const t = Math.floor((opts.signedAt ?? new Date()).getTime() / 1000);
    const v1 = sign(opts.secret ?? this.config.webhookSecret, t, rawBody);
    return { rawBody, headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: `t=${t},v1=${v1}` } };
  }

  /** Checks the signature and its age, reads the envelope and refuses a live-mode event. No network. */
  async verifyWebhook(i: WebhookInput): Promise<VerifiedWebhook> {
    const header = i.headers[SIGNATURE_HEADER];
    if (!header) throw new WebhookSignatureError(`payment/dummy webhook: missing ${SIGNATURE_HEADER} header`);
    const parts = header.split(',').map((p) => p.trim().split('='));
    const t = Number(parts.find(([k]) => k === 't')?.[1]);
    const signatures = parts.filter(([k, v]) => k === 'v1' && v).map(([, v]) => v!);
    if (!Number.isInteger(t) || signatures.length === 0) {
      throw new WebhookSignatureError(`payment/dummy webhook: ${SIGNATURE_HEADER} must look like t=<unix seconds>,v1=<hex>`);
    }
    if (Math.abs(Date.now() / 1000 - t) > TOLERANCE_SECONDS) {
      throw new WebhookSignatureError(
        `payment/dummy webhook: signature timestamp is outside the ${TOLERANCE_SECONDS / 60}-minute tolerance`,
      );
    }
    const expected = Buffer.from(sign(this.config.webhookSecret, t, i.rawBody), 'hex');
    // Several v1 values are allowed (secret rotation); each is compared in constant time.
    const valid = signatures.some((s) => {
      const given = Buffer.from(s, 'hex');
      return given.length === expected.length && timingSafeEqual(given, expected);
    });
    if (!valid)
      throw new WebhookSignatureError('payment/dummy webhook: signature does not match the body and payment.dummy.webhook_secret');
    const { data } = parseJson(i.rawBody, envelopeSchema);
    if (data.livemode === true)
      throw new WebhookModeMismatchError('payment/dummy webhook: a live-mode event, and the dummy provider is test mode only');
    return { id: data.id, type: data.type, occurredAt: data.occurredAt, livemode: false };
  }

  /** The event in a body verifyWebhook accepted (no signature or age check here). */
  async normalizeWebhook(i: WebhookInput): Promise<PaymentEvent> {
    const { data, json } = parseJson(i.rawBody, bodySchema);
    const { type, subscription, livemode: _mode, sessionId: _session, ...rest } = data;
    return {
      ...rest,
      type: KNOWN_TYPES.has(type as PaymentEventType) ? (type as PaymentEventType) : 'ignored',
      ...(subscription ? { subscription } : {}),
      raw: json,
    } as PaymentEvent;
  }

  async parseWebhook(i: WebhookInput): Promise<PaymentEvent> {
    await this.verifyWebhook(i);
    return this.normalizeWebhook(i);
  }

  async check() {
    return {
      status: 'connected' as const,
      detail: `in memory: ${this.customers.size} customers, ${this.subscriptions.size} subscriptions`,
    };
  }

  async close() {}

  // -- internals --------------------------------------------------------------------------

  private customer(id: string): Customer {
    const c = this.customers.get(id);
    if (!c) throw new DummyNotFoundError('customer', id);
    return c;
  }

  private price(id: string): Price {
    const p = this.prices.get(id);
    if (!p) throw new DummyNotFoundError('price', id);
    return p;
  }

  private subscription(id: string): Subscription {
    const s = this.subscriptions.get(id);
    if (!s) throw new DummyNotFoundError('subscription', id);
    return s;
  }

  private setStatus(sub: Subscription, status: SubscriptionStatus): void {
    sub.status = status;
    sub.updatedAt = new Date();
  }

  private state(sub: Subscription): SubscriptionState {
    return {
      subscriptionId: sub.subscriptionId,
      customerId: sub.customerId,
      priceId: sub.priceId,
      status: sub.status,
      ...(sub.currentPeriodEnd ? { currentPeriodEnd: new Date(sub.currentPeriodEnd) } : {}),
      cancelAtPeriodEnd: sub.cancelAtPeriodEnd,
    };
  }

  private invoice(sub: Subscription, attempt: number, id: string) {
    const price = this.price(sub.priceId);
    return { id, amountCents: price.amountCents, currency: price.currency, attempt };
  }

  /** Records an invoice for the subscription's current period at its price. */
  private bill(sub: Subscription, status: 'paid' | 'open'): StoredInvoice {
    const price = this.price(sub.priceId);
    const inv: StoredInvoice = {
      id: newId('in'),
      customerId: sub.customerId,
      subscriptionId: sub.subscriptionId,
      status,
      amountCents: price.amountCents,
      currency: price.currency,
      createdAt: new Date(),
      periodStart: new Date(sub.currentPeriodStart),
      ...(sub.currentPeriodEnd ? { periodEnd: new Date(sub.currentPeriodEnd) } : {}),
    };
    this.invoices.push(inv);
    return inv;
  }

  private openInvoice(sub: Subscription): StoredInvoice | undefined {
    return [...this.invoices].reverse().find((inv) => inv.subscriptionId === sub.subscriptionId && inv.status === 'open');
  }

  private event(type: PaymentEventType, sub: Subscription, extra: Partial<DummyEvent> = {}): DummyEvent {
    return {
      id: newId('evt'),
      type,
      occurredAt: new Date(),
      sequence: ++this.sequence,
      customerId: sub.customerId,
      subscriptionId: sub.subscriptionId,
      priceId: sub.priceId,
      subscription: this.state(sub),
      localRefs: { userId: sub.userId, planId: sub.planId },
      ...extra,
    };
  }

  private change(sub: Subscription, event: DummyEvent): StateChange {
    return { subscription: this.state(sub), event, webhook: this.signEvent(event) };
  }
}

export default defineProvider({
  capability: 'payment',
  name: 'dummy',
  description: 'In-memory payments for development: everything succeeds, nothing is charged',
  config: z.object({
    checkoutBaseUrl: z
      .url({ protocol: /^https?$/, error: 'not an http(s) URL' })
      .default('http://localhost:8080/portal/dummy-checkout')
      .describe('the URL the dummy checkout and portal pages are served under'),
    webhookSecret: z
      .string()
      .min(16, 'too short')
      .default(DEV_WEBHOOK_SECRET)
      .describe('a string of at least 16 characters to sign dummy webhooks with'),
  }),
  env: { checkoutBaseUrl: 'PAYMENT_DUMMY_CHECKOUT_BASE_URL', webhookSecret: 'PAYMENT_DUMMY_WEBHOOK_SECRET' },
  secrets: ['webhookSecret'],
  features: { meteredBilling: true, customerPortal: true, invoices: true, webhookPath: '/webhooks/dummy' },
  create: (config) => new DummyPayment(config),
});
