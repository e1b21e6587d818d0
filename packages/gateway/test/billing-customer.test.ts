import path from 'node:path';
import { InvalidInputError, type PaymentProvider, ProviderError, silentLogger } from '@apigate/kernel';
import dummyPayment, { DummyPayment, type SignedWebhook } from '@apigate/provider-dummy-payment';
import { describe, expect, it, vi } from 'vitest';
import {
  type BillingJobs,
  CustomerBilling,
  MAPPING,
  PaymentProcessor,
  reportOverage,
  startBillingJobs,
  startPaymentWorker,
  usageReportsFor,
} from '../src/billing/index.js';
import { openStore } from '../src/index.js';
import { KEY_A } from './helpers.js';
import { portalHarness } from './helpers/portal.js';

const ADMIN = 'billing-admin-token-0123456789';
const SECRET = 'whsec_billing_customer_test_secret';
const start = portalHarness();

/** The portal harness with the dummy payment provider, its webhook route, the payment worker and the billing jobs. */
async function harness(o: { jobs?: boolean } = {}) {
  const p = await start({
    providers: [dummyPayment],
    only: ['payment'],
    env: { PAYMENT_PROVIDER: 'dummy', PAYMENT_DUMMY_WEBHOOK_SECRET: SECRET },
    app: { adminToken: ADMIN },
  });
  const dummy = p.kernel.active.find((a) => a.capability === 'payment')!.instance as DummyPayment;
  const payment = p.kernel.get('payment');
  const worker = startPaymentWorker(p.kernel.get('queue'), { store: p.store, logger: silentLogger(), providerName: 'dummy', payment });
  let jobs: BillingJobs | undefined;
  if (o.jobs) {
    const billing = new CustomerBilling({
      store: p.store,
      logger: silentLogger(),
      providerName: 'dummy',
      payment,
      features: dummyPayment.features,
      applier: new PaymentProcessor({ store: p.store, logger: silentLogger() }),
    });
    jobs = startBillingJobs({ kernel: p.kernel, store: p.store, logger: silentLogger(), billing });
  }
  const close = async () => {
    await jobs?.close();
    await worker.close();
  };
  const post = async (w: SignedWebhook) => {
    const res = await fetch(`${p.url}/webhooks/dummy`, { method: 'POST', headers: w.headers, body: Buffer.from(w.rawBody) });
    expect(res.status).toBe(200);
  };
  const admin = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${p.url}/admin${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: (await res.json()) as any };
  };
  const planOf = async (email: string) => (await p.store.domain.plans.get((await p.store.domain.users.findByEmail(email))!.planId)).name;
  return { ...p, dummy, payment, post, admin, planOf, close };
}

const sessionOf = (url: string) => url.split('/').at(-1)!;

describe('customer billing through the portal API (dummy provider, real server)', () => {
  it('checkout -> signed webhook -> plan; change; portal; overage reported once; cancel at period end; admin cancel now', async () => {
    const h = await harness();
    try {
      const d = h.store.domain;
      const pro = await d.plans.create({ name: 'Pro', priceCents: 2900, requestsPerMonth: 100, overageCentsPerRequest: 2 });
      await d.plans.create({ name: 'Team', priceCents: 9900, requestsPerMonth: 1000, trialDays: 14 });
      const ada = await h.customer('ada@example.com', 'Ada');
      const user = (await d.users.findByEmail('ada@example.com'))!;

      const before = await ada.call('GET', '/portal/api/billing');
      expect(before).toMatchObject({
        status: 200,
        body: {
          provider: 'dummy',
          plan: { name: 'Free' },
          subscription: null,
          features: { customer_portal: true, metered_billing: true, immediate_cancel: true, invoices: true },
          invoices: [],
        },
      });

      // Errors first: nothing to change, cancel or open a portal for; a free plan is not for sale.
      expect((await ada.call('POST', '/portal/api/billing/change', { plan: 'Team' })).body.error.code).toBe('NO_SUBSCRIPTION');
      expect((await ada.call('POST', '/portal/api/billing/cancel')).body.error.code).toBe('NO_SUBSCRIPTION');
      expect(await ada.call('POST', '/portal/api/billing/portal')).toMatchObject({ status: 409, body: { error: { code: 'NO_CUSTOMER' } } });
      expect(await ada.call('POST', '/portal/api/billing/checkout', { plan: 'Free' })).toMatchObject({
        status: 400,
        body: { error: { code: 'PLAN_NOT_FOR_SALE' } },
      });
      expect(await ada.call('POST', '/portal/api/billing/checkout', { plan: 'Nope' })).toMatchObject({
        status: 404,
        body: { error: { code: 'PLAN_NOT_FOUND' } },
      });
      expect(await ada.call('POST', '/portal/api/billing/checkout', { plan: 'Pro', interval: 'year' })).toMatchObject({
        status: 400,
        body: { error: { code: 'NO_YEARLY_PRICE' } },
      });
      // Same session and CSRF rules as the rest of the portal API.
      expect((await ada.call('POST', '/portal/api/billing/checkout', { plan: 'Pro' }, { csrf: false })).status).toBe(403);
      expect((await h.client().call('GET', '/portal/api/billing')).status).toBe(401);

      // Checkout: the price is synced on first use, the customer made and mapped, then reused.
      const first = await ada.call('POST', '/portal/api/billing/checkout', { plan: 'Pro' });
      expect(first.status).toBe(200);
      expect(first.body.url).toMatch(/^http:\/\/localhost:8080\/portal\/dummy-checkout\/cs_dummy_[0-9a-f]+$/);
      const customer = (await h.store.mappings.findExternal('dummy', MAPPING.user, user.id))!.externalId;
      const again = await ada.call('POST', '/portal/api/billing/checkout', { plan: 'Pro' });
      expect((await h.store.mappings.findExternal('dummy', MAPPING.user, user.id))!.externalId).toBe(customer);
      const session = h.dummy.getCheckoutSession(sessionOf(again.body.url));
      expect(session).toMatchObject({
        customerId: customer,
        userId: user.id,
        planId: pro.id,
        // Under the public URL (here the loopback address the portal was reached on).
        successUrl: `${h.url}/portal/billing?checkout=success`,
        cancelUrl: `${h.url}/portal/billing?checkout=cancel`,
      });
      // Pro has an overage price and the dummy bills metered usage: the metered price rides along.
      expect(session.meteredPriceId).toBe((await h.store.mappings.findExternal('dummy', 'plan_overage', pro.id))!.externalId);

      // Coming back to the success URL grants nothing: only the provider's signed event does.
      expect(await h.planOf('ada@example.com')).toBe('Free');
      const paid = h.dummy.completeCheckout(sessionOf(again.body.url));
      await h.post(paid.webhook);
      await vi.waitFor(async () => expect(await h.planOf('ada@example.com')).toBe('Pro'), { timeout: 10_000, interval: 20 });

      const billing = await ada.call('GET', '/portal/api/billing');
      expect(billing.body).toMatchObject({
        plan: { name: 'Pro' },
        subscription: { status: 'active', plan_id: pro.id, cancel_at_period_end: false },
      });
      expect(Date.parse(billing.body.subscription.current_period_end)).toBeGreaterThan(Date.now());
      expect(await ada.call('POST', '/portal/api/billing/checkout', { plan: 'Team' })).toMatchObject({
        status: 409,
        body: { error: { code: 'ALREADY_SUBSCRIBED' } },
      });

      const portal = await ada.call('POST', '/portal/api/billing/portal');
      expect(portal.status).toBe(200);
      expect(new URL(portal.body.url).searchParams.get('customer')).toBe(customer);
      expect(new URL(portal.body.url).searchParams.get('return_url')).toBe(`${h.url}/portal/billing`);

      // Over the quota: 100 included, 130 used -> 30 overage requests at 2 cents, one unit per request.
      const key = await d.keys.create({ userId: user.id });
      await d.usage.applyBatch('b1', [{ keyId: key.apiKey.id, userId: user.id, at: new Date(), requests: 130 }]);
      const subId = paid.subscription.subscriptionId;
      const report = () =>
        reportOverage({
          store: h.store,
          logger: silentLogger(),
          providerName: 'dummy',
          payment: h.payment,
          features: dummyPayment.features,
        });
      expect((await report()).reported.map((r) => r.quantity)).toEqual([30]);
      expect(h.dummy.usageFor(subId).total).toBe(30);
      // Again, and after a restart (another process opening the same database): nothing more.
      expect((await report()).reported).toEqual([]);
      const restarted = await openStore({ dataDir: path.dirname(h.store.file), secretKey: KEY_A });
      try {
        const again = await reportOverage({
          store: restarted,
          logger: silentLogger(),
          providerName: 'dummy',
          payment: h.payment,
          features: dummyPayment.features,
        });
        expect(again.reported).toEqual([]);
      } finally {
        await restarted.close();
      }
      expect(h.dummy.usageFor(subId).total).toBe(30);
      // 20 more requests: only the difference is reported.
      await d.usage.applyBatch('b2', [{ keyId: key.apiKey.id, userId: user.id, at: new Date(), requests: 20 }]);
      expect((await report()).reported.map((r) => [r.quantity, r.cumulative])).toEqual([[20, 50]]);
      expect(h.dummy.usageFor(subId).total).toBe(50);

      // A final refusal is recorded as failed, and the period records nothing more after it.
      const refusing: Pick<PaymentProvider, 'reportUsage'> = {
        reportUsage: async () => {
          throw new InvalidInputError('payment/dummy reportUsage: price "x" is not metered');
        },
      };
      const other = await d.users.create({ email: 'refused@example.com' });
      const otherKey = await d.keys.create({ userId: other.id });
      const refusedSub = await d.subscriptions.create({
        userId: other.id,
        planId: pro.id,
        provider: 'dummy',
        externalCustomerId: 'cus_dummy_refused',
        externalSubscriptionId: 'sub_dummy_refused',
        status: 'active',
      });
      await d.usage.applyBatch('r1', [{ keyId: otherKey.apiKey.id, userId: other.id, at: new Date(), requests: 110 }]);
      const refused = await reportOverage({
        store: h.store,
        logger: silentLogger(),
        providerName: 'dummy',
        payment: refusing,
        features: dummyPayment.features,
      });
      expect(refused.failed).toMatchObject([
        { subscriptionId: refusedSub.id, quantity: 10, status: 'failed', error: expect.stringContaining('is not metered') },
      ]);
      await d.usage.applyBatch('r2', [{ keyId: otherKey.apiKey.id, userId: other.id, at: new Date(), requests: 10 }]);
      await reportOverage({
        store: h.store,
        logger: silentLogger(),
        providerName: 'dummy',
        payment: refusing,
        features: dummyPayment.features,
      });
      expect((await usageReportsFor(h.store, refusedSub.id)).map((r) => r.status)).toEqual(['failed']);

      // The provider took the report but the answer was lost (a crash, a timeout): the row stays
      // pending and the next run sends it with the same key, which the provider counts once.
      await d.usage.applyBatch('b3', [{ keyId: key.apiKey.id, userId: user.id, at: new Date(), requests: 5 }]);
      const lostAnswer: Pick<PaymentProvider, 'reportUsage'> = {
        reportUsage: async (i) => {
          await h.payment.reportUsage(i);
          throw new ProviderError({
            capability: 'payment',
            provider: 'dummy',
            operation: 'reportUsage',
            retryable: true,
            message: 'connection reset',
          });
        },
      };
      const lost = await reportOverage({
        store: h.store,
        logger: silentLogger(),
        providerName: 'dummy',
        payment: lostAnswer,
        features: dummyPayment.features,
      });
      expect(lost.failed).toMatchObject([{ quantity: 5, status: 'pending' }]);
      expect((await report()).reported).toMatchObject([{ quantity: 5, cumulative: 55 }]);
      expect(h.dummy.usageFor(subId).total).toBe(55);
      const stored = (await d.subscriptions.findByExternal('dummy', subId))!;
      expect((await usageReportsFor(h.store, stored.id)).map((r) => [r.id, r.status])).toEqual([
        [`${stored.id}:${new Date().toISOString().slice(0, 7)}:30`, 'reported'],
        [`${stored.id}:${new Date().toISOString().slice(0, 7)}:50`, 'reported'],
        [`${stored.id}:${new Date().toISOString().slice(0, 7)}:55`, 'reported'],
      ]);
      const shown = await h.admin('GET', `/subscriptions/${stored.id}`);
      expect(shown.body.usage_reports).toHaveLength(3);

      // Change: the provider's answer (an API read) moves the plan; the provider prorates.
      const changed = await ada.call('POST', '/portal/api/billing/change', { plan: 'Team' });
      expect(changed).toMatchObject({
        status: 200,
        body: { subscription: { plan_id: (await d.plans.resolve('Team')).id, status: 'active' } },
      });
      expect(await h.planOf('ada@example.com')).toBe('Team');

      // Cancel at period end: the plan stays until the period ends; immediate cancel is not for customers.
      expect((await ada.call('POST', '/portal/api/billing/cancel', { now: true })).status).toBe(400);
      const canceled = await ada.call('POST', '/portal/api/billing/cancel');
      expect(canceled).toMatchObject({ status: 200, body: { subscription: { status: 'active', cancel_at_period_end: true } } });
      expect(await h.planOf('ada@example.com')).toBe('Team');

      // The period ends: the provider's signed deletion returns the user to the default plan.
      await h.post(h.dummy.renewSubscription(subId).webhook);
      await vi.waitFor(async () => expect(await h.planOf('ada@example.com')).toBe('Free'), { timeout: 10_000, interval: 20 });
      expect((await ada.call('POST', '/portal/api/billing/change', { plan: 'Pro' })).body.error.code).toBe('NO_SUBSCRIPTION');

      // A new subscription, cancelled now by an admin.
      const again2 = await ada.call('POST', '/portal/api/billing/checkout', { plan: 'Team' });
      const trial = h.dummy.completeCheckout(sessionOf(again2.body.url));
      expect(trial.subscription.status).toBe('trialing'); // the plan's 14 trial days
      await h.post(trial.webhook);
      await vi.waitFor(async () => expect(await h.planOf('ada@example.com')).toBe('Team'), { timeout: 10_000, interval: 20 });
      const teamSub = (await d.subscriptions.findByExternal('dummy', trial.subscription.subscriptionId))!;
      const list = await h.admin('GET', `/subscriptions?user_id=${user.id}`);
      expect(list.body.data.map((s: { id: string }) => s.id)).toContain(teamSub.id);
      expect((await h.admin('GET', '/subscriptions?status=bogus')).status).toBe(400);
      const now = await h.admin('POST', `/subscriptions/${teamSub.id}/cancel`, { now: true });
      expect(now).toMatchObject({ status: 200, body: { id: teamSub.id, status: 'canceled' } });
      expect(await h.planOf('ada@example.com')).toBe('Free');
    } finally {
      await h.close();
    }
  });

  it('lists the invoices newest first (at most 12), and a provider failure leaves them out without failing the overview', async () => {
    // Spied on before the provider is made (the kernel's instrumentation keeps the method it first wrapped); it calls through until told to fail.
    const spy = vi.spyOn(DummyPayment.prototype, 'listInvoices');
    const h = await harness();
    try {
      await h.store.domain.plans.create({ name: 'Pro', priceCents: 2900 });
      const ada = await h.customer('iv@example.com');
      const paid = h.dummy.completeCheckout(sessionOf((await ada.call('POST', '/portal/api/billing/checkout', { plan: 'Pro' })).body.url));
      await h.post(paid.webhook);
      await vi.waitFor(async () => expect(await h.planOf('iv@example.com')).toBe('Pro'), { timeout: 10_000, interval: 20 });
      const subId = paid.subscription.subscriptionId;

      const first = await ada.call('GET', '/portal/api/billing');
      expect(first.status).toBe(200);
      expect(first.body.invoices).toEqual([
        {
          id: expect.stringMatching(/^in_dummy_/),
          status: 'paid',
          amount_cents: 2900,
          currency: 'usd',
          created_at: expect.any(String),
          period_start: expect.any(String),
          period_end: paid.subscription.currentPeriodEnd!.toISOString(),
        },
      ]);
      expect(first.body.invoices_error).toBeUndefined();

      // A failed charge leaves an open invoice.
      const failed = h.dummy.failPayment(subId);
      let overview = await ada.call('GET', '/portal/api/billing');
      expect(overview.body.invoices.map((i: { id: string; status: string }) => [i.id, i.status])).toEqual([
        [failed.event.invoice!.id, 'open'],
        [first.body.invoices[0].id, 'paid'],
      ]);
      // The first renewal pays the open invoice; the 12 after it are new: 14 at the provider, the newest 12 shown.
      const renewals = Array.from({ length: 13 }, () => h.dummy.renewSubscription(subId).event.invoice!.id);
      expect(renewals[0]).toBe(failed.event.invoice!.id);
      overview = await ada.call('GET', '/portal/api/billing');
      expect(overview.body.invoices).toHaveLength(12);
      expect(overview.body.invoices.map((i: { id: string }) => i.id)).toEqual(renewals.slice(1).reverse());
      expect(overview.body.invoices.every((i: { status: string }) => i.status === 'paid')).toBe(true);
      const times = overview.body.invoices.map((i: { created_at: string }) => Date.parse(i.created_at));
      expect(times).toEqual([...times].sort((a, b) => b - a));

      // The provider fails: the rest of the overview is there, the invoices are null with a masked reason.
      spy.mockRejectedValueOnce(
        new ProviderError({
          capability: 'payment',
          provider: 'dummy',
          operation: 'listInvoices',
          retryable: true,
          message: 'upstream said sk_live_secret_value',
        }),
      );
      const down = await ada.call('GET', '/portal/api/billing');
      expect(down.status).toBe(200);
      expect(down.body).toMatchObject({
        plan: { name: 'Pro' },
        subscription: { status: 'active' },
        features: { invoices: true },
        invoices: null,
      });
      expect(down.body.invoices_error).toBe('the payment provider dummy failed (listInvoices); try again shortly');
      expect(JSON.stringify(down.body)).not.toContain('sk_live_secret_value');
      // Back again on the next request.
      expect((await ada.call('GET', '/portal/api/billing')).body.invoices).toHaveLength(12);
    } finally {
      spy.mockRestore();
      await h.close();
    }
  });

  it('shows invoices: null where the provider has no invoice list', async () => {
    const h = await harness();
    try {
      const user = await h.store.domain.users.create({ email: 'ni@example.com' });
      await h.store.mappings.put({ provider: 'dummy', entityType: MAPPING.user, localId: user.id, externalId: 'cus_dummy_x' });
      const { invoices: _declared, ...features } = dummyPayment.features!;
      const withoutList = new CustomerBilling({
        store: h.store,
        logger: silentLogger(),
        providerName: 'dummy',
        payment: h.payment,
        features,
      });
      const overview = await withoutList.overview(user);
      expect(overview.features.invoices).toBe(false);
      expect(overview.invoices).toBeNull();
      expect(overview.invoices_error).toBeUndefined();
    } finally {
      await h.close();
    }
  });

  it('answers 503 with a clear message when no payment provider is selected', async () => {
    const p = await start();
    const ada = await p.customer('bo@example.com');
    expect(await ada.call('GET', '/portal/api/billing')).toMatchObject({ status: 503, body: { error: { code: 'PAYMENTS_UNAVAILABLE' } } });
    expect((await ada.call('POST', '/portal/api/billing/checkout', { plan: 'x' })).body.error.message).toMatch(
      /no payment provider is selected/,
    );
  });

  it('reconciliation repairs drift: the provider says canceled, the store says active', async () => {
    const h = await harness();
    try {
      const d = h.store.domain;
      await d.plans.create({ name: 'Pro', priceCents: 2900 });
      const ada = await h.customer('cy@example.com');
      const paid = h.dummy.completeCheckout(sessionOf((await ada.call('POST', '/portal/api/billing/checkout', { plan: 'Pro' })).body.url));
      await h.post(paid.webhook);
      await vi.waitFor(async () => expect(await h.planOf('cy@example.com')).toBe('Pro'), { timeout: 10_000, interval: 20 });

      // Canceled at the provider, and its webhook never arrived.
      await h.dummy.cancelSubscription({ subscriptionId: paid.subscription.subscriptionId, atPeriodEnd: false });
      expect((await d.subscriptions.findByExternal('dummy', paid.subscription.subscriptionId))!.status).toBe('active');

      const user = (await d.users.findByEmail('cy@example.com'))!;
      const sync = await h.admin('POST', '/subscriptions/sync', { user_id: user.id });
      expect(sync.status).toBe(200);
      expect(sync.body).toMatchObject({
        provider: 'dummy',
        checked: 1,
        errors: [],
        changed: [
          { external_subscription_id: paid.subscription.subscriptionId, before: { status: 'active' }, after: { status: 'canceled' } },
        ],
      });
      expect((await d.subscriptions.findByExternal('dummy', paid.subscription.subscriptionId))!.status).toBe('canceled');
      expect(await h.planOf('cy@example.com')).toBe('Free');
      // Nothing left to repair.
      expect((await h.admin('POST', '/subscriptions/sync', {})).body).toMatchObject({ changed: [], errors: [] });
    } finally {
      await h.close();
    }
  });

  it('syncs plan prices by itself when a priced plan is created or changed (payment.plan-sync queue)', async () => {
    const h = await harness({ jobs: true });
    try {
      const created = await h.admin('POST', '/plans', { name: 'Scale', price_cents: 4900, yearly_price_cents: 49000 });
      expect(created.status).toBe(201);
      const month = () => h.store.mappings.findExternal('dummy', MAPPING.plan, created.body.id);
      await vi.waitFor(async () => expect(await month()).toBeDefined(), { timeout: 10_000, interval: 20 });
      await vi.waitFor(async () => expect(await h.store.mappings.findExternal('dummy', 'plan_year', created.body.id)).toBeDefined(), {
        timeout: 10_000,
        interval: 20,
      });
      const firstPrice = (await month())!.externalId;

      // A new price: the mapping moves to the provider's new price.
      expect((await h.admin('PATCH', `/plans/${created.body.id}`, { price_cents: 5900 })).status).toBe(200);
      await vi.waitFor(async () => expect((await month())!.externalId).not.toBe(firstPrice), { timeout: 10_000, interval: 20 });

      // A yearly checkout uses the yearly price, and its subscription finds the plan from it.
      const ada = await h.customer('di@example.com');
      const year = await ada.call('POST', '/portal/api/billing/checkout', { plan: 'Scale', interval: 'year' });
      expect(year.status).toBe(200);
      const session = h.dummy.getCheckoutSession(sessionOf(year.body.url));
      expect(session).toMatchObject({ interval: 'year', amountCents: 49000 });
      await h.post(h.dummy.completeCheckout(session.sessionId).webhook);
      await vi.waitFor(async () => expect(await h.planOf('di@example.com')).toBe('Scale'), { timeout: 10_000, interval: 20 });
    } finally {
      await h.close();
    }
  });
});

describe('customer billing edge cases', () => {
  it('two checkouts at once for a new customer end with one customer mapping (the spare customer is deleted)', async () => {
    const h = await harness();
    try {
      await h.store.domain.plans.create({ name: 'Pro', priceCents: 2900 });
      const user = await h.store.domain.users.create({ email: 'eve@example.com' });
      const deleted: string[] = [];
      // Both checkouts find no customer, then both make one: the provider answers slowly.
      const slow: PaymentProvider = Object.create(h.payment, {
        createCustomer: {
          value: async (i: Parameters<PaymentProvider['createCustomer']>[0]) => {
            await new Promise((r) => setTimeout(r, 50));
            return h.payment.createCustomer(i);
          },
        },
        deleteCustomer: {
          value: async (id: string) => {
            deleted.push(id);
            await h.payment.deleteCustomer(id);
          },
        },
      });
      const billing = new CustomerBilling({
        store: h.store,
        logger: silentLogger(),
        providerName: 'dummy',
        payment: slow,
        features: dummyPayment.features,
      });
      const [a, b] = await Promise.all([
        billing.checkout(user, { plan: 'Pro', returnBase: h.url }),
        billing.checkout(user, { plan: 'Pro', returnBase: h.url }),
      ]);
      const mapped = (await h.store.mappings.findExternal('dummy', MAPPING.user, user.id))!.externalId;
      expect(h.dummy.getCheckoutSession(a.sessionId).customerId).toBe(mapped);
      expect(h.dummy.getCheckoutSession(b.sessionId).customerId).toBe(mapped);
      expect(deleted).toHaveLength(1);
      expect(deleted[0]).not.toBe(mapped);
    } finally {
      await h.close();
    }
  });
});
