import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import qs from 'qs';

/** Keys the fake accepts: a full secret key, and a restricted one that may not read the balance. */
export const SECRET_KEY = 'sk_test_51FakeApigateSecretKey0123456789abcdefghijklmnop';
export const RESTRICTED_KEY = 'rk_test_51FakeApigateRestrictedKey0123456789abcdefghij';
export const API_VERSION = '2026-10-28.endive';

type Params = Record<string, any>;
type Json = Record<string, unknown>;
type Metadata = Record<string, string>;

export interface RecordedRequest {
  method: string;
  path: string;
  params: Params;
  headers: IncomingHttpHeaders;
}

interface Customer {
  id: string;
  created: number;
  email: string | null;
  name: string | null;
  metadata: Metadata;
  deleted: boolean;
}
interface Product {
  id: string;
  created: number;
  updated: number;
  name: string;
  active: boolean;
  metadata: Metadata;
}
interface Price {
  id: string;
  created: number;
  product: string;
  currency: string;
  unit_amount: number;
  nickname: string | null;
  active: boolean;
  metadata: Metadata;
  interval: 'day' | 'week' | 'month' | 'year';
  usage_type: 'licensed' | 'metered';
  meter: string | null;
}
interface Meter {
  id: string;
  created: number;
  updated: number;
  display_name: string;
  event_name: string;
  status: 'active' | 'inactive';
  formula: string;
  customer_key: string;
  value_key: string;
}
interface MeterEvent {
  created: number;
  event_name: string;
  identifier: string;
  payload: Metadata;
  timestamp: number;
}
interface Session {
  id: string;
  created: number;
  customer: string;
  line: { price: string; quantity?: number };
  /** Further line items: metered prices (an overage item next to the plan's). */
  meteredLines: string[];
  client_reference_id: string | null;
  metadata: Metadata;
  subscription_metadata: Metadata;
  trial_period_days: number | null;
  success_url: string | null;
  cancel_url: string | null;
  status: 'open' | 'complete';
  subscription: string | null;
}
interface Subscription {
  id: string;
  created: number;
  customer: string;
  status: string;
  item: { id: string; price: string; quantity?: number; created: number };
  /** Metered items after the first (from a checkout's further line items). */
  meteredItems: { id: string; price: string; created: number }[];
  current_period_start: number;
  current_period_end: number;
  trial_start: number | null;
  trial_end: number | null;
  cancel_at_period_end: boolean;
  cancel_at: number | null;
  canceled_at: number | null;
  ended_at: number | null;
  metadata: Metadata;
}

/** An invoice Stripe's billing engine made for a subscription (at its start, or a renewal). */
interface Invoice {
  id: string;
  number: string;
  created: number;
  customer: string;
  subscription: string;
  price: string;
  amount: number;
  currency: string;
  status: 'draft' | 'open' | 'paid' | 'void' | 'uncollectible';
  attempt: number;
  billing_reason: 'subscription_create' | 'subscription_cycle';
  /** The service period the line bills. */
  line_period: { start: number; end: number };
}

interface Answer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/** A failure to answer with instead of handling, for the next request(s) that match. */
export interface InjectedFailure extends Answer {
  match?: (req: RecordedRequest) => boolean;
  times?: number;
}

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly error: { type: string; message: string; code?: string; param?: string },
    readonly headers: Record<string, string> = {},
  ) {
    super(error.message);
  }
}

const invalid = (message: string, param?: string, code?: string) =>
  new ApiError(400, { type: 'invalid_request_error', message, ...(param ? { param } : {}), ...(code ? { code } : {}) });
const missing = (kind: string, id: string, param = 'id') =>
  new ApiError(404, { type: 'invalid_request_error', code: 'resource_missing', param, message: `No such ${kind}: '${id}'` });

const now = () => Math.floor(Date.now() / 1000);
const id = (prefix: string, length = 14) => {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return `${prefix}_${[...randomBytes(length)].map((b) => alphabet[b % alphabet.length]).join('')}`;
};
const DAY = 86_400;

/** Adds calendar months in UTC, clamping to the month's last day (Jan 31 + 1 month = Feb 28/29), as Stripe bills. */
function addMonths(unix: number, months: number): number {
  const d = new Date(unix * 1000);
  const day = d.getUTCDate();
  d.setUTCDate(1);
  d.setUTCMonth(d.getUTCMonth() + months);
  d.setUTCDate(Math.min(day, new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate()));
  return Math.floor(d.getTime() / 1000);
}
const periodEnd = (start: number, interval: Price['interval']) =>
  interval === 'year' ? addMonths(start, 12) : interval === 'month' ? addMonths(start, 1) : start + (interval === 'week' ? 7 : 1) * DAY;

function nonNegativeInt(value: unknown, param: string): number {
  if (typeof value !== 'string' || !/^\d+$/.test(value)) throw invalid('Invalid non-negative integer', param, 'parameter_invalid_integer');
  return Number(value);
}
const bool = (value: unknown): boolean | undefined => (value === 'true' ? true : value === 'false' ? false : undefined);
const metadataOf = (value: unknown): Metadata => (value && typeof value === 'object' ? { ...(value as Metadata) } : {});

/**
 * A small Stripe API (v1, form-encoded requests, JSON answers in Stripe's object shapes) for the
 * endpoints the provider uses, with Bearer auth, Stripe's error envelope and statuses, list
 * envelopes with `limit`/`starting_after` paging (newest first), and Idempotency-Key replay.
 * What a customer does on hosted pages is played with `completeCheckout`.
 */
export class FakeStripe {
  url = '';
  readonly requests: RecordedRequest[] = [];
  /** Requests are held unanswered while true (to test timeouts and aborted checks); `onHeld` fires for each. */
  hold = false;
  onHeld?: () => void;

  private readonly customers = new Map<string, Customer>();
  private readonly products = new Map<string, Product>();
  private readonly prices = new Map<string, Price>();
  private readonly meters = new Map<string, Meter>();
  private readonly meterEvents: MeterEvent[] = [];
  private readonly sessions = new Map<string, Session>();
  private readonly subscriptions = new Map<string, Subscription>();
  private readonly invoices = new Map<string, Invoice>();
  private readonly idempotent = new Map<string, { fingerprint: string; answer: Answer; requestId: string }>();
  private readonly failures: InjectedFailure[] = [];
  private server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => this.handle(req.method ?? 'GET', req.url ?? '/', req.headers, Buffer.concat(chunks).toString('utf8'), res));
  });

  static async start(): Promise<FakeStripe> {
    const fake = new FakeStripe();
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve));
    fake.url = `http://127.0.0.1:${(fake.server.address() as AddressInfo).port}`;
    return fake;
  }

  close(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.server.closeAllConnections();
      this.server.close(() => resolve());
    });
  }

  /** Answers the next matching request(s) with `failure` instead of handling them. */
  failNext(failure: InjectedFailure): void {
    this.failures.push({ times: 1, ...failure });
  }

  // -- what happens on Stripe-hosted pages and in Stripe's billing engine ------------------

  /** The customer pays on the checkout page: the session completes and its subscription starts (trialing with trial days). */
  completeCheckout(sessionId: string): { subscriptionId: string } {
    const session = this.sessions.get(sessionId);
    if (!session) throw new Error(`fake stripe: no checkout session ${sessionId}`);
    if (session.subscription) return { subscriptionId: session.subscription };
    const price = this.prices.get(session.line.price)!;
    const start = now();
    const trialEnd = session.trial_period_days ? start + session.trial_period_days * DAY : null;
    const sub = this.addSubscription(session.customer, price, {
      metadata: session.subscription_metadata,
      trialEnd,
      ...(session.line.quantity !== undefined ? { quantity: session.line.quantity } : {}),
    });
    sub.meteredItems = session.meteredLines.map((p) => ({ id: id('si'), price: p, created: start }));
    // The first invoice: paid at checkout, or a zero one for a trial (metered items bill in arrears).
    this.addInvoice(sub.id, { status: 'paid', reason: 'subscription_create', amount: trialEnd ? 0 : undefined });
    session.status = 'complete';
    session.subscription = sub.id;
    return { subscriptionId: sub.id };
  }

  /**
   * An invoice for the subscription's current period at its price (or `amount`), as the billing
   * engine makes at a renewal: `paid`, or `open` for a charge that failed; `created` to date it.
   */
  addInvoice(
    subscriptionId: string,
    o: { status: Invoice['status']; amount?: number | undefined; created?: number; reason?: Invoice['billing_reason'] },
  ): string {
    const s = this.subscriptions.get(subscriptionId);
    if (!s) throw new Error(`fake stripe: no subscription ${subscriptionId}`);
    const price = this.prices.get(s.item.price)!;
    const inv: Invoice = {
      id: id('in', 24),
      number: `FAKE-${String(this.invoices.size + 1).padStart(4, '0')}`,
      created: o.created ?? now(),
      customer: s.customer,
      subscription: s.id,
      price: price.id,
      amount: o.amount ?? (price.usage_type === 'metered' ? 0 : price.unit_amount * (s.item.quantity ?? 1)),
      currency: price.currency,
      status: o.status,
      attempt: o.status === 'draft' ? 0 : 1,
      billing_reason: o.reason ?? 'subscription_cycle',
      line_period: { start: s.current_period_start, end: s.current_period_end },
    };
    this.invoices.set(inv.id, inv);
    return inv.id;
  }

  /** Subscriptions made straight in the store (for paging tests), oldest first. */
  seedSubscriptions(customerId: string, priceId: string, count: number): string[] {
    const price = this.prices.get(priceId)!;
    return Array.from({ length: count }, () => this.addSubscription(customerId, price, { metadata: {} }).id);
  }

  /** Usage the meter counted for a customer: meter events summed once per identifier. */
  usageFor(customerId: string, eventName: string): number {
    const seen = new Set<string>();
    let total = 0;
    for (const e of this.meterEvents) {
      const meter = [...this.meters.values()].find((m) => m.event_name === e.event_name);
      if (e.event_name !== eventName || !meter || e.payload[meter.customer_key] !== customerId || seen.has(e.identifier)) continue;
      seen.add(e.identifier);
      total += Number(e.payload[meter.value_key]);
    }
    return total;
  }

  meterEventsFor(customerId: string): MeterEvent[] {
    return this.meterEvents.filter((e) => Object.values(e.payload).includes(customerId));
  }

  customerOf(subscriptionId: string): string {
    return this.subscriptions.get(subscriptionId)!.customer;
  }

  // -- object shapes (also what webhook bodies carry) --------------------------------------

  customerJson(c: Customer): Json {
    if (c.deleted) return { id: c.id, object: 'customer', deleted: true };
    return {
      id: c.id,
      object: 'customer',
      created: c.created,
      email: c.email,
      name: c.name,
      metadata: c.metadata,
      livemode: false,
      balance: 0,
      currency: null,
      delinquent: false,
      description: null,
    };
  }

  priceJson(p: Price): Json {
    return {
      id: p.id,
      object: 'price',
      active: p.active,
      billing_scheme: 'per_unit',
      created: p.created,
      currency: p.currency,
      livemode: false,
      lookup_key: null,
      metadata: p.metadata,
      nickname: p.nickname,
      product: p.product,
      recurring: { interval: p.interval, interval_count: 1, meter: p.meter, trial_period_days: null, usage_type: p.usage_type },
      tax_behavior: 'unspecified',
      type: 'recurring',
      unit_amount: p.unit_amount,
      unit_amount_decimal: String(p.unit_amount),
    };
  }

  subscriptionJson(subscriptionId: string): Json {
    const s = this.subscriptions.get(subscriptionId)!;
    const price = this.prices.get(s.item.price)!;
    return {
      id: s.id,
      object: 'subscription',
      billing_cycle_anchor: s.current_period_end,
      cancel_at: s.cancel_at,
      cancel_at_period_end: s.cancel_at_period_end,
      canceled_at: s.canceled_at,
      collection_method: 'charge_automatically',
      created: s.created,
      currency: price.currency,
      customer: s.customer,
      ended_at: s.ended_at,
      items: {
        object: 'list',
        data: [
          {
            id: s.item.id,
            object: 'subscription_item',
            created: s.item.created,
            current_period_end: s.current_period_end,
            current_period_start: s.current_period_start,
            metadata: {},
            price: this.priceJson(price),
            ...(s.item.quantity !== undefined ? { quantity: s.item.quantity } : {}),
            subscription: s.id,
          },
          ...s.meteredItems.map((m) => ({
            id: m.id,
            object: 'subscription_item',
            created: m.created,
            current_period_end: s.current_period_end,
            current_period_start: s.current_period_start,
            metadata: {},
            price: this.priceJson(this.prices.get(m.price)!),
            subscription: s.id,
          })),
        ],
        has_more: false,
        total_count: 1 + s.meteredItems.length,
        url: `/v1/subscription_items?subscription=${s.id}`,
      },
      latest_invoice: null,
      livemode: false,
      metadata: s.metadata,
      start_date: s.created,
      status: s.status,
      trial_end: s.trial_end,
      trial_start: s.trial_start,
    };
  }

  sessionJson(sessionId: string): Json {
    const s = this.sessions.get(sessionId)!;
    const price = this.prices.get(s.line.price)!;
    return {
      id: s.id,
      object: 'checkout.session',
      amount_total: price.unit_amount,
      cancel_url: s.cancel_url,
      client_reference_id: s.client_reference_id,
      created: s.created,
      currency: price.currency,
      customer: s.customer,
      expires_at: s.created + DAY,
      livemode: false,
      metadata: s.metadata,
      mode: 'subscription',
      payment_status: s.status === 'complete' ? (s.trial_period_days ? 'no_payment_required' : 'paid') : 'unpaid',
      status: s.status,
      subscription: s.subscription,
      success_url: s.success_url,
      url: s.status === 'open' ? `https://checkout.stripe.com/c/pay/${s.id}` : null,
    };
  }

  /** An invoice of a subscription (the basil+ shape: the subscription under parent.subscription_details). */
  invoiceJson(i: {
    id: string;
    subscriptionId: string;
    amount: number;
    currency: string;
    paid: boolean;
    attempt: number;
    metadata?: Metadata;
  }): Json {
    const s = this.subscriptions.get(i.subscriptionId)!;
    const price = this.prices.get(s.item.price)!;
    const details = { metadata: i.metadata ?? s.metadata, subscription: s.id };
    return {
      id: i.id,
      object: 'invoice',
      amount_due: i.amount,
      amount_paid: i.paid ? i.amount : 0,
      amount_remaining: i.paid ? 0 : i.amount,
      attempt_count: i.attempt,
      attempted: true,
      billing_reason: 'subscription_cycle',
      collection_method: 'charge_automatically',
      created: now(),
      currency: i.currency,
      customer: s.customer,
      lines: this.invoiceLines(i.id, id('il'), { amount: i.amount, currency: i.currency }, s, price, {
        start: s.current_period_start,
        end: s.current_period_end,
      }),
      livemode: false,
      parent: { type: 'subscription_details', quote_details: null, subscription_details: details },
      status: i.paid ? 'paid' : 'open',
    };
  }

  /** An invoice's `lines` list: its one line, for the subscription's item at its price over `period`. */
  private invoiceLines(
    invoiceId: string,
    lineId: string,
    charge: { amount: number; currency: string },
    s: Subscription,
    price: Price,
    period: { start: number; end: number },
  ): Json {
    return {
      object: 'list',
      data: [
        {
          id: lineId,
          object: 'line_item',
          amount: charge.amount,
          currency: charge.currency,
          parent: { type: 'subscription_item_details', subscription_item_details: { subscription: s.id, subscription_item: s.item.id } },
          period,
          pricing: {
            type: 'price_details',
            price_details: { price: price.id, product: price.product },
            unit_amount_decimal: String(price.unit_amount),
          },
          quantity: s.item.quantity ?? null,
        },
      ],
      has_more: false,
      url: `/v1/invoices/${invoiceId}/lines`,
    };
  }

  /** A stored invoice as GET /v1/invoices answers it (the 2025+ shape: amounts, totals, hosted pages, lines with their period). */
  storedInvoiceJson(inv: Invoice): Json {
    const s = this.subscriptions.get(inv.subscription)!;
    const price = this.prices.get(inv.price)!;
    const paid = inv.status === 'paid';
    const hosted = inv.status === 'draft' ? null : `https://invoice.stripe.com/i/acct_fake/test_${inv.id.slice(3)}`;
    return {
      id: inv.id,
      object: 'invoice',
      account_country: 'US',
      account_name: 'APIGate Fake',
      amount_due: inv.amount,
      amount_paid: paid ? inv.amount : 0,
      amount_remaining: paid ? 0 : inv.amount,
      attempt_count: inv.attempt,
      attempted: inv.attempt > 0,
      billing_reason: inv.billing_reason,
      collection_method: 'charge_automatically',
      created: inv.created,
      currency: inv.currency,
      customer: inv.customer,
      hosted_invoice_url: hosted,
      invoice_pdf: hosted ? `${hosted}/pdf` : null,
      lines: this.invoiceLines(inv.id, `il_${inv.id.slice(3)}`, inv, s, price, inv.line_period),
      livemode: false,
      number: inv.status === 'draft' ? null : inv.number,
      parent: { type: 'subscription_details', quote_details: null, subscription_details: { metadata: s.metadata, subscription: s.id } },
      // The invoice's own period is the usage period before it (equal to `created` for a first invoice), not the service period.
      period_end: inv.created,
      period_start: inv.billing_reason === 'subscription_create' ? inv.created : inv.line_period.start,
      status: inv.status,
      status_transitions: {
        finalized_at: inv.status === 'draft' ? null : inv.created,
        paid_at: paid ? inv.created : null,
        voided_at: null,
        marked_uncollectible_at: null,
      },
      subtotal: inv.amount,
      total: inv.amount,
    };
  }

  /** The envelope Stripe posts to webhook endpoints. */
  eventJson(i: { id: string; type: string; created: number; object: Json }): Json {
    return {
      id: i.id,
      object: 'event',
      api_version: API_VERSION,
      created: i.created,
      data: { object: i.object },
      livemode: false,
      pending_webhooks: 1,
      request: { id: null, idempotency_key: null },
      type: i.type,
    };
  }

  customerJsonById(customerId: string): Json {
    return this.customerJson(this.customers.get(customerId)!);
  }

  // -- HTTP --------------------------------------------------------------------------------

  private handle(method: string, rawUrl: string, headers: IncomingHttpHeaders, body: string, res: ServerResponse): void {
    const url = new URL(rawUrl, 'http://fake');
    const params: Params = qs.parse(method === 'POST' ? body : url.search.slice(1), { depth: 10, arrayLimit: 100 });
    const req: RecordedRequest = { method, path: url.pathname, params, headers };
    this.requests.push(req);
    if (this.hold) {
      this.onHeld?.();
      return;
    }
    const requestId = id('req');
    const { answer, extra } = this.answer(req, body, requestId);
    res.writeHead(answer.status, {
      'content-type': 'application/json',
      'request-id': requestId,
      'stripe-version': String(headers['stripe-version'] ?? API_VERSION),
      ...answer.headers,
      ...extra,
    });
    res.end(JSON.stringify(answer.body));
  }

  private answer(req: RecordedRequest, body: string, requestId: string): { answer: Answer; extra?: Record<string, string> } {
    const failure = this.failures.find((f) => !f.match || f.match(req));
    if (failure) {
      if (--failure.times! <= 0) this.failures.splice(this.failures.indexOf(failure), 1);
      return { answer: failure };
    }

    const key = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (key !== SECRET_KEY && key !== RESTRICTED_KEY) {
      const shown = key ? `${key.slice(0, 8)}${'*'.repeat(Math.max(0, key.length - 12))}${key.slice(-4)}` : '';
      const message = key ? `Invalid API Key provided: ${shown}` : 'You did not provide an API key.';
      return { answer: { status: 401, body: { error: { type: 'invalid_request_error', message } } } };
    }

    // Stripe saves the first answer for a key and replays it; the same key with other parameters is refused.
    const idemKey = req.headers['idempotency-key'];
    const scoped = typeof idemKey === 'string' && req.method === 'POST' ? `${key} ${idemKey}` : undefined;
    const fingerprint = `${req.method} ${req.path} ${body}`;
    const saved = scoped ? this.idempotent.get(scoped) : undefined;
    if (saved && saved.fingerprint !== fingerprint) {
      const message = `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${idemKey}' if you meant to execute a different request.`;
      return { answer: { status: 400, body: { error: { type: 'idempotency_error', message } } } };
    }
    if (saved) return { answer: saved.answer, extra: { 'idempotent-replayed': 'true', 'original-request': saved.requestId } };

    let answer: Answer;
    try {
      answer = { status: 200, body: this.route(req.method, req.path, req.params, key) };
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      answer = {
        status: err.status,
        body: { error: { ...err.error, request_log_url: `https://dashboard.stripe.com/test/logs/${requestId}` } },
        headers: err.headers,
      };
    }
    if (scoped) this.idempotent.set(scoped, { fingerprint, answer, requestId });
    return { answer };
  }

  private route(method: string, path: string, p: Params, key: string): unknown {
    const parts = path.split('/').filter(Boolean);
    if (parts[0] !== 'v1')
      throw new ApiError(404, { type: 'invalid_request_error', message: `Unrecognized request URL (${method}: ${path}).` });
    const [, resource, rid, action] = parts;
    const at = (m: string, r: string, withId: boolean, act?: string) =>
      method === m && resource === r && !!rid === withId && action === act;

    if (at('GET', 'balance', false)) {
      if (key === RESTRICTED_KEY) {
        throw new ApiError(403, {
          type: 'invalid_request_error',
          message: `The provided key '${key.slice(0, 8)}***${key.slice(-4)}' does not have the required permissions for this endpoint on account 'acct_fake'. Having the 'rak_balance_read' permission would allow this request to continue.`,
        });
      }
      return {
        object: 'balance',
        available: [{ amount: 0, currency: 'usd', source_types: { card: 0 } }],
        pending: [{ amount: 0, currency: 'usd', source_types: { card: 0 } }],
        livemode: false,
      };
    }

    if (at('POST', 'customers', false)) return this.customerJson(this.createCustomer(p));
    if (at('GET', 'customers', true)) return this.customerJson(this.customer(rid!, true));
    if (at('DELETE', 'customers', true)) {
      const c = this.customer(rid!);
      c.deleted = true;
      for (const s of this.subscriptions.values()) if (s.customer === c.id && !this.isEnded(s)) this.cancel(s);
      return { id: c.id, object: 'customer', deleted: true };
    }

    if (resource === 'invoices' && method === 'GET') return this.invoices_(rid, action, p);
    if (resource === 'products') return this.products_(method, rid, p);
    if (resource === 'prices') return this.prices_(method, rid, p);
    if (resource === 'billing' && rid === 'meters') return this.meters_(method, parts[3], parts[4], p);
    if (resource === 'billing' && rid === 'meter_events' && method === 'POST') return this.meterEvent(p);
    if (resource === 'checkout' && rid === 'sessions' && method === 'POST' && !parts[3]) return this.sessionJson(this.createSession(p).id);
    if (resource === 'billing_portal' && rid === 'sessions' && method === 'POST') {
      const c = this.customer(String(p.customer ?? ''), false, 'customer');
      return {
        id: id('bps'),
        object: 'billing_portal.session',
        configuration: 'bpc_fakedefault',
        created: now(),
        customer: c.id,
        flow: null,
        livemode: false,
        locale: null,
        on_behalf_of: null,
        return_url: p.return_url ?? null,
        url: `https://billing.stripe.com/p/session/test_${randomBytes(12).toString('hex')}`,
      };
    }
    if (resource === 'subscriptions') return this.subscriptions_(method, rid, p);
    throw new ApiError(404, { type: 'invalid_request_error', message: `Unrecognized request URL (${method}: ${path}).` });
  }

  // -- resources ---------------------------------------------------------------------------

  private createCustomer(p: Params): Customer {
    const c: Customer = {
      id: id('cus'),
      created: now(),
      email: p.email ?? null,
      name: p.name ?? null,
      metadata: metadataOf(p.metadata),
      deleted: false,
    };
    this.customers.set(c.id, c);
    return c;
  }

  /** Deleted customers can still be retrieved (as `deleted: true`) but not used. */
  private customer(cid: string, allowDeleted = false, param = 'id'): Customer {
    const c = this.customers.get(cid);
    if (!c || (c.deleted && !allowDeleted)) throw missing('customer', cid, param);
    return c;
  }

  private products_(method: string, pid: string | undefined, p: Params): Json {
    if (method === 'POST' && !pid) {
      if (!p.name) throw invalid('Missing required param: name.', 'name', 'parameter_missing');
      const productId = p.id ?? id('prod');
      if (this.products.has(productId)) throw invalid('Product already exists.', 'id', 'resource_already_exists');
      const t = now();
      const product: Product = {
        id: productId,
        created: t,
        updated: t,
        name: p.name,
        active: bool(p.active) ?? true,
        metadata: metadataOf(p.metadata),
      };
      this.products.set(product.id, product);
      return this.productJson(product);
    }
    const product = this.products.get(pid ?? '');
    if (!product) throw missing('product', pid ?? '');
    if (method === 'GET') return this.productJson(product);
    if (method === 'POST') {
      if (p.name !== undefined) product.name = p.name;
      if (p.active !== undefined) product.active = bool(p.active) ?? product.active;
      Object.assign(product.metadata, metadataOf(p.metadata));
      product.updated = now();
      return this.productJson(product);
    }
    throw new ApiError(404, { type: 'invalid_request_error', message: `Unrecognized request URL (${method}: /v1/products/${pid}).` });
  }

  private productJson(p: Product): Json {
    return {
      id: p.id,
      object: 'product',
      active: p.active,
      created: p.created,
      updated: p.updated,
      name: p.name,
      metadata: p.metadata,
      livemode: false,
      type: 'service',
      default_price: null,
    };
  }

  private prices_(method: string, pid: string | undefined, p: Params): unknown {
    if (method === 'GET' && !pid) {
      let all = [...this.prices.values()];
      if (p.product) all = all.filter((x) => x.product === p.product);
      if (p.active !== undefined) all = all.filter((x) => x.active === bool(p.active));
      return this.list('/v1/prices', all, p, (x) => this.priceJson(x));
    }
    if (method === 'POST' && !pid) return this.priceJson(this.createPrice(p));
    const price = this.prices.get(pid ?? '');
    if (!price) throw missing('price', pid ?? '');
    if (method === 'GET') return this.priceJson(price);
    if (method === 'POST') {
      for (const k of Object.keys(p)) {
        if (!['active', 'nickname', 'metadata', 'expand'].includes(k)) {
          throw invalid(`Received unknown parameter: ${k}. Prices are immutable: create a new price instead.`, k, 'parameter_unknown');
        }
      }
      if (p.active !== undefined) price.active = bool(p.active) ?? price.active;
      if (p.nickname !== undefined) price.nickname = p.nickname;
      Object.assign(price.metadata, metadataOf(p.metadata));
      return this.priceJson(price);
    }
    throw new ApiError(404, { type: 'invalid_request_error', message: `Unrecognized request URL (${method}: /v1/prices/${pid}).` });
  }

  private createPrice(p: Params): Price {
    if (!p.currency) throw invalid('Missing required param: currency.', 'currency', 'parameter_missing');
    if (!p.product || !this.products.has(p.product)) throw missing('product', String(p.product ?? ''), 'product');
    const unit = nonNegativeInt(p.unit_amount, 'unit_amount');
    const recurring = (p.recurring ?? {}) as Params;
    if (!['day', 'week', 'month', 'year'].includes(recurring.interval)) {
      throw invalid('Invalid recurring[interval]: must be one of day, week, month, or year', 'recurring[interval]');
    }
    const usage = (recurring.usage_type ?? 'licensed') as Price['usage_type'];
    let meter: string | null = null;
    if (usage === 'metered') {
      if (!recurring.meter)
        throw invalid('Metered prices must be backed by a meter: pass recurring[meter].', 'recurring[meter]', 'parameter_missing');
      if (!this.meters.has(recurring.meter)) throw missing('billing.meter', recurring.meter, 'recurring[meter]');
      meter = recurring.meter;
    }
    const price: Price = {
      id: id('price'),
      created: now(),
      product: p.product,
      currency: String(p.currency).toLowerCase(),
      unit_amount: unit,
      nickname: p.nickname ?? null,
      active: true,
      metadata: metadataOf(p.metadata),
      interval: recurring.interval,
      usage_type: usage,
      meter,
    };
    this.prices.set(price.id, price);
    return price;
  }

  private meters_(method: string, mid: string | undefined, action: string | undefined, p: Params): unknown {
    const json = (m: Meter) => ({
      id: m.id,
      object: 'billing.meter',
      created: m.created,
      customer_mapping: { event_payload_key: m.customer_key, type: 'by_id' },
      default_aggregation: { formula: m.formula },
      display_name: m.display_name,
      event_name: m.event_name,
      event_time_window: null,
      livemode: false,
      status: m.status,
      status_transitions: { deactivated_at: null },
      updated: m.updated,
      value_settings: { event_payload_key: m.value_key },
    });
    if (method === 'GET' && !mid) {
      const all = [...this.meters.values()].filter((m) => !p.status || m.status === p.status);
      return this.list('/v1/billing/meters', all, p, json);
    }
    if (method === 'POST' && !mid) {
      for (const k of ['display_name', 'event_name'] as const)
        if (!p[k]) throw invalid(`Missing required param: ${k}.`, k, 'parameter_missing');
      if (!p.default_aggregation?.formula)
        throw invalid('Missing required param: default_aggregation.', 'default_aggregation', 'parameter_missing');
      if ([...this.meters.values()].some((m) => m.event_name === p.event_name)) {
        throw invalid(`A meter with event_name '${p.event_name}' already exists.`, 'event_name', 'resource_already_exists');
      }
      const t = now();
      const m: Meter = {
        id: id('mtr'),
        created: t,
        updated: t,
        display_name: p.display_name,
        event_name: p.event_name,
        status: 'active',
        formula: p.default_aggregation.formula,
        customer_key: p.customer_mapping?.event_payload_key ?? 'stripe_customer_id',
        value_key: p.value_settings?.event_payload_key ?? 'value',
      };
      this.meters.set(m.id, m);
      return json(m);
    }
    const m = this.meters.get(mid ?? '');
    if (!m) throw missing('billing.meter', mid ?? '');
    if (method === 'GET' && !action) return json(m);
    if (method === 'POST' && (action === 'reactivate' || action === 'deactivate')) {
      m.status = action === 'reactivate' ? 'active' : 'inactive';
      m.updated = now();
      return json(m);
    }
    throw new ApiError(404, {
      type: 'invalid_request_error',
      message: `Unrecognized request URL (${method}: /v1/billing/meters/${mid}/${action}).`,
    });
  }

  /** Accepted at once; duplicates of an identifier are dropped when the meter aggregates (see usageFor). */
  private meterEvent(p: Params): Json {
    if (!p.event_name) throw invalid('Missing required param: event_name.', 'event_name', 'parameter_missing');
    if (!p.payload || typeof p.payload !== 'object') throw invalid('Missing required param: payload.', 'payload', 'parameter_missing');
    const identifier = p.identifier ?? id('evtid', 20);
    if (String(identifier).length > 100) throw invalid('Invalid identifier: must be at most 100 characters', 'identifier');
    const t = now();
    const timestamp = p.timestamp === undefined ? t : Number(p.timestamp);
    if (!Number.isInteger(timestamp) || timestamp < t - 35 * DAY || timestamp > t + 300) {
      throw invalid('Timestamp must be within the past 35 calendar days or up to 5 minutes in the future.', 'timestamp');
    }
    const e: MeterEvent = { created: t, event_name: p.event_name, identifier, payload: metadataOf(p.payload), timestamp };
    this.meterEvents.push(e);
    return { object: 'billing.meter_event', livemode: false, ...e };
  }

  private createSession(p: Params): Session {
    if (p.mode !== 'subscription') throw invalid('This fake only makes subscription-mode sessions.', 'mode');
    const customer = this.customer(String(p.customer ?? ''), false, 'customer');
    const line = (p.line_items ?? [])[0] as Params | undefined;
    if (!line?.price) throw invalid('Missing required param: line_items.', 'line_items', 'parameter_missing');
    const price = this.prices.get(line.price);
    if (!price) throw missing('price', line.price, 'line_items[0][price]');
    if (!price.active) throw invalid('The price specified is inactive. This field only accepts active prices.', 'line_items[0][price]');
    if (price.usage_type === 'metered' && line.quantity !== undefined) {
      throw invalid(
        'Quantity should not be specified where usage_type is `metered`. Remove quantity from `line_items[0]`',
        'line_items[0][quantity]',
      );
    }
    if (price.usage_type === 'licensed' && line.quantity === undefined) {
      throw invalid('Quantity is required. Add `quantity` to `line_items[0]`', 'line_items[0][quantity]', 'parameter_missing');
    }
    const meteredLines = ((p.line_items ?? []) as Params[]).slice(1).map((l, n) => {
      const at = `line_items[${n + 1}]`;
      const extra = this.prices.get(l?.price);
      if (!extra) throw missing('price', String(l?.price ?? ''), `${at}[price]`);
      if (!extra.active) throw invalid('The price specified is inactive. This field only accepts active prices.', `${at}[price]`);
      if (extra.usage_type !== 'metered')
        throw invalid(`This fake takes only metered prices after the first line item (${at}).`, `${at}[price]`);
      if (l.quantity !== undefined)
        throw invalid(
          `Quantity should not be specified where usage_type is \`metered\`. Remove quantity from \`${at}\``,
          `${at}[quantity]`,
        );
      if (extra.interval !== price.interval)
        throw invalid('All prices on a subscription must have the same recurring interval.', `${at}[price]`);
      return extra.id;
    });
    const trial = p.subscription_data?.trial_period_days;
    if (trial !== undefined && nonNegativeInt(trial, 'subscription_data[trial_period_days]') < 1) {
      throw invalid('The minimum number of trial period days is 1.', 'subscription_data[trial_period_days]');
    }
    const s: Session = {
      id: `cs_test_${randomBytes(24).toString('base64url')}`,
      created: now(),
      customer: customer.id,
      line: {
        price: price.id,
        ...(line.quantity !== undefined ? { quantity: nonNegativeInt(line.quantity, 'line_items[0][quantity]') } : {}),
      },
      meteredLines,
      client_reference_id: p.client_reference_id ?? null,
      metadata: metadataOf(p.metadata),
      subscription_metadata: metadataOf(p.subscription_data?.metadata),
      trial_period_days: trial === undefined ? null : Number(trial),
      success_url: p.success_url ?? null,
      cancel_url: p.cancel_url ?? null,
      status: 'open',
      subscription: null,
    };
    this.sessions.set(s.id, s);
    return s;
  }

  private addSubscription(
    customer: string,
    price: Price,
    o: { metadata: Metadata; trialEnd?: number | null; quantity?: number },
  ): Subscription {
    const start = now();
    const created = start;
    const sub: Subscription = {
      id: id('sub'),
      created,
      customer,
      status: o.trialEnd ? 'trialing' : 'active',
      item: { id: id('si'), price: price.id, created, ...(price.usage_type === 'licensed' ? { quantity: o.quantity ?? 1 } : {}) },
      meteredItems: [],
      current_period_start: start,
      // During a trial the first period ends with the trial.
      current_period_end: o.trialEnd ?? periodEnd(start, price.interval),
      trial_start: o.trialEnd ? start : null,
      trial_end: o.trialEnd ?? null,
      cancel_at_period_end: false,
      cancel_at: null,
      canceled_at: null,
      ended_at: null,
      metadata: o.metadata,
    };
    this.subscriptions.set(sub.id, sub);
    return sub;
  }

  private isEnded(s: Subscription): boolean {
    return s.status === 'canceled' || s.status === 'incomplete_expired';
  }

  private cancel(s: Subscription): void {
    const t = now();
    s.status = 'canceled';
    s.canceled_at = t;
    s.ended_at = t;
    s.cancel_at = null;
  }

  private subscriptions_(method: string, sid: string | undefined, p: Params): unknown {
    if (method === 'GET' && !sid) {
      let all = [...this.subscriptions.values()];
      if (p.customer) all = all.filter((s) => s.customer === p.customer);
      const status = p.status ?? 'active_or_live';
      if (status === 'active_or_live') all = all.filter((s) => s.status !== 'canceled' && s.status !== 'incomplete_expired');
      else if (status === 'ended') all = all.filter((s) => this.isEnded(s));
      else if (status !== 'all') all = all.filter((s) => s.status === status);
      return this.list('/v1/subscriptions', all, p, (s) => this.subscriptionJson(s.id));
    }
    const sub = this.subscriptions.get(sid ?? '');
    if (!sub) throw missing('subscription', sid ?? '');
    if (method === 'GET') return this.subscriptionJson(sub.id);
    if (method === 'DELETE') {
      if (this.isEnded(sub)) throw invalid(`A canceled subscription can't be canceled again: '${sub.id}'.`, undefined, 'resource_missing');
      this.cancel(sub);
      sub.cancel_at_period_end = false;
      return this.subscriptionJson(sub.id);
    }
    if (method === 'POST') {
      if (this.isEnded(sub)) throw invalid('A canceled subscription can only update its cancellation_details and metadata.');
      const item = (p.items ?? [])[0] as Params | undefined;
      if (item) {
        if (item.id !== sub.item.id) throw missing('subscription_item', String(item.id ?? ''), 'items[0][id]');
        const price = this.prices.get(item.price);
        if (!price) throw missing('price', String(item.price ?? ''), 'items[0][price]');
        if (!price.active) throw invalid('The price specified is inactive. This field only accepts active prices.', 'items[0][price]');
        if (p.proration_behavior !== undefined && !['create_prorations', 'none', 'always_invoice'].includes(p.proration_behavior)) {
          throw invalid('Invalid proration_behavior', 'proration_behavior');
        }
        sub.item.price = price.id;
        if (price.usage_type === 'metered') delete sub.item.quantity;
        else sub.item.quantity ??= 1;
      }
      if (p.cancel_at_period_end !== undefined) {
        sub.cancel_at_period_end = bool(p.cancel_at_period_end) ?? false;
        sub.cancel_at = sub.cancel_at_period_end ? sub.current_period_end : null;
      }
      Object.assign(sub.metadata, metadataOf(p.metadata));
      return this.subscriptionJson(sub.id);
    }
    throw new ApiError(404, { type: 'invalid_request_error', message: `Unrecognized request URL (${method}: /v1/subscriptions/${sid}).` });
  }

  /** GET /v1/invoices (filters: customer, subscription, status; newest first) and GET /v1/invoices/:id. */
  private invoices_(iid: string | undefined, action: string | undefined, p: Params): unknown {
    if (iid && !action) {
      const inv = this.invoices.get(iid);
      if (!inv) throw missing('invoice', iid);
      return this.storedInvoiceJson(inv);
    }
    if (iid)
      throw new ApiError(404, { type: 'invalid_request_error', message: `Unrecognized request URL (GET: /v1/invoices/${iid}/${action}).` });
    if (p.status !== undefined && !['draft', 'open', 'paid', 'uncollectible', 'void'].includes(p.status)) {
      throw invalid('Invalid status: must be one of draft, open, paid, uncollectible, or void', 'status');
    }
    if (p.customer !== undefined && !this.customers.has(p.customer)) throw missing('customer', String(p.customer), 'customer');
    let all = [...this.invoices.values()];
    if (p.customer) all = all.filter((i) => i.customer === p.customer);
    if (p.subscription) all = all.filter((i) => i.subscription === p.subscription);
    if (p.status) all = all.filter((i) => i.status === p.status);
    return this.list('/v1/invoices', all, p, (i) => this.storedInvoiceJson(i));
  }

  /** Stripe's list envelope: newest first, `limit` (1-100, default 10), `starting_after` an id from the previous page. */
  private list<T extends { id?: string; created: number }>(
    url: string,
    items: T[],
    p: Params,
    json: (x: T) => unknown,
    key: (x: T) => string = (x) => x.id!,
  ) {
    const limit = p.limit === undefined ? 10 : Number(p.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw invalid('Invalid integer: limit must be between 1 and 100', 'limit');
    const ordered = items
      .map((x, i) => ({ x, i }))
      .sort((a, b) => b.x.created - a.x.created || b.i - a.i)
      .map((e) => e.x);
    let from = 0;
    if (p.starting_after) {
      const at = ordered.findIndex((x) => key(x) === p.starting_after);
      if (at < 0) throw missing('object', p.starting_after, 'starting_after');
      from = at + 1;
    }
    const page = ordered.slice(from, from + limit);
    return { object: 'list', data: page.map(json), has_more: from + limit < ordered.length, url };
  }
}
