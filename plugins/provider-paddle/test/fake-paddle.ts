import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import { addPeriod, listenLocally } from '@apigate/provider-testkit';

/** Keys the fake accepts: a sandbox key (the environment the tests claim) and a key without write permissions. */
export const API_KEY = 'pdl_sdbx_apikey_01hzfaketestkey0000000000_fakeSecretPart0123456789';
export const READ_ONLY_KEY = 'pdl_sdbx_apikey_01hzreadonlykey000000000_readOnlyPart0123456789';
/** The seller's default payment link: the page on an approved domain that opens Paddle.js. */
export const DEFAULT_PAYMENT_LINK = 'https://apigate.example.com/pay';

type Json = Record<string, any>;

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body?: Json;
}

/** A canned answer for the next request, to test error handling: a status with Paddle's error envelope, a raw body, or no answer. */
export type Injected =
  | { status: number; type?: 'request_error' | 'api_error'; code: string; detail: string; retryAfter?: number }
  | { status: number; raw: string }
  | { hang: true };

export interface FakePaddle {
  url: string;
  requests: RecordedRequest[];
  customers: Map<string, Json>;
  products: Map<string, Json>;
  prices: Map<string, Json>;
  transactions: Map<string, Json>;
  subscriptions: Map<string, Json>;
  /** Answers consumed one per request, before routing. */
  inject: Injected[];
  /** Null makes transactions fail as Paddle does for a seller without a default payment link. */
  defaultPaymentLink: string | null;
  /** Plays the customer paying on the checkout: the transaction completes and its subscription starts. */
  completeTransaction(txnId: string): Json;
  /** Paddle's billing engine renewing a subscription: a `subscription_recurring` transaction (`completed`, or `past_due` when the charge failed). */
  billSubscription(subscriptionId: string, o: { status: 'completed' | 'past_due' | 'billed' | 'canceled'; createdAt?: Date }): Json;
  close(): Promise<void>;
}

const DAY_MS = 86_400_000;
const now = () => new Date().toISOString();
// Paddle ids: a prefix, then 26 lower-case letters and digits.
const newId = (prefix: string) => `${prefix}_01${randomBytes(16).toString('hex').slice(0, 24)}`;

class PaddleError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    detail: string,
    readonly errors?: { field: string; message: string }[],
  ) {
    super(detail);
  }
}

const notFound = (id: string) => new PaddleError(404, 'not_found', `Entity ${id} not found`);
const invalid = (field: string, message: string) => new PaddleError(400, 'invalid_field', 'Invalid request.', [{ field, message }]);

/**
 * Answers like Paddle Billing's API v1 for what the provider uses: customers (+ portal sessions),
 * products, prices, transactions and subscriptions, in `{ data, meta }` envelopes with cursor
 * pagination, and errors as `{ error: { type, code, detail, documentation_url, errors? }, meta }`.
 * Bearer auth: 403 authentication_missing / invalid_token, 403 forbidden for writes with the read-only key.
 */
export async function startFakePaddle(): Promise<FakePaddle> {
  const fake = {
    url: '',
    requests: [] as RecordedRequest[],
    customers: new Map<string, Json>(),
    products: new Map<string, Json>(),
    prices: new Map<string, Json>(),
    transactions: new Map<string, Json>(),
    subscriptions: new Map<string, Json>(),
    inject: [] as Injected[],
    defaultPaymentLink: DEFAULT_PAYMENT_LINK as string | null,
  } as FakePaddle;

  const get = (map: Map<string, Json>, id: string) => {
    const v = map.get(id);
    if (!v) throw notFound(id);
    return v;
  };

  /**
   * Stores and returns a new transaction of `items` (each with its price and quantity), its totals summed
   * from them: a ready API transaction unless `over(id)` says otherwise (status, customer, origin, dates...).
   */
  const newTransaction = (items: Json[], currency: string, balance: 'due' | 'paid', over: (id: string) => Json): Json => {
    const total = String(items.reduce((sum: number, i: Json) => sum + Number(i.price.unit_price.amount) * i.quantity, 0));
    const totals = {
      subtotal: total,
      discount: '0',
      tax: '0',
      total,
      credit: '0',
      credit_to_balance: '0',
      balance: balance === 'paid' ? '0' : total,
      grand_total: total,
      fee: null,
      earnings: null,
      currency_code: currency,
    };
    const id = newId('txn');
    const t = {
      id,
      status: 'ready',
      customer_id: null,
      address_id: null,
      business_id: null,
      custom_data: null,
      currency_code: currency,
      origin: 'api',
      subscription_id: null,
      invoice_id: null,
      invoice_number: null,
      collection_mode: 'automatic',
      discount_id: null,
      billing_details: null,
      billing_period: null,
      items,
      details: { tax_rates_used: [], totals, adjusted_totals: null, payout_totals: null, adjusted_payout_totals: null, line_items: [] },
      payments: [],
      checkout: null,
      created_at: now(),
      updated_at: now(),
      billed_at: null,
      revised_at: null,
      ...over(id),
    };
    fake.transactions.set(id, t);
    return t;
  };

  const list = (path: string, query: URLSearchParams, rows: Json[]) => {
    const perPage = Math.min(Number(query.get('per_page') ?? 50), 200);
    const after = query.get('after');
    const sorted = [...rows].sort((a, b) => (a.id < b.id ? -1 : 1));
    const start = after ? sorted.findIndex((r) => r.id > after) : 0;
    const page = start < 0 ? [] : sorted.slice(start, start + perPage);
    const next = new URLSearchParams(query);
    if (page.length) next.set('after', page[page.length - 1]!.id);
    return {
      data: page,
      pagination: {
        per_page: perPage,
        next: `${fake.url}${path}?${next}`,
        has_more: start >= 0 && start + perPage < sorted.length,
        estimated_total: sorted.length,
      },
    };
  };
  const csv = (q: URLSearchParams, name: string) => q.get(name)?.split(',').filter(Boolean);

  const productOf = (id: string) => get(fake.products, id);
  const priceBody = (b: Json, type: 'standard' | 'custom'): Json => {
    if (typeof b.description !== 'string' || !b.description) throw invalid('description', 'Description is required.');
    productOf(b.product_id);
    const amount = b.unit_price?.amount;
    if (typeof amount !== 'string' || !/^\d+$/.test(amount))
      throw invalid('unit_price.amount', 'Must be a string of a whole number, 0 or more.');
    if (!/^[A-Z]{3}$/.test(b.unit_price?.currency_code ?? ''))
      throw invalid('unit_price.currency_code', 'Must be a supported currency code.');
    return {
      id: newId('pri'),
      product_id: b.product_id,
      type,
      description: b.description,
      name: b.name ?? null,
      billing_cycle: b.billing_cycle ?? null,
      trial_period: b.trial_period ?? null,
      tax_mode: b.tax_mode ?? 'account_setting',
      unit_price: b.unit_price,
      unit_price_overrides: [],
      quantity: { minimum: 1, maximum: 100 },
      status: 'active',
      custom_data: b.custom_data ?? null,
      import_meta: null,
      created_at: now(),
      updated_at: now(),
    };
  };

  const routes: [
    string,
    RegExp,
    (m: RegExpExecArray, q: URLSearchParams, b: Json) => { status?: number; data?: unknown; list?: ReturnType<typeof list> },
  ][] = [
    [
      'GET',
      /^\/customers$/,
      (_m, q) => {
        const emails = csv(q, 'email')?.map((e) => e.toLowerCase());
        const ids = csv(q, 'id');
        const rows = [...fake.customers.values()].filter((c) => (!emails || emails.includes(c.email)) && (!ids || ids.includes(c.id)));
        return { list: list('/customers', q, rows) };
      },
    ],
    [
      'POST',
      /^\/customers$/,
      (_m, _q, b) => {
        const email = typeof b.email === 'string' ? b.email.trim().toLowerCase() : '';
        if (!/^[^@\s]+@[^@\s]+$/.test(email)) throw invalid('email', 'Must be a valid email address.');
        const taken = [...fake.customers.values()].find((c) => c.email === email);
        if (taken) throw new PaddleError(409, 'customer_already_exists', `customer email conflicts with customer of id ${taken.id}`);
        const c = {
          id: newId('ctm'),
          name: b.name ?? null,
          email,
          marketing_consent: false,
          status: 'active',
          custom_data: b.custom_data ?? null,
          locale: 'en',
          created_at: now(),
          updated_at: now(),
          import_meta: null,
        };
        fake.customers.set(c.id, c);
        return { status: 201, data: c };
      },
    ],
    ['GET', /^\/customers\/(ctm_\w+)$/, (m) => ({ data: get(fake.customers, m[1]!) })],
    [
      'PATCH',
      /^\/customers\/([\w-]+)$/,
      (m, _q, b) => {
        const c = get(fake.customers, m[1]!);
        if (b.status !== undefined && b.status !== 'active' && b.status !== 'archived')
          throw invalid('status', 'Must be active or archived.');
        for (const k of ['name', 'email', 'status', 'custom_data']) if (b[k] !== undefined) c[k] = b[k];
        c.updated_at = now();
        return { data: c };
      },
    ],
    [
      'POST',
      /^\/customers\/([\w-]+)\/portal-sessions$/,
      (m) => {
        const c = get(fake.customers, m[1]!);
        const id = newId('cpls');
        return {
          status: 201,
          data: {
            id,
            customer_id: c.id,
            urls: {
              general: { overview: `https://sandbox-customer-portal.paddle.com/cpl_01fake?action=overview&token=${randomUUID()}` },
              subscriptions: [],
            },
            created_at: now(),
          },
        };
      },
    ],
    [
      'POST',
      /^\/products$/,
      (_m, _q, b) => {
        if (typeof b.name !== 'string' || !b.name) throw invalid('name', 'Name is required.');
        if (!['standard', 'saas', 'digital-goods'].includes(b.tax_category))
          throw invalid('tax_category', 'This tax category is not approved for your account.');
        const p = {
          id: newId('pro'),
          name: b.name,
          tax_category: b.tax_category,
          type: 'standard',
          description: b.description ?? null,
          image_url: null,
          custom_data: b.custom_data ?? null,
          status: 'active',
          import_meta: null,
          created_at: now(),
          updated_at: now(),
        };
        fake.products.set(p.id, p);
        return { status: 201, data: p };
      },
    ],
    [
      'PATCH',
      /^\/products\/([\w-]+)$/,
      (m, _q, b) => {
        const p = productOf(m[1]!);
        for (const k of ['name', 'description', 'status', 'custom_data', 'tax_category']) if (b[k] !== undefined) p[k] = b[k];
        p.updated_at = now();
        return { data: p };
      },
    ],
    [
      'POST',
      /^\/prices$/,
      (_m, _q, b) => {
        const p = priceBody(b, 'standard');
        fake.prices.set(p.id, p);
        return { status: 201, data: p };
      },
    ],
    [
      'GET',
      /^\/prices\/([\w-]+)$/,
      (m, q) => {
        const p = get(fake.prices, m[1]!);
        return { data: csv(q, 'include')?.includes('product') ? { ...p, product: productOf(p.product_id) } : p };
      },
    ],
    [
      'PATCH',
      /^\/prices\/([\w-]+)$/,
      (m, _q, b) => {
        const p = get(fake.prices, m[1]!);
        if (b.unit_price && !/^\d+$/.test(b.unit_price.amount ?? ''))
          throw invalid('unit_price.amount', 'Must be a string of a whole number, 0 or more.');
        for (const k of ['name', 'description', 'status', 'custom_data', 'unit_price', 'billing_cycle', 'trial_period'])
          if (b[k] !== undefined) p[k] = b[k];
        p.updated_at = now();
        return { data: p };
      },
    ],
    [
      'POST',
      /^\/transactions$/,
      (_m, _q, b) => {
        const customer = get(fake.customers, b.customer_id);
        if (customer.status !== 'active') throw invalid('customer_id', 'Customer is archived.');
        if (!Array.isArray(b.items) || b.items.length === 0) throw invalid('items', 'At least one item is required.');
        const items = b.items.map((item: Json, n: number) => {
          let price: Json;
          if (item.price_id) {
            price = get(fake.prices, item.price_id);
            if (price.status !== 'active') throw invalid(`items[${n}].price_id`, `Price ${price.id} is archived.`);
          } else {
            price = priceBody(item.price ?? {}, 'custom');
            fake.prices.set(price.id, price);
          }
          return { price, quantity: item.quantity ?? 1, proration: null };
        });
        const url = b.checkout?.url ?? fake.defaultPaymentLink;
        if (!url)
          throw new PaddleError(
            400,
            'transaction_default_checkout_url_not_set',
            'A Default Payment Link has not yet been defined within the Paddle Dashboard.',
          );
        const t = newTransaction(items, items[0]!.price.unit_price.currency_code, 'due', (id) => ({
          customer_id: customer.id,
          custom_data: b.custom_data ?? null,
          checkout: { url: `${url}?_ptxn=${id}` },
        }));
        return { status: 201, data: t };
      },
    ],
    [
      'GET',
      /^\/transactions$/,
      (_m, q) => {
        const customers = csv(q, 'customer_id');
        const statuses = csv(q, 'status');
        const subs = csv(q, 'subscription_id');
        const order = q.get('order_by') ?? 'id[ASC]';
        const known = [
          'id[ASC]',
          'id[DESC]',
          'created_at[ASC]',
          'created_at[DESC]',
          'billed_at[ASC]',
          'billed_at[DESC]',
          'updated_at[ASC]',
          'updated_at[DESC]',
        ];
        if (!known.includes(order)) throw invalid('order_by', `Must be one of ${known.join(', ')}.`);
        const rows = [...fake.transactions.values()].filter(
          (t) =>
            (!customers || customers.includes(t.customer_id)) &&
            (!statuses || statuses.includes(t.status)) &&
            (!subs || subs.includes(t.subscription_id)),
        );
        const [field, dir] = [order.slice(0, order.indexOf('[')), order.endsWith('[DESC]') ? -1 : 1];
        const sorted = rows.sort((a, b) => (a[field] === b[field] ? (a.id < b.id ? -1 : 1) : a[field] < b[field] ? -1 : 1) * dir);
        const perPage = Number(q.get('per_page') ?? 30);
        if (!Number.isInteger(perPage) || perPage < 1 || perPage > 30) throw invalid('per_page', 'Must be between 1 and 30.');
        const after = q.get('after');
        const start = after ? sorted.findIndex((t) => t.id === after) + 1 : 0;
        const page = sorted.slice(start, start + perPage);
        const next = new URLSearchParams(q);
        if (page.length) next.set('after', page[page.length - 1]!.id);
        return {
          list: {
            data: page,
            pagination: {
              per_page: perPage,
              next: `${fake.url}/transactions?${next}`,
              has_more: start + perPage < sorted.length,
              estimated_total: sorted.length,
            },
          },
        };
      },
    ],
    [
      'GET',
      /^\/subscriptions$/,
      (_m, q) => {
        const customers = csv(q, 'customer_id');
        const statuses = csv(q, 'status');
        const rows = [...fake.subscriptions.values()].filter(
          (s) => (!customers || customers.includes(s.customer_id)) && (!statuses || statuses.includes(s.status)),
        );
        return { list: list('/subscriptions', q, rows) };
      },
    ],
    ['GET', /^\/subscriptions\/([\w-]+)$/, (m) => ({ data: get(fake.subscriptions, m[1]!) })],
    [
      'PATCH',
      /^\/subscriptions\/([\w-]+)$/,
      (m, _q, b) => {
        const s = get(fake.subscriptions, m[1]!);
        if (s.status === 'canceled')
          throw new PaddleError(400, 'subscription_update_when_canceled', 'Subscription is canceled and cannot be updated.');
        if (b.items) {
          if (!b.proration_billing_mode) throw invalid('proration_billing_mode', 'Required when items change.');
          s.items = b.items.map((item: Json, n: number) => {
            const price = get(fake.prices, item.price_id);
            if (price.status !== 'active') throw invalid(`items[${n}].price_id`, `Price ${price.id} is archived.`);
            return subscriptionItem(price, item.quantity ?? 1, s.status === 'trialing' ? 'trialing' : 'active');
          });
        }
        s.updated_at = now();
        return { data: s };
      },
    ],
    [
      'POST',
      /^\/subscriptions\/([\w-]+)\/cancel$/,
      (m, _q, b) => {
        const s = get(fake.subscriptions, m[1]!);
        if (s.status === 'canceled')
          throw new PaddleError(400, 'subscription_update_when_canceled', 'Subscription is canceled and cannot be updated.');
        if ((b.effective_from ?? 'next_billing_period') === 'immediately') {
          Object.assign(s, {
            status: 'canceled',
            canceled_at: now(),
            current_billing_period: null,
            scheduled_change: null,
            next_billed_at: null,
          });
        } else {
          s.scheduled_change = { action: 'cancel', effective_at: s.current_billing_period.ends_at, resume_at: null };
        }
        s.updated_at = now();
        return { data: s };
      },
    ],
  ];

  function subscriptionItem(price: Json, quantity: number, status: string, trialEnd?: Date): Json {
    return {
      status,
      quantity,
      recurring: true,
      created_at: now(),
      updated_at: now(),
      previously_billed_at: null,
      next_billed_at: null,
      trial_dates: trialEnd ? { starts_at: now(), ends_at: trialEnd.toISOString() } : null,
      price,
      product: productOf(price.product_id),
    };
  }

  fake.completeTransaction = (txnId) => {
    const t = get(fake.transactions, txnId);
    if (t.subscription_id) return get(fake.subscriptions, t.subscription_id);
    const price = t.items[0].price;
    const start = new Date();
    const trial = price.trial_period as { interval: string; frequency: number } | null;
    const end = trial
      ? addPeriod(start, trial.interval, trial.frequency)
      : addPeriod(start, price.billing_cycle.interval, price.billing_cycle.frequency);
    const s = {
      id: newId('sub'),
      status: trial ? 'trialing' : 'active',
      customer_id: t.customer_id,
      address_id: newId('add'),
      business_id: null,
      currency_code: t.currency_code,
      created_at: now(),
      updated_at: now(),
      started_at: now(),
      first_billed_at: trial ? null : now(),
      next_billed_at: end.toISOString(),
      paused_at: null,
      canceled_at: null,
      discount: null,
      collection_mode: 'automatic',
      billing_details: null,
      current_billing_period: { starts_at: start.toISOString(), ends_at: end.toISOString() },
      billing_cycle: price.billing_cycle,
      scheduled_change: null,
      management_urls: { update_payment_method: null, cancel: 'https://sandbox-buyer-portal.paddle.com/cancel' },
      items: t.items.map((i: Json) => subscriptionItem(i.price, i.quantity, trial ? 'trialing' : 'active', trial ? end : undefined)),
      custom_data: t.custom_data,
      import_meta: null,
    };
    fake.subscriptions.set(s.id, s);
    // A trial's checkout charges nothing now.
    if (trial) Object.assign(t.details.totals, { subtotal: '0', total: '0', balance: '0', grand_total: '0' });
    Object.assign(t, {
      status: 'completed',
      subscription_id: s.id,
      billed_at: now(),
      updated_at: now(),
      origin: 'web',
      billing_period: s.current_billing_period,
      invoice_number: `FAKE-${fake.transactions.size}`,
    });
    return s;
  };

  fake.billSubscription = (subscriptionId, o) => {
    const s = get(fake.subscriptions, subscriptionId);
    const at = (o.createdAt ?? new Date()).toISOString();
    const items = s.items.map((i: Json) => ({ price: i.price, quantity: i.quantity, proration: null }));
    return newTransaction(items, s.currency_code, o.status === 'completed' ? 'paid' : 'due', () => ({
      status: o.status,
      customer_id: s.customer_id,
      address_id: s.address_id,
      custom_data: s.custom_data,
      origin: 'subscription_recurring',
      subscription_id: s.id,
      invoice_number: o.status === 'completed' ? `FAKE-${fake.transactions.size + 1}` : null,
      billing_period: { ...s.current_billing_period },
      created_at: at,
      updated_at: at,
      billed_at: at,
    }));
  };

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) =>
    res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
  const fail = (
    res: ServerResponse,
    status: number,
    type: string,
    code: string,
    detail: string,
    extra: Json = {},
    headers: Record<string, string> = {},
  ) =>
    send(
      res,
      status,
      {
        error: { type, code, detail, documentation_url: `https://developer.paddle.com/v1/errors/shared/${code}`, ...extra },
        meta: { request_id: randomUUID() },
      },
      headers,
    );

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const u = new URL(req.url ?? '/', 'http://fake');
      const raw = Buffer.concat(chunks).toString('utf8');
      const record: RecordedRequest = { method: req.method ?? '', path: `${u.pathname}${u.search}`, headers: req.headers };
      if (raw) record.body = JSON.parse(raw) as Json;
      fake.requests.push(record);

      const injected = fake.inject.shift();
      if (injected) {
        if ('hang' in injected) return;
        if ('raw' in injected) return res.writeHead(injected.status, { 'content-type': 'text/html' }).end(injected.raw);
        const headers: Record<string, string> = injected.retryAfter ? { 'retry-after': String(injected.retryAfter) } : {};
        return fail(
          res,
          injected.status,
          injected.type ?? (injected.status >= 500 ? 'api_error' : 'request_error'),
          injected.code,
          injected.detail,
          {},
          headers,
        );
      }

      const auth = /^bearer (.+)$/i.exec(req.headers.authorization ?? '');
      if (!auth) return fail(res, 403, 'request_error', 'authentication_missing', 'Authentication header missing.');
      if (auth[1] !== API_KEY && auth[1] !== READ_ONLY_KEY)
        return fail(res, 403, 'request_error', 'invalid_token', 'Invalid or revoked API key.');
      if (auth[1] === READ_ONLY_KEY && req.method !== 'GET')
        return fail(res, 403, 'request_error', 'forbidden', "You aren't permitted to perform this request.");

      const route = routes.find(([method, re]) => method === req.method && re.test(u.pathname));
      if (!route) return fail(res, 404, 'request_error', 'not_found', `Route ${req.method} ${u.pathname} not found`);
      try {
        const out = route[2](route[1].exec(u.pathname)!, u.searchParams, record.body ?? {});
        const meta = { request_id: randomUUID(), ...(out.list ? { pagination: out.list.pagination } : {}) };
        send(res, out.status ?? 200, { data: out.list ? out.list.data : out.data, meta });
      } catch (err) {
        if (!(err instanceof PaddleError)) throw err;
        fail(res, err.status, 'request_error', err.code, err.message, err.errors ? { errors: err.errors } : {});
      }
    });
  });
  Object.assign(fake, await listenLocally(server));
  return fake;
}

export { DAY_MS };
