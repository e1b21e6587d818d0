import { BillingError, CustomerBilling, openStore, PaymentProcessor, type Store } from '@apigate/gateway';
import { type AnyProviderDefinition, type PaymentFeatures, type PaymentProvider, silentLogger } from '@apigate/kernel';
import lemonsqueezy from '@apigate/provider-lemonsqueezy';
import { API_KEY as LEMON_KEY, STORE_ID } from '@apigate/provider-lemonsqueezy/testing';
import paddle from '@apigate/provider-paddle';
import { API_KEY as PADDLE_KEY } from '@apigate/provider-paddle/testing';
import stripe from '@apigate/provider-stripe';
import { SECRET_KEY as STRIPE_KEY } from '@apigate/provider-stripe/testing';
import { createForTest } from '@apigate/provider-testkit';
import { describe, expect, it } from 'vitest';
import { tempDir } from './helpers.js';
import { usePaymentFakes } from './payment-fakes.js';

/**
 * The customer's billing calls (checkout, provider read, portal, change, cancel, overage) against
 * the same local stand-ins the provider packages test with, each provider through its own SDK or client.
 */
interface Case {
  name: 'stripe' | 'paddle' | 'lemonsqueezy';
  def: AnyProviderDefinition;
  settings: () => Record<string, unknown>;
  /** The customer pays on the provider's hosted page. */
  pay: (sessionId: string) => void;
}

const fakes = usePaymentFakes({ Pro: 2900, Team: 9900 });

const CASES: Case[] = [
  {
    name: 'stripe',
    def: stripe as AnyProviderDefinition,
    settings: () => ({ apiKey: STRIPE_KEY, webhookSecret: 'whsec_apigateBillingProvidersTest0123', baseUrl: fakes.stripe.url }),
    pay: (id) => void fakes.stripe.completeCheckout(id),
  },
  {
    name: 'paddle',
    def: paddle as AnyProviderDefinition,
    settings: () => ({
      apiKey: PADDLE_KEY,
      webhookSecret: 'pdl_ntfset_01hzfakedestination00000_webhookSecretForTests',
      baseUrl: fakes.paddle.url,
    }),
    pay: (id) => void fakes.paddle.completeTransaction(id),
  },
  {
    name: 'lemonsqueezy',
    def: lemonsqueezy as AnyProviderDefinition,
    settings: () => ({
      apiKey: LEMON_KEY,
      storeId: STORE_ID,
      webhookSecret: 'lemon-signing-secret-for-tests-0123',
      baseUrl: fakes.lemon.url,
    }),
    pay: (id) => void fakes.lemon.completeCheckout(id),
  },
];

async function setup(c: Case) {
  const store: Store = await openStore({ dataDir: tempDir(`billing-${c.name}`) });
  const { provider } = await createForTest(c.def, c.settings());
  const payment = provider as PaymentProvider;
  const features = c.def.features as PaymentFeatures;
  const billing = new CustomerBilling({
    store,
    logger: silentLogger(),
    providerName: c.name,
    payment,
    features,
    applier: new PaymentProcessor({ store, logger: silentLogger() }),
  });
  const d = store.domain;
  await d.plans.create({ name: 'Free', isDefault: true, requestsPerMonth: 100 });
  const pro = await d.plans.create({ name: 'Pro', priceCents: 2900, requestsPerMonth: 1000, overageCentsPerRequest: 0.5 });
  const team = await d.plans.create({ name: 'Team', priceCents: 9900, requestsPerMonth: 10_000 });
  const user = await d.users.create({ email: `ada-${c.name}@example.com`, name: 'Ada' });
  const planOf = async () => (await d.plans.get((await d.users.get(user.id)).planId)).name;
  const close = async () => {
    await payment.close();
    await store.close();
  };
  return { store, payment, features, billing, user, pro, team, planOf, close };
}

describe.each(CASES)('customer billing against the $name stand-in', (c) => {
  it('checkout, a provider read grants the plan, portal, change, cancel at period end, overage as the provider allows', async () => {
    const h = await setup(c);
    try {
      const { url, sessionId } = await h.billing.checkout(h.user, { plan: 'Pro', returnBase: 'https://api.example.com' });
      expect(url).toMatch(/^https?:\/\//);
      // The customer came back from the checkout page: nothing is granted by that.
      c.pay(sessionId);
      expect(await h.planOf()).toBe('Free');
      // A provider API read (what `apigate subscriptions sync` and the reconciler do) grants it.
      const sync = await h.billing.reconcile({ userId: h.user.id });
      expect(sync).toMatchObject({
        provider: c.name,
        errors: [],
        changed: [{ before: null, after: { status: 'active', planId: h.pro.id } }],
      });
      expect(await h.planOf()).toBe('Pro');
      const sub = (await h.billing.current(h.user.id))!;
      expect(sub).toMatchObject({ provider: c.name, status: 'active', planId: h.pro.id });
      // The overview lists the checkout's paid invoice, read from the provider's API.
      const overview = await h.billing.overview(h.user);
      expect(overview.features.invoices).toBe(true);
      expect(overview.invoices).toEqual([
        expect.objectContaining({ status: 'paid', amountCents: h.pro.priceCents, currency: h.pro.currency.toLowerCase() }),
      ]);
      expect(overview.invoices_error).toBeUndefined();

      // A second checkout is refused: change instead.
      await expect(h.billing.checkout(h.user, { plan: 'Team', returnBase: 'https://api.example.com' })).rejects.toMatchObject({
        code: 'ALREADY_SUBSCRIBED',
        status: 409,
      });

      const portal = await h.billing.portal(h.user, 'https://api.example.com/portal/billing');
      expect(portal.url).toMatch(/^https?:\/\//);

      const changed = await h.billing.change(h.user, { plan: 'Team' });
      expect(changed).toMatchObject({ id: sub.id, planId: h.team.id });
      expect(await h.planOf()).toBe('Team');

      const canceled = await h.billing.cancel(h.user);
      expect(canceled).toMatchObject({ id: sub.id, cancelAtPeriodEnd: true });
      expect(await h.planOf()).toBe('Team'); // paid until the period ends

      if (c.name === 'lemonsqueezy') {
        // LemonSqueezy's API cancels only at period end: said plainly, nothing sent.
        const err = await h.billing.cancelSubscription(canceled, { now: true }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(BillingError);
        expect(err).toMatchObject({ status: 501, code: 'IMMEDIATE_CANCEL_UNSUPPORTED' });
      } else {
        const now = await h.billing.cancelSubscription(canceled, { now: true });
        expect(now.status).toBe('canceled');
        expect(await h.planOf()).toBe('Free');
      }

      // Overage: Stripe bills a metered item next to the plan's price; Paddle and LemonSqueezy cannot, and say so.
      const overage = await h.store.mappings.findExternal(c.name, 'plan_overage', h.pro.id);
      const report = await h.billing.reportOverage();
      if (c.name === 'stripe') {
        expect(overage).toBeDefined();
        const line = fakes.stripe.requests.filter((r) => r.method === 'POST' && r.path === '/v1/checkout/sessions').at(-1)!
          .params.line_items;
        expect(line).toEqual([{ price: expect.any(String), quantity: '1' }, { price: overage!.externalId }]);
        expect(report.supported).toBe(true);
      } else {
        expect(overage).toBeUndefined();
        expect(report).toEqual({ provider: c.name, supported: false, reported: [], failed: [] });
      }
    } finally {
      await h.close();
    }
  });
});

describe('overage reported to Stripe from stored usage (billing meter events)', () => {
  it('reports the units over the quota once, with the idempotency key as the meter event identifier', async () => {
    const h = await setup(CASES[0]!);
    try {
      const { sessionId } = await h.billing.checkout(h.user, { plan: 'Pro', returnBase: 'https://api.example.com' });
      CASES[0]!.pay(sessionId);
      await h.billing.reconcile({ userId: h.user.id });
      const sub = (await h.billing.current(h.user.id))!;
      const key = await h.store.domain.keys.create({ userId: h.user.id });
      // 1000 included; 1301 used -> 301 requests at 0.5 cents = 150.5 -> 151 cents, one unit a cent.
      await h.store.domain.usage.applyBatch('s1', [{ keyId: key.apiKey.id, userId: h.user.id, at: new Date(), requests: 1301 }]);
      const first = await h.billing.reportOverage();
      expect(first.reported).toMatchObject([{ subscriptionId: sub.id, quantity: 151, cumulative: 151 }]);
      expect(fakes.stripe.usageFor(sub.externalCustomerId!, 'apigate_api_requests')).toBe(151);
      expect((await h.billing.reportOverage()).reported).toEqual([]);
      expect(fakes.stripe.usageFor(sub.externalCustomerId!, 'apigate_api_requests')).toBe(151);
      const sent = fakes.stripe.requests.filter((r) => r.path === '/v1/billing/meter_events').at(-1)!;
      expect(sent.params.identifier).toBe(first.reported[0]!.id);
      expect(sent.headers['idempotency-key']).toBe(first.reported[0]!.id);
    } finally {
      await h.close();
    }
  });
});
