import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import { addPeriod, listenLocally } from '@apigate/provider-testkit';

export const API_KEY = 'eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.fake-lemonsqueezy-test-key.c2lnbmF0dXJl';
/** The store every test sells from. */
export const STORE_ID = '4242';
const MEDIA = 'application/vnd.api+json';

type Json = Record<string, any>;

export interface Resource {
  type: string;
  id: string;
  attributes: Json;
}

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body?: Json;
}

/** A canned answer for the next request: a status with JSON:API errors, a raw body, or no answer. */
export type Injected = { status: number; title: string; detail: string } | { status: number; raw: string } | { hang: true };

/** A variant as the seller makes it in the dashboard, with its price model. */
export interface VariantSpec {
  name: string;
  amountCents: number;
  interval: 'day' | 'week' | 'month' | 'year';
  intervalCount?: number;
  trial?: { unit: 'day' | 'week' | 'month' | 'year'; count: number };
  status?: 'pending' | 'draft' | 'published';
  category?: 'subscription' | 'one_time';
}

export interface FakeLemonSqueezy {
  url: string;
  requests: RecordedRequest[];
  /** Every resource by type, then id. */
  db: Record<string, Map<string, Resource>>;
  inject: Injected[];
  /** What the seller does in the dashboard: a product with its variants (one variant is "pending", the default). */
  addProduct(name: string, variants: VariantSpec[], storeId?: string): { productId: string; variantIds: string[] };
  addStore(name: string, currency: string): string;
  /** Plays the buyer paying on the hosted checkout: an order (customer found or made by email) and its subscription. */
  completeCheckout(checkoutId: string): { orderId: string; subscriptionId: string; customerId: string };
  /** LemonSqueezy billing a subscription (a renewal, or a plan change's proration): a subscription invoice; returns its id. */
  addSubscriptionInvoice(
    subscriptionId: string,
    o: {
      status: 'pending' | 'paid' | 'void' | 'refunded' | 'partial_refund';
      total?: number;
      createdAt?: Date;
      billingReason?: 'renewal' | 'updated';
    },
  ): string;
  close(): Promise<void>;
}

/** LemonSqueezy's timestamps: ISO 8601 with microseconds. */
export const lemonTime = (d: Date) => d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
const now = () => lemonTime(new Date());

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    detail: string,
    readonly pointer?: string,
  ) {
    super(detail);
  }
}

const notFound = () => new ApiError(404, 'Not Found', 'The requested resource could not be found.');
const unprocessable = (pointer: string, detail: string) => new ApiError(422, 'Unprocessable Entity', detail, pointer);

/**
 * Answers like LemonSqueezy's API v1 (JSON:API) for what the provider uses: stores, customers,
 * products, variants with their price model, checkouts and subscriptions, with
 * `page[number]`/`page[size]` pagination and `filter[...]` query parameters, errors as
 * `{ errors: [{ status, title, detail, source: { pointer } }] }`, Bearer auth (401) and the
 * JSON:API media type on request bodies (415 otherwise).
 */
export async function startFakeLemonSqueezy(): Promise<FakeLemonSqueezy> {
  const types = ['stores', 'customers', 'products', 'variants', 'prices', 'checkouts', 'orders', 'subscriptions', 'subscription-invoices'];
  const fake = {
    url: '',
    requests: [],
    inject: [],
    db: Object.fromEntries(types.map((t) => [t, new Map<string, Resource>()])),
  } as unknown as FakeLemonSqueezy;
  let nextId = 1000;
  const put = (type: string, attributes: Json, id = String(nextId++)): Resource => {
    const r = { type, id, attributes };
    fake.db[type]!.set(id, r);
    return r;
  };
  const get = (type: string, id: string) => {
    const r = fake.db[type]!.get(id);
    if (!r) throw notFound();
    return r;
  };
  const out = (r: Resource) => ({ ...r, links: { self: `${fake.url}/v1/${r.type}/${r.id}` } });
  const attrs = (r: Resource) => r.attributes;

  fake.addStore = (name, currency) => {
    const slug = name.toLowerCase().replace(/[^a-z0-9]+/g, '-');
    return put('stores', {
      name,
      slug,
      domain: `${slug}.lemonsqueezy.com`,
      url: `https://${slug}.lemonsqueezy.com`,
      currency,
      plan: 'fresh',
      created_at: now(),
      updated_at: now(),
    }).id;
  };
  put(
    'stores',
    {
      name: 'APIGate Test',
      slug: 'apigate-test',
      domain: 'apigate-test.lemonsqueezy.com',
      url: 'https://apigate-test.lemonsqueezy.com',
      currency: 'USD',
      plan: 'fresh',
      created_at: now(),
      updated_at: now(),
    },
    STORE_ID,
  );

  fake.addProduct = (name, variants, storeId = STORE_ID) => {
    const product = put('products', {
      store_id: Number(storeId),
      name,
      slug: randomUUID(),
      status: 'published',
      created_at: now(),
      updated_at: now(),
      test_mode: true,
    });
    const variantIds = variants.map((v, n) => {
      const variant = put('variants', {
        product_id: Number(product.id),
        name: v.name,
        slug: randomUUID(),
        status: v.status ?? (variants.length === 1 ? 'pending' : 'published'),
        sort: n,
        created_at: now(),
        updated_at: now(),
        test_mode: true,
      });
      const subscription = (v.category ?? 'subscription') === 'subscription';
      put('prices', {
        variant_id: Number(variant.id),
        category: v.category ?? 'subscription',
        scheme: 'standard',
        usage_aggregation: null,
        unit_price: v.amountCents,
        unit_price_decimal: null,
        renewal_interval_unit: subscription ? v.interval : null,
        renewal_interval_quantity: subscription ? (v.intervalCount ?? 1) : null,
        trial_interval_unit: v.trial?.unit ?? null,
        trial_interval_quantity: v.trial?.count ?? null,
        created_at: now(),
        updated_at: now(),
      });
      return variant.id;
    });
    return { productId: product.id, variantIds };
  };
  const priceOfVariant = (variantId: string) => [...fake.db.prices!.values()].find((p) => String(p.attributes.variant_id) === variantId)!;

  fake.completeCheckout = (checkoutId) => {
    const checkout = get('checkouts', checkoutId);
    if (checkout.attributes._completed) return checkout.attributes._completed;
    const c = attrs(checkout);
    const variant = get('variants', String(c.variant_id));
    const price = attrs(priceOfVariant(variant.id));
    const store = get('stores', String(c.store_id));
    const email = c.checkout_data.email.toLowerCase();
    const customer =
      [...fake.db.customers!.values()].find((x) => x.attributes.email === email && String(x.attributes.store_id) === store.id) ??
      put('customers', customerAttrs(store, c.checkout_data.name, email));
    customer.attributes.urls.customer_portal ??= `${store.attributes.url}/billing?expires=${Date.now() + 86_400_000}&user=${customer.id}&signature=${randomBytes(16).toString('hex')}`;
    const start = new Date();
    const trialEnd = price.trial_interval_unit ? addPeriod(start, price.trial_interval_unit, price.trial_interval_quantity) : undefined;
    const renews = trialEnd ?? addPeriod(start, price.renewal_interval_unit, price.renewal_interval_quantity);
    const product = get('products', String(variant.attributes.product_id));
    const order = put('orders', {
      store_id: Number(store.id),
      customer_id: Number(customer.id),
      identifier: randomUUID(),
      order_number: nextId,
      user_name: customer.attributes.name,
      user_email: email,
      currency: store.attributes.currency,
      currency_rate: '1.00000000',
      subtotal: price.unit_price,
      discount_total: 0,
      tax: 0,
      total: price.unit_price,
      status: 'paid',
      status_formatted: 'Paid',
      refunded: false,
      refunded_at: null,
      first_order_item: {
        id: nextId,
        order_id: 0,
        product_id: Number(product.id),
        variant_id: Number(variant.id),
        product_name: product.attributes.name,
        variant_name: variant.attributes.name,
        price: price.unit_price,
        quantity: 1,
        created_at: now(),
        updated_at: now(),
        test_mode: true,
      },
      urls: { receipt: `https://app.lemonsqueezy.com/my-orders/${randomUUID()}` },
      created_at: now(),
      updated_at: now(),
      test_mode: true,
    });
    order.attributes.first_order_item.order_id = Number(order.id);
    const sub = put('subscriptions', {
      store_id: Number(store.id),
      customer_id: Number(customer.id),
      order_id: Number(order.id),
      order_item_id: order.attributes.first_order_item.id,
      product_id: Number(product.id),
      variant_id: Number(variant.id),
      product_name: product.attributes.name,
      variant_name: variant.attributes.name,
      user_name: customer.attributes.name,
      user_email: email,
      status: trialEnd ? 'on_trial' : 'active',
      status_formatted: trialEnd ? 'On Trial' : 'Active',
      card_brand: 'visa',
      card_last_four: '4242',
      pause: null,
      cancelled: false,
      trial_ends_at: trialEnd ? lemonTime(trialEnd) : null,
      billing_anchor: start.getUTCDate(),
      first_subscription_item: {
        id: nextId,
        subscription_id: 0,
        price_id: Number(priceOfVariant(variant.id).id),
        quantity: 1,
        is_usage_based: false,
        created_at: now(),
        updated_at: now(),
      },
      urls: {
        update_payment_method: `${store.attributes.url}/subscription/1/payment-details?signature=x`,
        customer_portal: `${store.attributes.url}/billing?signature=x`,
      },
      renews_at: lemonTime(renews),
      ends_at: null,
      created_at: now(),
      updated_at: now(),
      test_mode: true,
    });
    sub.attributes.first_subscription_item.subscription_id = Number(sub.id);
    // The first invoice: what the order charged (nothing on a trial).
    invoiceFor(sub, { status: 'paid', total: trialEnd ? 0 : price.unit_price, billingReason: 'initial', createdAt: start });
    checkout.attributes._completed = { orderId: order.id, subscriptionId: sub.id, customerId: customer.id };
    return checkout.attributes._completed;
  };

  function invoiceFor(sub: Resource, o: { status: string; total: number; billingReason: string; createdAt: Date }): Resource {
    const a = attrs(sub);
    const store = get('stores', String(a.store_id));
    const money = (cents: number) => `$${(cents / 100).toFixed(2)}`;
    const refunded = o.status === 'refunded' ? o.total : o.status === 'partial_refund' ? Math.floor(o.total / 2) : 0;
    const at = lemonTime(o.createdAt);
    return put('subscription-invoices', {
      store_id: a.store_id,
      subscription_id: Number(sub.id),
      customer_id: a.customer_id,
      user_name: a.user_name,
      user_email: a.user_email,
      billing_reason: o.billingReason,
      card_brand: 'visa',
      card_last_four: '4242',
      currency: store.attributes.currency,
      currency_rate: '1.00000000',
      status: o.status,
      status_formatted: o.status.replace(/(^|_)(\w)/g, (_m: string, sep: string, c: string) => `${sep ? ' ' : ''}${c.toUpperCase()}`),
      refunded: refunded > 0,
      refunded_at: refunded > 0 ? at : null,
      subtotal: o.total,
      discount_total: 0,
      tax: 0,
      tax_inclusive: false,
      total: o.total,
      refunded_amount: refunded,
      subtotal_usd: o.total,
      discount_total_usd: 0,
      tax_usd: 0,
      total_usd: o.total,
      refunded_amount_usd: refunded,
      subtotal_formatted: money(o.total),
      discount_total_formatted: money(0),
      tax_formatted: money(0),
      total_formatted: money(o.total),
      refunded_amount_formatted: money(refunded),
      urls: {
        invoice_url: `https://app.lemonsqueezy.com/my-orders/${randomUUID()}/subscription-invoice/${randomUUID()}?signature=${randomBytes(16).toString('hex')}`,
      },
      created_at: at,
      updated_at: at,
      test_mode: true,
    });
  }

  fake.addSubscriptionInvoice = (subscriptionId, o) => {
    const sub = get('subscriptions', subscriptionId);
    const variant = get('variants', String(sub.attributes.variant_id));
    const total = o.total ?? attrs(priceOfVariant(variant.id)).unit_price;
    return invoiceFor(sub, { status: o.status, total, billingReason: o.billingReason ?? 'renewal', createdAt: o.createdAt ?? new Date() })
      .id;
  };

  function customerAttrs(store: Resource, name: string, email: string): Json {
    return {
      store_id: Number(store.id),
      name,
      email,
      status: 'subscribed',
      city: null,
      region: null,
      country: null,
      total_revenue_currency: 0,
      mrr: 0,
      // LemonSqueezy signs a portal link only for customers who have bought a subscription.
      status_formatted: 'Subscribed',
      urls: { customer_portal: null },
      created_at: now(),
      updated_at: now(),
      test_mode: true,
    };
  }

  const filtered = (type: string, q: URLSearchParams, fields: Record<string, string>) =>
    [...fake.db[type]!.values()].filter((r) =>
      Object.entries(fields).every(([param, attr]) => {
        const want = q.get(`filter[${param}]`);
        return want === null || String(r.attributes[attr]).toLowerCase() === want.toLowerCase();
      }),
    );

  const routes: [
    string,
    RegExp,
    (m: RegExpExecArray, q: URLSearchParams, b: Json) => { status?: number; data?: Resource; list?: Resource[] },
  ][] = [
    ['GET', /^\/v1\/stores\/(\w+)$/, (m) => ({ data: get('stores', m[1]!) })],
    ['GET', /^\/v1\/customers$/, (_m, q) => ({ list: filtered('customers', q, { store_id: 'store_id', email: 'email' }) })],
    [
      'POST',
      /^\/v1\/customers$/,
      (_m, _q, b) => {
        const a = b.data?.attributes ?? {};
        if (typeof a.name !== 'string' || !a.name) throw unprocessable('/data/attributes/name', 'The name field is required.');
        if (typeof a.email !== 'string' || !/^[^@\s]+@[^@\s]+$/.test(a.email))
          throw unprocessable('/data/attributes/email', 'The email must be a valid email address.');
        const store = fake.db.stores!.get(String(b.data?.relationships?.store?.data?.id));
        if (!store) throw unprocessable('/data/relationships/store', 'The store relationship is required.');
        return { status: 201, data: put('customers', customerAttrs(store, a.name, a.email.toLowerCase())) };
      },
    ],
    ['GET', /^\/v1\/customers\/([^/]+)$/, (m) => ({ data: get('customers', m[1]!) })],
    [
      'PATCH',
      /^\/v1\/customers\/([^/]+)$/,
      (m, _q, b) => {
        const c = get('customers', m[1]!);
        const a = b.data?.attributes ?? {};
        if (a.status !== undefined && a.status !== 'archived')
          throw unprocessable('/data/attributes/status', 'The status may only be archived.');
        Object.assign(c.attributes, a, a.status ? { status_formatted: 'Archived' } : {}, { updated_at: now() });
        return { data: c };
      },
    ],
    ['GET', /^\/v1\/products$/, (_m, q) => ({ list: filtered('products', q, { store_id: 'store_id' }) })],
    ['GET', /^\/v1\/products\/(\d+)$/, (m) => ({ data: get('products', m[1]!) })],
    ['GET', /^\/v1\/variants$/, (_m, q) => ({ list: filtered('variants', q, { product_id: 'product_id', status: 'status' }) })],
    ['GET', /^\/v1\/variants\/([^/]+)$/, (m) => ({ data: get('variants', m[1]!) })],
    ['GET', /^\/v1\/variants\/([^/]+)\/price-model$/, (m) => ({ data: priceOfVariant(get('variants', m[1]!).id) })],
    [
      'POST',
      /^\/v1\/checkouts$/,
      (_m, _q, b) => {
        const store = fake.db.stores!.get(String(b.data?.relationships?.store?.data?.id));
        if (!store) throw unprocessable('/data/relationships/store', 'The store relationship is required.');
        const variant = fake.db.variants!.get(String(b.data?.relationships?.variant?.data?.id));
        if (!variant || String(get('products', String(variant.attributes.product_id)).attributes.store_id) !== store.id) {
          throw unprocessable('/data/relationships/variant', 'The variant must belong to the store.');
        }
        const a = b.data.attributes ?? {};
        const id = randomUUID();
        return {
          status: 201,
          data: put(
            'checkouts',
            {
              store_id: Number(store.id),
              variant_id: Number(variant.id),
              custom_price: a.custom_price ?? null,
              product_options: a.product_options ?? {},
              checkout_options: a.checkout_options ?? {},
              checkout_data: a.checkout_data ?? {},
              preview: false,
              expires_at: a.expires_at ?? null,
              created_at: now(),
              updated_at: now(),
              test_mode: true,
              url: `${store.attributes.url}/checkout/custom/${id}?signature=${randomBytes(16).toString('hex')}`,
            },
            id,
          ),
        };
      },
    ],
    [
      'GET',
      /^\/v1\/subscriptions$/,
      (_m, q) => ({
        list: filtered('subscriptions', q, { store_id: 'store_id', user_email: 'user_email', order_id: 'order_id', status: 'status' }),
      }),
    ],
    ['GET', /^\/v1\/subscriptions\/([^/]+)$/, (m) => ({ data: get('subscriptions', m[1]!) })],
    // Newest first, as LemonSqueezy documents for this list.
    [
      'GET',
      /^\/v1\/subscription-invoices$/,
      (_m, q) => ({
        list: filtered('subscription-invoices', q, {
          store_id: 'store_id',
          status: 'status',
          refunded: 'refunded',
          subscription_id: 'subscription_id',
        }).sort((a, b) =>
          a.attributes.created_at === b.attributes.created_at
            ? Number(b.id) - Number(a.id)
            : a.attributes.created_at < b.attributes.created_at
              ? 1
              : -1,
        ),
      }),
    ],
    ['GET', /^\/v1\/subscription-invoices\/([^/]+)$/, (m) => ({ data: get('subscription-invoices', m[1]!) })],
    [
      'PATCH',
      /^\/v1\/subscriptions\/([^/]+)$/,
      (m, _q, b) => {
        const s = get('subscriptions', m[1]!);
        if (s.attributes.status === 'expired') throw unprocessable('/data/attributes', 'An expired subscription cannot be updated.');
        const a = b.data?.attributes ?? {};
        if (a.variant_id !== undefined) {
          const v = fake.db.variants!.get(String(a.variant_id));
          if (!v || attrs(priceOfVariant(v.id)).category !== 'subscription')
            throw unprocessable('/data/attributes/variant_id', 'The variant must be a subscription variant.');
          const p = get('products', String(v.attributes.product_id));
          Object.assign(s.attributes, {
            variant_id: Number(v.id),
            variant_name: v.attributes.name,
            product_id: Number(p.id),
            product_name: p.attributes.name,
          });
        }
        if (a.cancelled === false && s.attributes.status === 'cancelled')
          Object.assign(s.attributes, { status: 'active', status_formatted: 'Active', cancelled: false, ends_at: null });
        s.attributes.updated_at = now();
        return { data: s };
      },
    ],
    [
      'DELETE',
      /^\/v1\/subscriptions\/([^/]+)$/,
      (m) => {
        const s = get('subscriptions', m[1]!);
        if (s.attributes.status !== 'expired' && s.attributes.status !== 'cancelled') {
          Object.assign(s.attributes, {
            status: 'cancelled',
            status_formatted: 'Cancelled',
            cancelled: true,
            ends_at: s.attributes.renews_at,
            updated_at: now(),
          });
        }
        return { data: s };
      },
    ],
  ];

  const send = (res: ServerResponse, status: number, body: unknown) =>
    res.writeHead(status, { 'content-type': MEDIA }).end(JSON.stringify({ jsonapi: { version: '1.0' }, ...(body as Json) }));
  const errors = (res: ServerResponse, status: number, title: string, detail: string, pointer?: string) =>
    send(res, status, { errors: [{ detail, status: String(status), title, ...(pointer ? { source: { pointer } } : {}) }] });
  const clean = (r: Resource) => {
    const { _completed, ...attributes } = r.attributes;
    return out({ ...r, attributes });
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const u = new URL(req.url ?? '/', 'http://fake');
      const raw = Buffer.concat(chunks).toString('utf8');
      const record: RecordedRequest = {
        method: req.method ?? '',
        path: `${u.pathname}${decodeURIComponent(u.search)}`,
        headers: req.headers,
      };
      fake.requests.push(record);
      const injected = fake.inject.shift();
      if (injected) {
        if ('hang' in injected) return;
        if ('raw' in injected) return res.writeHead(injected.status, { 'content-type': 'text/html' }).end(injected.raw);
        return errors(res, injected.status, injected.title, injected.detail);
      }
      if (req.headers.authorization !== `Bearer ${API_KEY}`) return errors(res, 401, 'Unauthorized', 'Unauthenticated.');
      if (raw) {
        if (req.headers['content-type'] !== MEDIA) return errors(res, 415, 'Unsupported Media Type', `Content-Type must be ${MEDIA}.`);
        record.body = JSON.parse(raw) as Json;
      }
      const route = routes.find(([method, re]) => method === req.method && re.test(u.pathname));
      if (!route) return errors(res, 404, 'Not Found', 'The requested resource could not be found.');
      try {
        const result = route[2](route[1].exec(u.pathname)!, u.searchParams, record.body ?? {});
        if (result.list) {
          const size = Math.min(Number(u.searchParams.get('page[size]') ?? 10), 100);
          const number = Number(u.searchParams.get('page[number]') ?? 1);
          const lastPage = Math.max(1, Math.ceil(result.list.length / size));
          const rows = result.list.slice((number - 1) * size, number * size);
          const link = (n: number) => {
            const q = new URLSearchParams(u.searchParams);
            q.set('page[number]', String(n));
            return `${fake.url}${u.pathname}?${q}`;
          };
          return send(res, 200, {
            meta: {
              page: {
                currentPage: number,
                from: (number - 1) * size + 1,
                lastPage,
                perPage: size,
                to: (number - 1) * size + rows.length,
                total: result.list.length,
              },
            },
            links: { first: link(1), last: link(lastPage), ...(number < lastPage ? { next: link(number + 1) } : {}) },
            data: rows.map(clean),
          });
        }
        send(res, result.status ?? 200, { links: { self: `${fake.url}${u.pathname}` }, data: clean(result.data!) });
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        errors(res, err.status, err.title, err.message, err.pointer);
      }
    });
  });
  Object.assign(fake, await listenLocally(server));
  return fake;
}
