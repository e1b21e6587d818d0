import { createHmac, randomBytes } from 'node:crypto';
import { type PaymentProvider, ProviderError, resolveProviderConfig, settingsFromRecord, utf8 } from '@apigate/kernel';
import {
  assertValidManifest,
  createForTest,
  describePaymentProvider,
  freePort,
  openCheckout,
  providerErrorOf,
  testInstances,
  type WebhookEventSpec,
} from '@apigate/provider-testkit';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import pkg from '../package.json' with { type: 'json' };
import provider, { CUSTOM } from '../src/index.js';
import { API_KEY, DAY_MS, DEFAULT_PAYMENT_LINK, type FakePaddle, READ_ONLY_KEY, startFakePaddle } from './fake-paddle.js';

const SECRET = 'pdl_ntfset_01hzfakedestination00000_webhookSecretForTests';
let fake: FakePaddle;
const instances = testInstances(provider);

beforeAll(async () => {
  fake = await startFakePaddle();
});
afterAll(async () => {
  await instances.closeAll();
  await fake?.close();
});

const settings = (over: Record<string, unknown> = {}) => ({ apiKey: API_KEY, webhookSecret: SECRET, baseUrl: fake.url, ...over });
const paddle = (over: Record<string, unknown> = {}): Promise<PaymentProvider> => instances.make(settings(over));

/** Paddle's timestamps: RFC 3339 with microseconds. */
const paddleTime = (d: Date) => d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
const clone = <T>(v: T): T => structuredClone(v);

/** Signs as Paddle documents: `Paddle-Signature: ts=<seconds>;h1=<hex HMAC-SHA256 of "<ts>:<raw body>">`. */
function sign(rawBody: string, secret: string, signedAt = new Date()) {
  const ts = Math.floor(signedAt.getTime() / 1000);
  const h1 = createHmac('sha256', secret).update(`${ts}:${rawBody}`).digest('hex');
  return { rawBody, headers: { 'Content-Type': 'application/json', 'Paddle-Signature': `ts=${ts};h1=${h1}` } };
}

/**
 * The notification Paddle would send for the suite's event, built from the fake's own entities
 * (so every field the SDK's event classes read is there) with the event's facts written over them.
 */
function notification(e: WebhookEventSpec): Record<string, unknown> {
  const sub = e.subscriptionId ? fake.subscriptions.get(e.subscriptionId) : undefined;
  const price = e.priceId ? clone(fake.prices.get(e.priceId)) : undefined;
  let eventType: string;
  let data: Record<string, any>;
  const transaction = (id: string, origin: string, status: string) => {
    const t = clone([...fake.transactions.values()].find((x) => x.subscription_id === e.subscriptionId)!);
    const amount = String(e.invoice?.amountCents ?? price?.unit_price.amount ?? 0);
    const currency = (e.invoice?.currency ?? 'usd').toUpperCase();
    Object.assign(t, { id, origin, status, customer_id: e.customerId, subscription_id: e.subscriptionId ?? null, currency_code: currency });
    t.items = [{ price, quantity: 1, proration: null }];
    t.details.totals = {
      ...t.details.totals,
      subtotal: amount,
      total: amount,
      balance: amount,
      grand_total: amount,
      currency_code: currency,
    };
    t.payments = Array.from({ length: e.invoice?.attempt ?? 0 }, (_v, n) => ({
      payment_attempt_id: `att_${n}`,
      stored_payment_method_id: 'paymtd_01fake',
      amount,
      status: status === 'completed' && n === (e.invoice?.attempt ?? 1) - 1 ? 'captured' : 'error',
      error_code: status === 'completed' && n === (e.invoice?.attempt ?? 1) - 1 ? null : 'declined',
      method_details: null,
      created_at: paddleTime(e.occurredAt),
      captured_at: null,
    }));
    t.custom_data = e.localRefs ? { [CUSTOM.userId]: e.localRefs.userId, [CUSTOM.planId]: e.localRefs.planId } : t.custom_data;
    return t;
  };
  switch (e.type) {
    case 'checkout.completed':
      eventType = 'transaction.completed';
      data = transaction(e.sessionId!, 'api', 'completed');
      break;
    case 'invoice.paid':
      eventType = 'transaction.completed';
      data = transaction(e.invoice!.id, 'subscription_recurring', 'completed');
      break;
    case 'invoice.payment_failed':
      eventType = 'transaction.payment_failed';
      data = transaction(e.invoice!.id, 'subscription_recurring', 'past_due');
      break;
    case 'subscription.created':
    case 'subscription.updated':
    case 'subscription.deleted': {
      eventType = e.type === 'subscription.deleted' ? 'subscription.canceled' : e.type;
      const st = e.subscription!;
      data = clone(sub!);
      data.status = st.status;
      data.customer_id = st.customerId;
      data.items[0].price = clone(fake.prices.get(st.priceId));
      data.scheduled_change = st.cancelAtPeriodEnd
        ? { action: 'cancel', effective_at: st.currentPeriodEnd!.toISOString(), resume_at: null }
        : null;
      if (st.status === 'canceled') Object.assign(data, { current_billing_period: null, canceled_at: paddleTime(st.currentPeriodEnd!) });
      else data.current_billing_period = { starts_at: data.current_billing_period.starts_at, ends_at: paddleTime(st.currentPeriodEnd!) };
      break;
    }
    default:
      eventType = 'customer.updated';
      data = clone(fake.customers.get(e.customerId!)!);
  }
  return {
    event_id: e.id,
    event_type: eventType,
    occurred_at: paddleTime(e.occurredAt),
    notification_id: `ntf_01${randomBytes(12).toString('hex')}`,
    data,
  };
}

describe('provider-paddle', () => {
  it('has a valid manifest', () => {
    assertValidManifest(pkg, provider);
  });

  describePaymentProvider(provider, {
    name: 'conformance (official SDK against a fake Paddle Billing API)',
    config: settings,
    // Paddle's notifications carry no environment: a sandbox event is one signed by the sandbox destination's secret.
    signWebhook: (event, { wrongSecret, otherMode, signedAt }) =>
      sign(
        JSON.stringify(notification(event)),
        wrongSecret ? `${SECRET}_old` : otherMode ? 'pdl_ntfset_01hzsandboxdestination000_otherEnvironmentSecret' : SECRET,
        signedAt,
      ),
    modeCheck: 'signature',
    offlineConfig: async () => ({ baseUrl: `http://127.0.0.1:${await freePort()}` }),
    completeCheckout: async (_p, { sessionId }) => ({ subscriptionId: fake.completeTransaction(sessionId).id }),
    additionalTests: ({ provider: current, subscribe }) => {
      describe('paddle specifics', () => {
        it('sends Paddle the customer, product, price and transaction it documents', async () => {
          const since = fake.requests.length;
          const s = await subscribe();
          const calls = fake.requests.slice(since);
          const body = (method: string, path: string) => calls.find((r) => r.method === method && r.path.split('?')[0] === path)?.body;
          expect(calls[0]!.headers.authorization).toBe(`bearer ${API_KEY}`);
          expect(body('POST', '/customers')).toEqual({
            email: `${s.userId}@example.com`,
            name: 'Conformance User',
            custom_data: { [CUSTOM.userId]: s.userId },
          });
          expect(body('POST', '/products')).toEqual({
            name: 'Conformance Pro',
            tax_category: 'standard',
            custom_data: { [CUSTOM.planId]: s.planId },
          });
          expect(body('POST', '/prices')).toMatchObject({
            product_id: expect.stringMatching(/^pro_/),
            name: 'Conformance Pro',
            description: 'Conformance Pro (monthly)',
            unit_price: { amount: '1900', currency_code: 'USD' },
            billing_cycle: { interval: 'month', frequency: 1 },
            tax_mode: 'account_setting',
          });
          expect(body('POST', '/transactions')).toEqual({
            items: [{ price_id: s.priceId, quantity: 1 }],
            customer_id: s.customerId,
            custom_data: { [CUSTOM.userId]: s.userId, [CUSTOM.planId]: s.planId },
          });
        });

        it('returns the transaction checkout url on the payment link, or on PADDLE_CHECKOUT_URL', async () => {
          const a = await openCheckout(current(), { userId: 'usr_link', email: `link-${randomBytes(4).toString('hex')}@example.com` });
          expect(a.url).toBe(`${DEFAULT_PAYMENT_LINK}?_ptxn=${a.sessionId}`);
          expect(a.sessionId).toMatch(/^txn_[a-z\d]{26}$/);
          const own = await paddle({ checkoutUrl: 'https://shop.example.com/checkout' });
          const b = await own.createCheckout(a.input);
          expect(b.url).toBe(`https://shop.example.com/checkout?_ptxn=${b.sessionId}`);
        });

        it('sells a trial as a custom copy of the price, and reports the catalog price', async () => {
          const s = await subscribe({ trialDays: 7 });
          const txn = fake.transactions.get(s.sessionId)!;
          expect(txn.items[0].price).toMatchObject({
            type: 'custom',
            trial_period: { interval: 'day', frequency: 7 },
            custom_data: { [CUSTOM.basePriceId]: s.priceId },
          });
          expect(txn.items[0].price.id).not.toBe(s.priceId);
          expect((await current().getSubscription(s.subscriptionId)).priceId).toBe(s.priceId);
        });

        it('keeps the price id on a rename, and moves to a new price (archiving the old) on a new amount', async () => {
          const input = { planId: 'biz', name: 'Business', amountCents: 4900, currency: 'eur', interval: 'year' as const };
          const first = await current().upsertPrice(input);
          const renamed = await current().upsertPrice({ ...input, name: 'Business+', existingPriceId: first.priceId });
          expect(renamed).toEqual(first);
          expect(fake.prices.get(first.priceId)).toMatchObject({ name: 'Business+', status: 'active' });
          expect(fake.products.get(first.productId!)!.name).toBe('Business+');
          const repriced = await current().upsertPrice({ ...input, amountCents: 5900, existingPriceId: first.priceId });
          expect(repriced.productId).toBe(first.productId);
          expect(repriced.priceId).not.toBe(first.priceId);
          expect(fake.prices.get(first.priceId)!.status).toBe('archived');
          expect(fake.prices.get(repriced.priceId)).toMatchObject({
            unit_price: { amount: '5900', currency_code: 'EUR' },
            billing_cycle: { interval: 'year' },
          });
        });

        it('finds the customer Paddle already has for an email instead of failing', async () => {
          const email = `again-${randomBytes(4).toString('hex')}@example.com`;
          const a = await current().createCustomer({ userId: 'usr_again', email });
          const b = await current().createCustomer({ userId: 'usr_again', email });
          expect(b.customerId).toBe(a.customerId);
        });

        it('deletes a customer by canceling what still bills and archiving them', async () => {
          const s = await subscribe();
          await current().deleteCustomer(s.customerId);
          expect(fake.customers.get(s.customerId)!.status).toBe('archived');
          expect((await current().getSubscription(s.subscriptionId)).status).toBe('canceled');
          await expect(current().deleteCustomer('ctm_01unknown000000000000000000')).resolves.toBeUndefined();
          // The same email signing up again gets the customer back, active.
          const again = await current().createCustomer({ userId: s.userId, email: `${s.userId}@example.com` });
          expect(again.customerId).toBe(s.customerId);
          expect(fake.customers.get(s.customerId)!.status).toBe('active');
        });

        it('returns the portal overview url Paddle made', async () => {
          const { customerId } = await current().createCustomer({
            userId: 'usr_portal',
            email: `portal-${randomBytes(4).toString('hex')}@example.com`,
          });
          const { url } = await current().createPortalSession({ customerId, returnUrl: 'https://apigate.example.com/account' });
          expect(url).toMatch(/^https:\/\/sandbox-customer-portal\.paddle\.com\/cpl_\w+\?action=overview&token=/);
        });

        it('lists every page, and filters by update time', async () => {
          const s = await subscribe();
          const others = await Promise.all([subscribe(), subscribe()]);
          const since = fake.requests.length;
          const all: string[] = [];
          const pageSize = fake.subscriptions.size;
          for await (const x of current().listSubscriptions({})) all.push(x.subscriptionId);
          expect(all).toEqual(expect.arrayContaining([s.subscriptionId, ...others.map((o) => o.subscriptionId)]));
          expect(all).toHaveLength(pageSize);
          expect(fake.requests.slice(since).every((r) => r.path.startsWith('/subscriptions?'))).toBe(true);
          fake.subscriptions.get(s.subscriptionId)!.updated_at = new Date(Date.now() - 3 * DAY_MS).toISOString();
          const recent: string[] = [];
          for await (const x of current().listSubscriptions({ updatedSince: new Date(Date.now() - DAY_MS) })) recent.push(x.subscriptionId);
          expect(recent).not.toContain(s.subscriptionId);
          expect(recent).toEqual(expect.arrayContaining(others.map((o) => o.subscriptionId)));
        });

        it('lists billed transactions as invoices: grand total, status, billing period; unpaid checkouts left out; newest first', async () => {
          const s = await subscribe();
          const sub = await current().getSubscription(s.subscriptionId);
          // Tax on top: the customer paid the grand total.
          Object.assign(fake.transactions.get(s.sessionId)!.details.totals, { tax: '190', total: '2090', grand_total: '2090' });
          const failed = fake.billSubscription(s.subscriptionId, { status: 'past_due', createdAt: new Date(Date.now() + 5_000) });
          const voided = fake.billSubscription(s.subscriptionId, { status: 'canceled', createdAt: new Date(Date.now() + 10_000) });
          // A checkout opened and never paid (status ready) is not an invoice.
          await openCheckout(current(), {
            userId: s.userId,
            customerId: s.customerId,
            price: { planId: 'unpaid', name: 'Unpaid', amountCents: 500 },
          });
          const since = fake.requests.length;
          const invoices = await current().listInvoices!({ customerId: s.customerId });
          const [req] = fake.requests.slice(since);
          const q = new URL(req!.path, 'http://x').searchParams;
          expect(Object.fromEntries(q)).toEqual({
            customer_id: s.customerId,
            status: 'billed,paid,completed,past_due,canceled',
            order_by: 'created_at[DESC]',
            per_page: '12',
          });
          expect(invoices.map((i) => [i.id, i.status, i.amountCents, i.currency])).toEqual([
            [voided.id, 'void', 1900, 'usd'],
            [failed.id, 'failed', 1900, 'usd'],
            [s.sessionId, 'paid', 2090, 'usd'],
          ]);
          expect(invoices[2]!.periodEnd!.getTime()).toBe(sub.currentPeriodEnd!.getTime());
          expect(invoices[2]!.createdAt.getTime()).toBe(Date.parse(fake.transactions.get(s.sessionId)!.created_at));
          expect(invoices[0]!.createdAt.getTime()).toBe(Date.parse(voided.created_at));
          expect(invoices.every((i) => i.url === undefined)).toBe(true);
        });

        it('pages through Paddle’s 30-a-page transaction list up to the limit', async () => {
          const s = await subscribe();
          for (let n = 1; n <= 34; n++)
            fake.billSubscription(s.subscriptionId, { status: 'completed', createdAt: new Date(Date.now() + n * 1000) });
          const since = fake.requests.length;
          const invoices = await current().listInvoices!({ customerId: s.customerId, limit: 33 });
          expect(invoices).toHaveLength(33);
          const times = invoices.map((i) => i.createdAt.getTime());
          expect(times).toEqual([...times].sort((a, b) => b - a));
          const pages = fake.requests.slice(since).map((r) => new URL(r.path, 'http://x').searchParams);
          expect(pages.map((p) => p.get('per_page'))).toEqual(['30', '30']);
          expect(pages[1]!.get('after')).toBe(invoices[29]!.id);
          await expect(current().listInvoices!({ customerId: s.customerId, limit: 0 })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
        });

        it('refuses metered prices and usage reports as final (features.meteredBilling is false)', async () => {
          await expect(
            current().upsertPrice({ planId: 'm', name: 'M', amountCents: 1, currency: 'usd', interval: 'month', metered: true }),
          ).rejects.toMatchObject({
            code: 'INVALID_INPUT',
          });
          const err = await current()
            .reportUsage({ customerId: 'c', subscriptionId: 's', quantity: 1, timestamp: new Date(), idempotencyKey: 'k' })
            .catch((e: unknown) => e);
          expect(err).toBeInstanceOf(ProviderError);
          expect(err).toMatchObject({ retryable: false, code: 'NOT_SUPPORTED' });
        });
      });
    },
  });

  describe('errors', () => {
    const errorOf = (p: Promise<unknown>) => providerErrorOf(p, [API_KEY, SECRET]);

    it.each([
      [429, 'too_many_requests', true, 'Too many requests.'],
      [500, 'internal_error', true, 'An internal error occurred.'],
      [503, 'service_unavailable', true, 'Service unavailable.'],
      [400, 'invalid_field', false, 'Invalid request.'],
      [409, 'conflict', false, 'Request conflicts with another change.'],
    ])('a %i %s answer is retryable: %s', async (status, code, retryable, detail) => {
      const p = await paddle();
      fake.inject.push({ status, code, detail, ...(status === 429 ? { retryAfter: 7 } : {}) });
      const err = await errorOf(p.getSubscription('sub_01whatever0000000000000000'));
      expect(err).toMatchObject({ retryable, code, capability: 'payment', provider: 'paddle', operation: 'getSubscription' });
      expect(err.message).toBe(`payment/paddle getSubscription: Paddle ${code}: ${detail}${status === 429 ? '; retry after 7 s' : ''}`);
    });

    it('names the field Paddle rejected', async () => {
      const p = await paddle();
      const { customerId } = await p.createCustomer({ userId: 'u', email: `f-${randomBytes(4).toString('hex')}@example.com` });
      const err = await errorOf(
        p.createCheckout({
          customerId,
          priceId: 'pri_01nope',
          userId: 'u',
          planId: 'p',
          successUrl: 'https://a.example/ok',
          cancelUrl: 'https://a.example/no',
        }),
      );
      expect(err).toMatchObject({ retryable: false, code: 'not_found' });
      const { priceId } = await p.upsertPrice({ planId: 'gone', name: 'Gone', amountCents: 100, currency: 'usd', interval: 'month' });
      await p.archivePrice(priceId);
      const archived = await errorOf(
        p.createCheckout({
          customerId,
          priceId,
          userId: 'u',
          planId: 'gone',
          successUrl: 'https://a.example/ok',
          cancelUrl: 'https://a.example/no',
        }),
      );
      expect(archived.message).toContain(`Paddle invalid_field: Invalid request. (items[0].price_id: Price ${priceId} is archived.)`);
    });

    it('says which key to check when Paddle refuses it, without the key', async () => {
      const p = await paddle({ apiKey: 'pdl_sdbx_apikey_01hzrevokedkey0000000000_revokedSecretPart012' });
      const err = await errorOf(p.getSubscription('sub_01x'));
      expect(err.retryable).toBe(false);
      expect(err.message).toBe(
        'payment/paddle getSubscription: Paddle invalid_token: Invalid or revoked API key.; check PADDLE_API_KEY, its permissions, and that it is a sandbox key',
      );
      const readOnly = await paddle({ apiKey: READ_ONLY_KEY });
      expect((await errorOf(readOnly.createCustomer({ userId: 'u', email: 'ro@example.com' }))).code).toBe('forbidden');
    });

    it('treats a page that is not JSON (a proxy) and an unreachable host as retryable', async () => {
      const p = await paddle();
      fake.inject.push({ status: 502, raw: '<html><body>Bad gateway</body></html>' });
      const html = await errorOf(p.getSubscription('sub_01x'));
      expect(html).toMatchObject({ retryable: true });
      expect(html.message).toContain('answered with something that is not JSON');
      const port = await freePort();
      const down = await paddle({ baseUrl: `http://127.0.0.1:${port}` });
      const refused = await errorOf(down.getSubscription('sub_01x'));
      expect(refused).toMatchObject({ retryable: true, code: 'ECONNREFUSED' });
      expect(refused.message).toBe(`payment/paddle getSubscription: could not reach Paddle at 127.0.0.1:${port}: ECONNREFUSED`);
    });

    it('gives up on a call Paddle does not answer within the timeout, as retryable', async () => {
      const p = await paddle({ timeoutMs: 300 });
      fake.inject.push({ hang: true });
      const err = await errorOf(p.getSubscription('sub_01x'));
      expect(err).toMatchObject({ retryable: true, code: 'ETIMEDOUT' });
      expect(err.message).toContain('no answer from Paddle at 127.0.0.1');
    });

    it('explains a seller without a default payment link', async () => {
      const p = await paddle();
      const { customerId } = await p.createCustomer({ userId: 'u', email: `nolink-${randomBytes(4).toString('hex')}@example.com` });
      const { priceId } = await p.upsertPrice({ planId: 'p', name: 'P', amountCents: 100, currency: 'usd', interval: 'month' });
      fake.defaultPaymentLink = null;
      try {
        const err = await errorOf(
          p.createCheckout({
            customerId,
            priceId,
            userId: 'u',
            planId: 'p',
            successUrl: 'https://a.example/ok',
            cancelUrl: 'https://a.example/no',
          }),
        );
        expect(err).toMatchObject({ retryable: false, code: 'transaction_default_checkout_url_not_set' });
      } finally {
        fake.defaultPaymentLink = DEFAULT_PAYMENT_LINK;
      }
    });

    it('refuses calls after close, and close twice is fine', async () => {
      const p = await paddle();
      await p.close();
      await p.close();
      expect(await errorOf(p.getSubscription('sub_01x'))).toMatchObject({ retryable: false });
      expect(await p.check(AbortSignal.timeout(1000))).toMatchObject({ status: 'error', error: 'the provider is closed' });
    });
  });

  describe('check', () => {
    it('reports the environment, host and seller', async () => {
      const h = await (await paddle({ vendorId: '123456' })).check(AbortSignal.timeout(5000));
      expect(h).toMatchObject({ status: 'connected', detail: `sandbox ${new URL(fake.url).host}, seller 123456` });
      const last = fake.requests.at(-1)!;
      expect(last).toMatchObject({ method: 'GET', path: '/customers?per_page=1' });
    });

    it('reports a refused key as an error without the key', async () => {
      const key = 'pdl_sdbx_apikey_01hzwrongkey00000000000000_wrongSecretPart0123';
      const h = await (await paddle({ apiKey: key })).check(AbortSignal.timeout(5000));
      expect(h.status).toBe('error');
      expect(h.error).toContain('Paddle invalid_token: Invalid or revoked API key.');
      expect(JSON.stringify(h)).not.toContain(key);
    });

    it('is bounded by the signal', async () => {
      const p = await paddle();
      fake.inject.push({ hang: true });
      const before = fake.requests.length;
      const controller = new AbortController();
      const pending = p.check(controller.signal);
      await vi.waitFor(() => expect(fake.requests.length).toBe(before + 1), { timeout: 10_000 });
      controller.abort();
      const h = await pending;
      expect(h.status).toBe('error');
      expect(h.error).toMatch(/abort/i);
    });

    it('reports an unreachable host', async () => {
      const port = await freePort();
      const h = await (await paddle({ baseUrl: `http://127.0.0.1:${port}` })).check(AbortSignal.timeout(5000));
      expect(h).toMatchObject({
        status: 'error',
        error: `payment/paddle check: could not reach Paddle at 127.0.0.1:${port}: ECONNREFUSED`,
      });
    });
  });

  describe('configuration', () => {
    const resolve = (env: Record<string, string>) => resolveProviderConfig(provider, env, settingsFromRecord({}));
    const errorsOf = (env: Record<string, string>): string[] => {
      try {
        resolve(env);
        return [];
      } catch (errs) {
        return (errs as Error[]).map((e) => e.message);
      }
    };

    it('needs the webhook secret, naming the env var in one line', () => {
      expect(errorsOf({ PADDLE_API_KEY: API_KEY })).toEqual([
        "PADDLE_WEBHOOK_SECRET (setting payment.paddle.webhook_secret): is required; expected the endpoint secret key of Paddle's notification destination for this gateway (pdl_ntfset_…)",
      ]);
    });

    it('reads every documented env var, keeping the two secrets masked', () => {
      const { config, secretValues } = resolve({
        PADDLE_API_KEY: API_KEY,
        PADDLE_WEBHOOK_SECRET: SECRET,
        PADDLE_VENDOR_ID: '123456',
        PADDLE_ENVIRONMENT: 'sandbox',
        PADDLE_TIMEOUT_MS: '5000',
      });
      expect(config).toMatchObject({
        apiKey: API_KEY,
        webhookSecret: SECRET,
        vendorId: '123456',
        environment: 'sandbox',
        timeoutMs: 5000,
        taxCategory: 'standard',
      });
      expect(secretValues).toEqual([API_KEY, SECRET]);
    });

    it('refuses an environment the key does not belong to', () => {
      expect(errorsOf({ PADDLE_API_KEY: API_KEY, PADDLE_WEBHOOK_SECRET: SECRET, PADDLE_ENVIRONMENT: 'production' })).toEqual([
        'PADDLE_ENVIRONMENT (setting payment.paddle.environment): the API key is a sandbox key; set sandbox or use a production key',
      ]);
      expect(errorsOf({ PADDLE_API_KEY: API_KEY, PADDLE_WEBHOOK_SECRET: SECRET, PADDLE_VENDOR_ID: 'acme' })).toEqual([
        'PADDLE_VENDOR_ID (setting payment.paddle.vendor_id): expected digits; expected your Paddle seller ID (digits); shown in health output only',
      ]);
    });

    it('takes the API host from the environment, else from the key', async () => {
      // An aborted signal stops the check before it connects: only the detail it reports matters here.
      const where = async (over: Record<string, unknown>) =>
        (await (await createForTest(provider, { webhookSecret: SECRET, ...over })).provider.check(AbortSignal.abort())).detail;
      expect(await where({ apiKey: API_KEY })).toBe('sandbox sandbox-api.paddle.com');
      expect(await where({ apiKey: 'pdl_live_apikey_01hzlivekey000000000000000_livePart0123456789' })).toBe('production api.paddle.com');
      expect(await where({ apiKey: 'legacy0123456789abcdef0123456789abcdef0123456789ab' })).toBe('production api.paddle.com');
      expect(await where({ apiKey: 'legacy0123456789abcdef0123456789abcdef0123456789ab', environment: 'sandbox' })).toBe(
        'sandbox sandbox-api.paddle.com',
      );
      expect(await where({ apiKey: API_KEY, baseUrl: 'https://paddle-proxy.internal.example/' })).toBe(
        'sandbox paddle-proxy.internal.example',
      );
    });
  });

  describe('webhook verification details', () => {
    const body = () =>
      JSON.stringify({
        event_id: `evt_01${randomBytes(12).toString('hex')}`,
        event_type: 'customer.updated',
        occurred_at: paddleTime(new Date()),
        data: { id: 'ctm_01x', email: 'a@example.com', status: 'active' },
      });

    it('accepts any of several h1 signatures (secret rotation)', async () => {
      const p = await paddle();
      const raw = body();
      const good = sign(raw, SECRET);
      const old = sign(raw, 'pdl_ntfset_the_previous_secret');
      const header = `${old.headers['Paddle-Signature']};${good.headers['Paddle-Signature'].split(';')[1]}`;
      const event = await p.parseWebhook({ rawBody: utf8.encode(raw), headers: { 'paddle-signature': header } });
      expect(event.type).toBe('ignored');
    });

    it('refuses a signature from the future beyond the tolerance, and honours a tighter tolerance', async () => {
      const raw = body();
      const future = sign(raw, SECRET, new Date(Date.now() + 3_600_000));
      await expect(
        (await paddle()).parseWebhook({ rawBody: utf8.encode(raw), headers: { 'paddle-signature': future.headers['Paddle-Signature'] } }),
      ).rejects.toThrow(/in the future, outside the 300 s tolerance/);
      const minute = sign(raw, SECRET, new Date(Date.now() - 60_000));
      await expect(
        (await paddle({ webhookToleranceSeconds: 30 })).parseWebhook({
          rawBody: utf8.encode(raw),
          headers: { 'paddle-signature': minute.headers['Paddle-Signature'] },
        }),
      ).rejects.toMatchObject({ code: 'WEBHOOK_SIGNATURE_INVALID' });
    });

    it('refuses a correctly signed body that is not a notification, as bad input', async () => {
      const p = await paddle();
      const signed = (raw: string) => ({
        rawBody: utf8.encode(raw),
        headers: { 'paddle-signature': sign(raw, SECRET).headers['Paddle-Signature'] },
      });
      await expect(p.parseWebhook(signed('not json'))).rejects.toMatchObject({ code: 'INVALID_INPUT' });
      await expect(p.parseWebhook(signed('{"event_id":"evt_1"}'))).rejects.toThrow('body field event_type is missing');
      const incomplete = JSON.stringify({
        event_id: 'evt_1',
        event_type: 'subscription.updated',
        occurred_at: paddleTime(new Date()),
        data: { id: 'sub_1' },
      });
      await expect(p.parseWebhook(signed(incomplete))).rejects.toThrow(/the subscription.updated body is incomplete/);
    });

    it('ignores a failed payment on the checkout page (no subscription yet)', async () => {
      const p = await paddle();
      const { sessionId } = await openCheckout(p, {
        userId: 'u',
        email: `decl-${randomBytes(4).toString('hex')}@example.com`,
        price: { planId: 'p', name: 'P', amountCents: 100 },
      });
      const txn = { ...clone(fake.transactions.get(sessionId)!), status: 'ready' };
      const raw = JSON.stringify({
        event_id: 'evt_01declined',
        event_type: 'transaction.payment_failed',
        occurred_at: paddleTime(new Date()),
        data: txn,
      });
      const event = await p.parseWebhook({
        rawBody: utf8.encode(raw),
        headers: { 'paddle-signature': sign(raw, SECRET).headers['Paddle-Signature'] },
      });
      expect(event).toMatchObject({ id: 'evt_01declined', type: 'ignored' });
    });
  });
});
