import { createHmac, randomBytes } from 'node:crypto';
import { type PaymentProvider, resolveProviderConfig, settingsFromRecord, utf8 } from '@apigate/kernel';
import {
  assertValidManifest,
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
import { API_KEY, type FakeLemonSqueezy, lemonTime, type Resource, STORE_ID, startFakeLemonSqueezy } from './fake-lemonsqueezy.js';

const SECRET = 'lemon-signing-secret-for-tests-0123';
const DAY_MS = 86_400_000;
let fake: FakeLemonSqueezy;
const instances = testInstances(provider);

beforeAll(async () => {
  fake = await startFakeLemonSqueezy();
  // The seller's catalogue, made in the dashboard: the plans the conformance suite sells, by name.
  fake.addProduct('Conformance Pro', [
    { name: 'Monthly', amountCents: 1900, interval: 'month' },
    { name: 'Yearly', amountCents: 19_000, interval: 'year' },
  ]);
  fake.addProduct('Conformance Pro (renamed)', [{ name: 'Default', amountCents: 2900, interval: 'month' }]);
  fake.addProduct('Conformance Business', [{ name: 'Default', amountCents: 4900, interval: 'month' }]);
});
afterAll(async () => {
  await instances.closeAll();
  await fake?.close();
});

const settings = (over: Record<string, unknown> = {}) => ({
  apiKey: API_KEY,
  storeId: STORE_ID,
  webhookSecret: SECRET,
  baseUrl: fake.url,
  ...over,
});
const lemon = (over: Record<string, unknown> = {}): Promise<PaymentProvider> => instances.make(settings(over));
const clone = <T>(v: T): T => structuredClone(v);
const email = (label: string) => `${label}-${randomBytes(4).toString('hex')}@example.com`;
const urls = { successUrl: 'https://apigate.example.com/billing/success', cancelUrl: 'https://apigate.example.com/billing/cancel' };
/** The monthly variant of "Conformance Pro" in the fake store's catalogue. */
const proPrice = { planId: 'p', name: 'Conformance Pro', amountCents: 1900, currency: 'usd', interval: 'month' } as const;

/** Signs as LemonSqueezy documents: `X-Signature` = hex HMAC-SHA256 of the raw body with the signing secret. */
function sign(rawBody: string, secret: string) {
  const signature = createHmac('sha256', secret).update(rawBody).digest('hex');
  return { rawBody, headers: { 'Content-Type': 'application/json', 'X-Signature': signature } };
}

/** The subscription attributes LemonSqueezy would send for a state: `cancelled` is its grace period, `expired` the end. */
function subscriptionAttributes(base: Record<string, any>, e: WebhookEventSpec): Record<string, any> {
  const st = e.subscription!;
  const end = lemonTime(st.currentPeriodEnd!);
  const a = {
    ...clone(base),
    customer_id: Number(st.customerId),
    variant_id: Number(st.priceId),
    cancelled: st.cancelAtPeriodEnd,
    ends_at: null as string | null,
  };
  if (st.status === 'canceled') return { ...a, status: 'expired', cancelled: true, ends_at: end };
  if (st.status === 'trialing') return { ...a, status: 'on_trial', trial_ends_at: end, renews_at: end };
  if (st.status === 'active' && st.cancelAtPeriodEnd) return { ...a, status: 'cancelled', ends_at: end, renews_at: end };
  return { ...a, status: st.status, renews_at: end, ...(st.cancelAtPeriodEnd ? { ends_at: end } : {}) };
}

/**
 * The webhook LemonSqueezy would send for the suite's event: the JSON:API resource from the fake's
 * store with the event's facts written over it, `meta.webhook_id` carrying the event id and the
 * checkout's custom data in `meta.custom_data`.
 */
function webhook(e: WebhookEventSpec): Record<string, unknown> {
  const at = lemonTime(e.occurredAt);
  const sub = e.subscriptionId ? fake.db.subscriptions!.get(e.subscriptionId) : undefined;
  let name: string;
  let data: Resource;
  switch (e.type) {
    case 'subscription.created':
    case 'subscription.updated':
    case 'subscription.deleted':
      name = {
        'subscription.created': 'subscription_created',
        'subscription.updated': 'subscription_updated',
        'subscription.deleted': 'subscription_expired',
      }[e.type];
      data = { type: 'subscriptions', id: sub!.id, attributes: { ...subscriptionAttributes(sub!.attributes, e), updated_at: at } };
      break;
    case 'checkout.completed': {
      const order = fake.db.orders!.get(String(sub!.attributes.order_id))!;
      name = 'order_created';
      data = {
        type: 'orders',
        id: order.id,
        attributes: { ...clone(order.attributes), customer_id: Number(e.customerId), created_at: at, updated_at: at },
      };
      break;
    }
    case 'invoice.paid':
    case 'invoice.payment_failed': {
      const inv = e.invoice!;
      name = e.type === 'invoice.paid' ? 'subscription_payment_success' : 'subscription_payment_failed';
      const paid = e.type === 'invoice.paid';
      data = {
        type: 'subscription-invoices',
        id: inv.id,
        attributes: {
          store_id: Number(STORE_ID),
          subscription_id: Number(e.subscriptionId),
          customer_id: Number(e.customerId),
          user_name: 'Conformance User',
          user_email: sub!.attributes.user_email,
          billing_reason: 'renewal',
          card_brand: 'visa',
          card_last_four: '4242',
          currency: inv.currency.toUpperCase(),
          currency_rate: '1.00000000',
          status: paid ? 'paid' : 'pending',
          status_formatted: paid ? 'Paid' : 'Pending',
          refunded: false,
          refunded_at: null,
          subtotal: inv.amountCents,
          discount_total: 0,
          tax: 0,
          tax_inclusive: false,
          total: inv.amountCents,
          urls: { invoice_url: null },
          created_at: at,
          updated_at: at,
          test_mode: true,
        },
      };
      break;
    }
    default:
      name = 'license_key_created';
      data = {
        type: 'license-keys',
        id: '77',
        attributes: {
          store_id: Number(STORE_ID),
          customer_id: Number(e.customerId),
          key: 'XXXX-XXXX',
          status: 'inactive',
          created_at: at,
          updated_at: at,
          test_mode: true,
        },
      };
  }
  const custom = e.localRefs ? { [CUSTOM.userId]: e.localRefs.userId, [CUSTOM.planId]: e.localRefs.planId } : undefined;
  return { meta: { test_mode: true, event_name: name, webhook_id: e.id, ...(custom ? { custom_data: custom } : {}) }, data };
}

describe('provider-lemonsqueezy', () => {
  it('has a valid manifest', () => {
    assertValidManifest(pkg, provider);
  });

  describePaymentProvider(provider, {
    name: 'conformance (JSON:API over undici against a fake LemonSqueezy API)',
    config: settings,
    signatureHasTimestamp: false,
    // The fake's objects say test_mode: true, so the provider learns it holds a test key; the other mode is a live event.
    signWebhook: (event, { wrongSecret, otherMode }) => {
      const body = webhook(event);
      if (otherMode) (body.meta as { test_mode: boolean }).test_mode = false;
      return sign(JSON.stringify(body), wrongSecret ? `${SECRET}-old` : SECRET);
    },
    offlineConfig: async () => ({ baseUrl: `http://127.0.0.1:${await freePort()}` }),
    completeCheckout: async (_p, { sessionId }) => ({ subscriptionId: fake.completeCheckout(sessionId).subscriptionId }),
    additionalTests: ({ provider: current, subscribe }) => {
      describe('lemonsqueezy specifics', () => {
        it('sends JSON:API documents with the store, the prefilled buyer and the custom data', async () => {
          const since = fake.requests.length;
          const s = await subscribe();
          const calls = fake.requests.slice(since);
          expect(
            calls.every((r) => r.headers.accept === 'application/vnd.api+json' && r.headers.authorization === `Bearer ${API_KEY}`),
          ).toBe(true);
          const created = calls.find((r) => r.method === 'POST' && r.path === '/v1/customers')!;
          expect(created.headers['content-type']).toBe('application/vnd.api+json');
          expect(created.body).toEqual({
            data: {
              type: 'customers',
              attributes: { name: 'Conformance User', email: `${s.userId}@example.com` },
              relationships: { store: { data: { type: 'stores', id: STORE_ID } } },
            },
          });
          expect(calls.find((r) => r.method === 'POST' && r.path === '/v1/checkouts')!.body).toEqual({
            data: {
              type: 'checkouts',
              attributes: {
                checkout_data: {
                  email: `${s.userId}@example.com`,
                  name: 'Conformance User',
                  custom: { [CUSTOM.userId]: s.userId, [CUSTOM.planId]: s.planId },
                },
                product_options: { redirect_url: urls.successUrl, enabled_variants: [Number(s.priceId)] },
              },
              relationships: { store: { data: { type: 'stores', id: STORE_ID } }, variant: { data: { type: 'variants', id: s.priceId } } },
            },
          });
        });

        it('matches plans to the dashboard variants by name, interval and amount', async () => {
          const { productId, variantIds } = fake.addProduct('APIGate', [
            { name: 'Team', amountCents: 9900, interval: 'month' },
            { name: 'Team', amountCents: 99_000, interval: 'year', status: 'draft' },
            { name: 'Team', amountCents: 9900, interval: 'month', intervalCount: 3 },
          ]);
          const team = (over = {}) =>
            current().upsertPrice({ planId: 'team', name: 'team', amountCents: 9900, currency: 'usd', interval: 'month', ...over });
          expect(await team()).toEqual({ priceId: variantIds[0], productId });
          // A rename needs nothing in LemonSqueezy: the variant still sells the plan.
          expect(await team({ name: 'Team (new name)', existingPriceId: variantIds[0] })).toEqual({ priceId: variantIds[0], productId });
          const draft = await team({ interval: 'year', amountCents: 99_000 }).catch((e: unknown) => e);
          expect(draft).toMatchObject({ retryable: false, code: 'NO_MATCHING_VARIANT' });
          expect((draft as Error).message).toBe(
            `payment/lemonsqueezy upsertPrice: store ${STORE_ID} has no subscription variant named "team" billed every year at 990.00 USD; ` +
              'found "APIGate / Team" (99.00 USD every month), "APIGate / Team" (99.00 USD every 3 months). Create or edit it in the LemonSqueezy dashboard: the API cannot create or change products',
          );
          await expect(team({ currency: 'eur' })).rejects.toThrow('(the store sells in USD)');
        });

        it('refuses trial days unless the variant has that trial, and sells the variant trial', async () => {
          const { variantIds } = fake.addProduct('Trial Plan', [
            { name: 'Default', amountCents: 500, interval: 'month', trial: { unit: 'week', count: 1 } },
          ]);
          const { customerId } = await current().createCustomer({ userId: 'usr_trial', email: email('trial') });
          const input = { customerId, priceId: variantIds[0]!, userId: 'usr_trial', planId: 'trial', ...urls };
          await expect(current().createCheckout({ ...input, trialDays: 14 })).rejects.toThrow(
            `payment/lemonsqueezy createCheckout trialDays: LemonSqueezy sets free trials on the variant, and variant ${variantIds[0]} has a 1-week trial; set a 14-day trial on it in the dashboard, or leave trialDays out`,
          );
          const { sessionId } = await current().createCheckout({ ...input, trialDays: 7 });
          const { subscriptionId } = fake.completeCheckout(sessionId);
          const s = await current().getSubscription(subscriptionId);
          expect(s.status).toBe('trialing');
          expect(s.currentPeriodEnd!.getTime()).toBeGreaterThan(Date.now() + 6 * DAY_MS);
          expect(s.currentPeriodEnd!.getTime()).toBeLessThan(Date.now() + 8 * DAY_MS);
          const { priceId: noTrial } = await current().upsertPrice(proPrice);
          await expect(current().createCheckout({ ...input, priceId: noTrial, trialDays: 7 })).rejects.toMatchObject({
            code: 'INVALID_INPUT',
          });
        });

        it('reuses the store customer with the same email (checkouts attach orders by email)', async () => {
          const address = email('again');
          const a = await current().createCustomer({ userId: 'usr_again', email: address });
          const b = await current().createCustomer({ userId: 'usr_again', email: address.toUpperCase() });
          expect(b.customerId).toBe(a.customerId);
        });

        it('deletes a customer by cancelling what still bills and archiving them; an unknown id is done', async () => {
          const s = await subscribe();
          await current().deleteCustomer(s.customerId);
          expect(fake.db.customers!.get(s.customerId)!.attributes.status).toBe('archived');
          expect(await current().getSubscription(s.subscriptionId)).toMatchObject({ status: 'active', cancelAtPeriodEnd: true });
          await expect(current().deleteCustomer('999999')).resolves.toBeUndefined();
        });

        it("returns the customer's signed portal link, else the store's portal sign-in page", async () => {
          const { customerId } = await current().createCustomer({ userId: 'usr_portal', email: email('portal') });
          const returnUrl = 'https://apigate.example.com/account';
          expect(await current().createPortalSession({ customerId, returnUrl })).toEqual({
            url: 'https://apigate-test.lemonsqueezy.com/billing',
          });
          const s = await subscribe();
          const { url } = await current().createPortalSession({ customerId: s.customerId, returnUrl });
          expect(url).toMatch(/^https:\/\/apigate-test\.lemonsqueezy\.com\/billing\?expires=\d+&user=\d+&signature=[0-9a-f]+$/);
          expect(url).toBe(fake.db.customers!.get(s.customerId)!.attributes.urls.customer_portal);
        });

        it('lists every page of the store, and filters by update time', async () => {
          const made = await Promise.all([subscribe(), subscribe(), subscribe()]);
          const inStore = [...fake.db.subscriptions!.values()].filter((x) => String(x.attributes.store_id) === STORE_ID).length;
          const all: string[] = [];
          for await (const x of current().listSubscriptions({})) all.push(x.subscriptionId);
          expect(all).toHaveLength(inStore);
          expect(all).toEqual(expect.arrayContaining(made.map((m) => m.subscriptionId)));
          fake.db.subscriptions!.get(made[0]!.subscriptionId)!.attributes.updated_at = lemonTime(new Date(Date.now() - 3 * DAY_MS));
          const recent: string[] = [];
          for await (const x of current().listSubscriptions({ updatedSince: new Date(Date.now() - DAY_MS) })) recent.push(x.subscriptionId);
          expect(recent).not.toContain(made[0]!.subscriptionId);
          expect(recent).toEqual(expect.arrayContaining([made[1]!.subscriptionId, made[2]!.subscriptionId]));
          const none: string[] = [];
          for await (const x of current().listSubscriptions({ customerId: '999999' })) none.push(x.subscriptionId);
          expect(none).toEqual([]);
        });

        it('refuses metered prices and usage reports as final (features.meteredBilling is false)', async () => {
          await expect(
            current().upsertPrice({ planId: 'm', name: 'M', amountCents: 1, currency: 'usd', interval: 'month', metered: true }),
          ).rejects.toMatchObject({
            code: 'INVALID_INPUT',
          });
          await expect(
            current().reportUsage({ customerId: 'c', subscriptionId: 's', quantity: 1, timestamp: new Date(), idempotencyKey: 'k' }),
          ).rejects.toMatchObject({ retryable: false, code: 'NOT_SUPPORTED' });
        });

        it('lists subscription invoices of every subscription of the customer: total, status, invoice url; newest first; an unknown customer has none', async () => {
          const s = await subscribe();
          const t = Date.now();
          const ids = {
            renewal: fake.addSubscriptionInvoice(s.subscriptionId, { status: 'pending', createdAt: new Date(t + 10_000) }),
            refunded: fake.addSubscriptionInvoice(s.subscriptionId, { status: 'refunded', createdAt: new Date(t + 20_000) }),
            partial: fake.addSubscriptionInvoice(s.subscriptionId, {
              status: 'partial_refund',
              total: 2390,
              createdAt: new Date(t + 30_000),
            }),
            voided: fake.addSubscriptionInvoice(s.subscriptionId, { status: 'void', createdAt: new Date(t + 40_000) }),
          };
          // Someone else's subscription, in the same store: never listed.
          const other = await subscribe();
          fake.addSubscriptionInvoice(other.subscriptionId, { status: 'paid', createdAt: new Date(t + 50_000) });
          const since = fake.requests.length;
          const invoices = await current().listInvoices!({ customerId: s.customerId });
          const paths = fake.requests.slice(since).map((r) => r.path);
          expect(paths).toContain(
            `/v1/subscription-invoices?filter[store_id]=${STORE_ID}&filter[subscription_id]=${s.subscriptionId}&page[number]=1&page[size]=12`,
          );
          expect(paths.some((p) => p.includes(`filter[subscription_id]=${other.subscriptionId}`))).toBe(false);
          expect(invoices.map((i) => [i.id, i.status, i.amountCents, i.currency])).toEqual([
            [ids.voided, 'void', 1900, 'usd'],
            [ids.partial, 'partially_refunded', 2390, 'usd'],
            [ids.refunded, 'refunded', 1900, 'usd'],
            [ids.renewal, 'open', 1900, 'usd'],
            [expect.any(String), 'paid', 1900, 'usd'],
          ]);
          const stored = fake.db['subscription-invoices']!.get(ids.partial)!.attributes;
          expect(invoices[1]!.url).toBe(stored.urls.invoice_url);
          expect(invoices[1]!.createdAt.getTime()).toBe(t + 30_000);
          expect(invoices.every((i) => i.periodStart === undefined && i.periodEnd === undefined)).toBe(true);
          expect(await current().listInvoices!({ customerId: s.customerId, limit: 2 })).toHaveLength(2);
          expect(await current().listInvoices!({ customerId: '999999' })).toEqual([]);
        });

        it('archivePrice changes nothing in LemonSqueezy: the variant stays on sale', async () => {
          const { priceId } = await current().upsertPrice({
            planId: 'p',
            name: 'Conformance Business',
            amountCents: 4900,
            currency: 'usd',
            interval: 'month',
          });
          const before = fake.requests.length;
          await current().archivePrice(priceId);
          expect(fake.requests.length).toBe(before);
        });
      });
    },
  });

  describe('errors', () => {
    const errorOf = (p: Promise<unknown>) => providerErrorOf(p, [API_KEY, SECRET]);

    it.each([
      [429, true, 'Too Many Requests', 'Rate limit exceeded.'],
      [500, true, 'Server Error', 'Something went wrong.'],
      [503, true, 'Service Unavailable', 'Down for maintenance.'],
      [404, false, 'Not Found', 'The requested resource could not be found.'],
      [422, false, 'Unprocessable Entity', 'The variant must be a subscription variant.'],
    ])('a %i answer is retryable: %s', async (status, retryable, title, detail) => {
      const p = await lemon();
      fake.inject.push({ status, title, detail });
      const err = await errorOf(p.getSubscription('1'));
      expect(err).toMatchObject({ retryable, status, capability: 'payment', provider: 'lemonsqueezy', operation: 'getSubscription' });
      expect(err.message).toBe(`payment/lemonsqueezy getSubscription: LemonSqueezy answered ${status}: ${title}: ${detail}`);
    });

    it('names the field LemonSqueezy rejected', async () => {
      const s = await (async () => {
        const p = await lemon();
        const { sessionId } = await openCheckout(p, { userId: 'u', email: email('field'), price: proPrice, ...urls });
        return { p, ...fake.completeCheckout(sessionId) };
      })();
      const { variantIds } = fake.addProduct('One-off', [{ name: 'Default', amountCents: 100, interval: 'month', category: 'one_time' }]);
      const err = await errorOf(s.p.changeSubscription({ subscriptionId: s.subscriptionId, priceId: variantIds[0]! }));
      expect(err.message).toBe(
        'payment/lemonsqueezy changeSubscription: LemonSqueezy answered 422: Unprocessable Entity: The variant must be a subscription variant. (/data/attributes/variant_id)',
      );
      expect(err.retryable).toBe(false);
    });

    it('says to check the key when LemonSqueezy refuses it, without the key', async () => {
      const p = await lemon({ apiKey: 'not-the-key-0123456789' });
      const err = await errorOf(p.getSubscription('1'));
      expect(err).toMatchObject({ retryable: false, status: 401 });
      expect(err.message).toBe(
        'payment/lemonsqueezy getSubscription: LemonSqueezy answered 401: Unauthorized: Unauthenticated.; check LEMON_API_KEY (test-mode and live-mode keys are separate)',
      );
      expect(err.message).not.toContain('not-the-key-0123456789');
    });

    it('treats a page that is not JSON, an unreachable host and a timeout as retryable', async () => {
      const p = await lemon({ timeoutMs: 300 });
      fake.inject.push({ status: 502, raw: '<html>Bad gateway</html>' });
      expect(await errorOf(p.getSubscription('1'))).toMatchObject({ retryable: true, status: 502 });
      fake.inject.push({ hang: true });
      const slow = await errorOf(p.getSubscription('1'));
      expect(slow).toMatchObject({ retryable: true, code: 'ETIMEDOUT' });
      expect(slow.message).toContain('no answer from LemonSqueezy at 127.0.0.1');
      const port = await freePort();
      const down = await errorOf((await lemon({ baseUrl: `http://127.0.0.1:${port}` })).getSubscription('1'));
      expect(down).toMatchObject({ retryable: true, code: 'ECONNREFUSED' });
      expect(down.message).toBe(`payment/lemonsqueezy getSubscription: could not reach LemonSqueezy at 127.0.0.1:${port}: ECONNREFUSED`);
    });

    it('refuses calls after close, and close twice is fine', async () => {
      const p = await lemon();
      await p.close();
      await p.close();
      expect(await errorOf(p.getSubscription('1'))).toMatchObject({ retryable: false });
      await expect(p.check(AbortSignal.timeout(1000))).resolves.toMatchObject({ status: 'error' });
    });
  });

  describe('check', () => {
    it('reports the store by name and currency', async () => {
      const h = await (await lemon()).check(AbortSignal.timeout(5000));
      expect(h).toMatchObject({ status: 'connected', detail: `store ${STORE_ID} "APIGate Test" (USD) at ${new URL(fake.url).host}` });
      expect(fake.requests.at(-1)).toMatchObject({ method: 'GET', path: `/v1/stores/${STORE_ID}` });
    });

    it('says when LEMON_STORE_ID is not a store of the key', async () => {
      const h = await (await lemon({ storeId: '31337' })).check(AbortSignal.timeout(5000));
      expect(h.status).toBe('error');
      expect(h.error).toContain('LEMON_STORE_ID 31337 is not a store this API key can see');
    });

    it('reports a refused key as an error without the key', async () => {
      const h = await (await lemon({ apiKey: 'wrong-key-0123456789abcdef' })).check(AbortSignal.timeout(5000));
      expect(h).toMatchObject({ status: 'error' });
      expect(h.error).toContain('check LEMON_API_KEY');
      expect(JSON.stringify(h)).not.toContain('wrong-key-0123456789abcdef');
    });

    it('is bounded by the signal', async () => {
      const p = await lemon();
      fake.inject.push({ hang: true });
      const before = fake.requests.length;
      const controller = new AbortController();
      const pending = p.check(controller.signal);
      await vi.waitFor(() => expect(fake.requests.length).toBe(before + 1), { timeout: 10_000 });
      controller.abort();
      expect(await pending).toMatchObject({ status: 'error', error: expect.stringContaining('aborted') });
    });
  });

  describe('configuration', () => {
    const errorsOf = (env: Record<string, string>): string[] => {
      try {
        resolveProviderConfig(provider, env, settingsFromRecord({}));
        return [];
      } catch (errs) {
        return (errs as Error[]).map((e) => e.message);
      }
    };

    it('needs the webhook secret, naming the env var in one line', () => {
      expect(errorsOf({ LEMON_API_KEY: API_KEY, LEMON_STORE_ID: STORE_ID })).toEqual([
        "LEMON_WEBHOOK_SECRET (setting payment.lemonsqueezy.webhook_secret): is required; expected the signing secret of the store's webhook for this gateway (6-40 characters)",
      ]);
    });

    it('reads every documented env var, keeping the two secrets masked', () => {
      const { config, secretValues } = resolveProviderConfig(
        provider,
        { LEMON_API_KEY: API_KEY, LEMON_STORE_ID: STORE_ID, LEMON_WEBHOOK_SECRET: SECRET, LEMON_TIMEOUT_MS: '5000' },
        settingsFromRecord({}),
      );
      expect(config).toEqual({
        apiKey: API_KEY,
        storeId: STORE_ID,
        webhookSecret: SECRET,
        baseUrl: 'https://api.lemonsqueezy.com',
        timeoutMs: 5000,
      });
      expect(secretValues).toEqual([API_KEY, SECRET]);
      expect(errorsOf({ LEMON_API_KEY: API_KEY, LEMON_STORE_ID: 'my-store', LEMON_WEBHOOK_SECRET: SECRET })).toEqual([
        'LEMON_STORE_ID (setting payment.lemonsqueezy.store_id): expected digits; expected the numeric id of the LemonSqueezy store to sell from',
      ]);
    });
  });

  describe('webhook details', () => {
    const signed = (body: unknown, secret = SECRET) => {
      const raw = JSON.stringify(body);
      return { rawBody: utf8.encode(raw), headers: { 'x-signature': sign(raw, secret).headers['X-Signature'] } };
    };
    /** A subscription made through a checkout, and the subscription_cancelled body LemonSqueezy would send for it. */
    const cancelledBody = async (p: PaymentProvider) => {
      const { sessionId } = await openCheckout(p, { userId: 'u', email: email('hook'), price: proPrice, ...urls });
      const s = fake.db.subscriptions!.get(fake.completeCheckout(sessionId).subscriptionId)!;
      const attributes: Record<string, any> = {
        ...clone(s.attributes),
        status: 'cancelled',
        cancelled: true,
        ends_at: s.attributes.renews_at,
      };
      return { meta: { event_name: 'subscription_cancelled' }, data: { type: 'subscriptions', id: s.id, attributes } };
    };

    it('without meta.webhook_id, derives a redelivery-stable id from the event, the object and its updated_at', async () => {
      const p = await lemon();
      const body = await cancelledBody(p);
      const a = await p.parseWebhook(signed(body));
      const b = await p.parseWebhook(signed(body));
      expect(a.id).toBe(`subscription_cancelled:subscriptions:${body.data.id}:${body.data.attributes.updated_at}`);
      expect(b.id).toBe(a.id);
      expect(a).toMatchObject({ type: 'subscription.updated', subscription: { status: 'active', cancelAtPeriodEnd: true } });
    });

    it('refuses a correctly signed body that is not a webhook, as bad input', async () => {
      const p = await lemon();
      await expect(
        p.parseWebhook({ rawBody: utf8.encode('nope'), headers: { 'x-signature': sign('nope', SECRET).headers['X-Signature'] } }),
      ).rejects.toMatchObject({
        code: 'INVALID_INPUT',
      });
      await expect(p.parseWebhook(signed({ meta: {}, data: {} }))).rejects.toThrow('body field meta.event_name is missing');
      await expect(
        p.parseWebhook(signed({ meta: { event_name: 'order_created' }, data: { type: 'orders', id: '1', attributes: {} } })),
      ).rejects.toThrow('data.attributes.updated_at is missing');
    });

    it('maps paused and unpaid subscriptions, and reads a cancelled trial as trialing until it ends', async () => {
      const p = await lemon();
      const base = await cancelledBody(p);
      const future = lemonTime(new Date(Date.now() + 5 * DAY_MS));
      const parse = async (attributes: Record<string, unknown>) =>
        (await p.parseWebhook(signed({ ...base, data: { ...base.data, attributes: { ...base.data.attributes, ...attributes } } })))
          .subscription;
      expect(await parse({ status: 'paused', cancelled: false, ends_at: null })).toMatchObject({
        status: 'paused',
        cancelAtPeriodEnd: false,
      });
      expect(await parse({ status: 'unpaid', cancelled: false, ends_at: null })).toMatchObject({ status: 'unpaid' });
      expect(await parse({ status: 'cancelled', trial_ends_at: future, ends_at: future })).toMatchObject({
        status: 'trialing',
        cancelAtPeriodEnd: true,
        currentPeriodEnd: new Date(future),
      });
    });
  });
});
