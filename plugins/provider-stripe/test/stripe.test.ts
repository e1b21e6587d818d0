import { createHmac } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import {
  ConfigErrors,
  createKernel,
  discoverPlugins,
  isRetryable,
  knownSettingKeys,
  type PaymentProvider,
  ProviderError,
  resolveProviderConfig,
  settingsFromRecord,
  utf8,
  type WebhookInput,
} from '@apigate/kernel';
import { assertValidManifest, describePaymentProvider, testInstances, type WebhookEventSpec } from '@apigate/provider-testkit';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pkg from '../package.json' with { type: 'json' };
import provider, { mapStatus, normaliseEvent, productIdFor } from '../src/index.js';
import { FakeStripe, RESTRICTED_KEY, SECRET_KEY } from './fake-stripe.js';

const WEBHOOK_SECRET = 'whsec_apigateTestSigningSecret0123456789abcdef';
const OTHER_SECRET = 'whsec_someOtherEndpointsSecret9876543210fedcba';
const METER_EVENT = 'apigate_api_requests';

let fake: FakeStripe;
const instances = testInstances(provider);

beforeAll(async () => {
  fake = await FakeStripe.start();
});
afterAll(async () => {
  await instances.closeAll();
  await fake?.close();
});

const settings = (over: Record<string, unknown> = {}) => ({
  apiKey: SECRET_KEY,
  webhookSecret: WEBHOOK_SECRET,
  baseUrl: fake.url,
  ...over,
});

const stripe = (over: Record<string, unknown> = {}): Promise<PaymentProvider> => instances.make(settings(over));

/** Signs a webhook body as Stripe documents it: `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed with the whsec secret>`. */
function signStripe(body: string, secret: string, at = new Date()): Record<string, string> {
  const t = Math.floor(at.getTime() / 1000);
  const v1 = createHmac('sha256', secret).update(`${t}.${body}`, 'utf8').digest('hex');
  return { 'Content-Type': 'application/json', 'Stripe-Signature': `t=${t},v1=${v1}` };
}

const webhook = (body: string, headers: Record<string, string>): WebhookInput => ({
  rawBody: utf8.encode(body),
  headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v])),
});

const seconds = (d: Date) => Math.floor(d.getTime() / 1000);

/** The Stripe object a webhook of this kind carries, built from the fake's objects and the facts the suite asks for. */
function stripeObjectFor(e: WebhookEventSpec): { type: string; object: Record<string, any> } {
  switch (e.type) {
    case 'checkout.completed': {
      const session = fake.sessionJson(e.sessionId!);
      const metadata = { apigate_user_id: e.localRefs?.userId, apigate_plan_id: e.localRefs?.planId };
      return {
        type: 'checkout.session.completed',
        object: { ...session, customer: e.customerId, subscription: e.subscriptionId, metadata },
      };
    }
    case 'subscription.created':
    case 'subscription.updated':
    case 'subscription.deleted': {
      const sub = fake.subscriptionJson(e.subscriptionId!) as Record<string, any>;
      const want = e.subscription!;
      const item = { ...sub.items.data[0], price: { ...sub.items.data[0].price, id: want.priceId } };
      if (want.currentPeriodEnd) item.current_period_end = seconds(want.currentPeriodEnd);
      const ended = want.status === 'canceled' ? seconds(e.occurredAt) : null;
      return {
        type: `customer.${e.type}`,
        object: {
          ...sub,
          customer: want.customerId,
          status: want.status,
          cancel_at_period_end: want.cancelAtPeriodEnd,
          cancel_at: want.cancelAtPeriodEnd ? item.current_period_end : null,
          canceled_at: ended,
          ended_at: ended,
          items: { ...sub.items, data: [item] },
        },
      };
    }
    case 'invoice.paid':
    case 'invoice.payment_failed': {
      const inv = e.invoice!;
      const object = fake.invoiceJson({
        id: inv.id,
        subscriptionId: e.subscriptionId!,
        amount: inv.amountCents,
        currency: inv.currency,
        paid: e.type === 'invoice.paid',
        attempt: inv.attempt ?? 1,
      });
      return { type: e.type, object: { ...object, customer: e.customerId } };
    }
    default:
      return { type: 'customer.updated', object: fake.customerJsonById(e.customerId!) };
  }
}

function eventBody(e: WebhookEventSpec): string {
  const { type, object } = stripeObjectFor(e);
  return JSON.stringify(fake.eventJson({ id: e.id, type, created: seconds(e.occurredAt), object }), null, 2);
}

/** The ProviderError `p` rejects with (fails the test if it resolves), checked to carry neither secret anywhere. */
async function providerErrorOf(p: Promise<unknown>, secrets: string[] = [SECRET_KEY, WEBHOOK_SECRET]): Promise<ProviderError> {
  const outcome = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(outcome).toBeInstanceOf(ProviderError);
  const shown = inspect(outcome, { depth: 10 });
  for (const s of secrets) expect(shown).not.toContain(s);
  return outcome as ProviderError;
}

const requestsTo = (method: string, pathRe: RegExp) => fake.requests.filter((r) => r.method === method && pathRe.test(r.path));
const lastRequestTo = (method: string, pathRe: RegExp) => requestsTo(method, pathRe).at(-1)!;

async function priceFor(p: PaymentProvider, over: Record<string, unknown> = {}) {
  const input = {
    planId: `plan_${Math.random().toString(36).slice(2, 12)}`,
    name: 'Pro',
    amountCents: 1900,
    currency: 'usd',
    interval: 'month' as const,
    ...over,
  };
  return { ...(await p.upsertPrice(input)), input };
}

async function subscribed(p: PaymentProvider, o: { metered?: boolean } = {}) {
  const { customerId } = await p.createCustomer({ userId: 'usr_sub', email: 'sub@example.com' });
  const price = await priceFor(p, o.metered ? { metered: true } : {});
  const { sessionId } = await p.createCheckout({
    customerId,
    priceId: price.priceId,
    userId: 'usr_sub',
    planId: price.input.planId,
    successUrl: 'https://apigate.example.com/ok',
    cancelUrl: 'https://apigate.example.com/cancel',
  });
  return { customerId, price, sessionId, ...fake.completeCheckout(sessionId) };
}

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('provider-stripe', () => {
  it('has a valid manifest', () => {
    assertValidManifest(pkg, provider);
  });

  describePaymentProvider(provider, {
    name: 'conformance (official stripe SDK against a fake Stripe API)',
    config: settings,
    // The key is sk_test_: the other mode is a live event (`livemode: true`).
    signWebhook: (event, { wrongSecret, otherMode, signedAt }) => {
      const rawBody = otherMode ? JSON.stringify({ ...JSON.parse(eventBody(event)), livemode: true }) : eventBody(event);
      return { rawBody, headers: signStripe(rawBody, wrongSecret ? OTHER_SECRET : WEBHOOK_SECRET, signedAt) };
    },
    offlineConfig: async () => ({ baseUrl: `http://127.0.0.1:${await closedPort()}`, maxNetworkRetries: 0 }),
    completeCheckout: async (_p, { sessionId }) => fake.completeCheckout(sessionId),
    usageTotal: async (_p, subscriptionId) => fake.usageFor(fake.customerOf(subscriptionId), METER_EVENT),
  });

  describe('requests Stripe receives', () => {
    it('creates the customer with the user id in metadata, over Bearer auth and the SDK’s pinned API version', async () => {
      const p = await stripe();
      const { customerId } = await p.createCustomer({ userId: 'usr_42', email: 'ada@example.com', name: 'Ada' });
      const req = lastRequestTo('POST', /^\/v1\/customers$/);
      expect(req.params).toEqual({ email: 'ada@example.com', name: 'Ada', metadata: { apigate_user_id: 'usr_42' } });
      expect(req.headers.authorization).toBe(`Bearer ${SECRET_KEY}`);
      expect(req.headers['content-type']).toBe('application/x-www-form-urlencoded');
      expect(req.headers['stripe-version']).toBe(Stripe.API_VERSION);
      expect(customerId).toMatch(/^cus_/);
    });

    it('makes a product per plan and a price on it, with the plan id in metadata', async () => {
      const p = await stripe();
      const planId = 'plan_Abc123';
      const { priceId, productId } = await p.upsertPrice({ planId, name: 'Starter', amountCents: 900, currency: 'EUR', interval: 'year' });
      expect(productId).toBe(productIdFor(planId));
      expect(productId).toBe('apigate_plan_Abc123');
      expect(lastRequestTo('POST', /^\/v1\/products$/).params).toEqual({
        id: productId,
        name: 'Starter',
        metadata: { apigate_plan_id: planId },
      });
      expect(lastRequestTo('POST', /^\/v1\/prices$/).params).toEqual({
        product: productId,
        currency: 'eur',
        unit_amount: '900',
        nickname: 'Starter',
        recurring: { interval: 'year', usage_type: 'licensed' },
        metadata: { apigate_plan_id: planId },
      });
      expect(priceId).toMatch(/^price_/);
      expect(productIdFor('a plan/with spaces')).toMatch(/^apigate_[0-9a-f]{40}$/);
    });

    it('a rename keeps the price and renames the product; a new amount makes a new price and archives the old', async () => {
      const p = await stripe();
      const first = await priceFor(p, { name: 'Business' });
      const renamed = await p.upsertPrice({ ...first.input, name: 'Business+', existingPriceId: first.priceId });
      expect(renamed).toEqual({ priceId: first.priceId, productId: first.productId });
      expect(lastRequestTo('POST', new RegExp(`^/v1/products/${first.productId}$`)).params).toEqual({ name: 'Business+', active: 'true' });

      const repriced = await p.upsertPrice({ ...first.input, name: 'Business+', amountCents: 2900, existingPriceId: first.priceId });
      expect(repriced.priceId).not.toBe(first.priceId);
      expect(repriced.productId).toBe(first.productId);
      expect(lastRequestTo('POST', new RegExp(`^/v1/prices/${first.priceId}$`)).params).toEqual({ active: 'false' });
      const { customerId } = await p.createCustomer({ userId: 'usr_r', email: 'r@example.com' });
      // The archived price is refused as bad input, before Stripe would refuse it.
      await expect(
        p.createCheckout({
          customerId,
          priceId: first.priceId,
          userId: 'usr_r',
          planId: first.input.planId,
          successUrl: 'https://a.example/ok',
          cancelUrl: 'https://a.example/no',
        }),
      ).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringContaining('is archived') });
    });

    it('a sync retried after a lost answer (no existingPriceId) reuses the matching price instead of making another', async () => {
      const p = await stripe();
      const first = await priceFor(p);
      const before = requestsTo('POST', /^\/v1\/prices$/).length;
      const again = await p.upsertPrice(first.input);
      expect(again).toEqual({ priceId: first.priceId, productId: first.productId });
      expect(requestsTo('POST', /^\/v1\/prices$/).length).toBe(before);
    });

    it('metered prices use one billing meter, made once and found again by its event name', async () => {
      const a = await stripe({ meterEventName: 'apigate_meter_once' });
      const m1 = await priceFor(a, { metered: true });
      const meterCreates = requestsTo('POST', /^\/v1\/billing\/meters$/).filter((r) => r.params.event_name === 'apigate_meter_once');
      expect(meterCreates).toHaveLength(1);
      expect(meterCreates[0]!.params).toEqual({
        display_name: 'APIGate API requests',
        event_name: 'apigate_meter_once',
        default_aggregation: { formula: 'sum' },
        customer_mapping: { type: 'by_id', event_payload_key: 'stripe_customer_id' },
        value_settings: { event_payload_key: 'value' },
      });
      const priceReq = lastRequestTo('POST', /^\/v1\/prices$/);
      expect(priceReq.params.recurring).toEqual({ interval: 'month', usage_type: 'metered', meter: expect.stringMatching(/^mtr_/) });

      // Another instance (a restart) finds the meter instead of making a second one.
      const b = await stripe({ meterEventName: 'apigate_meter_once' });
      const m2 = await priceFor(b, { metered: true, planId: m1.input.planId });
      expect(m2.priceId).toBe(m1.priceId);
      expect(requestsTo('POST', /^\/v1\/billing\/meters$/).filter((r) => r.params.event_name === 'apigate_meter_once')).toHaveLength(1);

      // Switching a plan between metered and licensed is a new price.
      const licensed = await b.upsertPrice({ ...m1.input, metered: false, existingPriceId: m1.priceId });
      expect(licensed.priceId).not.toBe(m1.priceId);
    });

    it('checkout: subscription mode, client_reference_id, metadata on the session and the subscription, trial days, quantity only when licensed', async () => {
      const p = await stripe();
      const { customerId } = await p.createCustomer({ userId: 'usr_co', email: 'co@example.com' });
      const licensed = await priceFor(p);
      const { url, sessionId } = await p.createCheckout({
        customerId,
        priceId: licensed.priceId,
        userId: 'usr_co',
        planId: licensed.input.planId,
        successUrl: 'https://apigate.example.com/ok',
        cancelUrl: 'https://apigate.example.com/cancel',
        trialDays: 14,
      });
      expect(url).toBe(`https://checkout.stripe.com/c/pay/${sessionId}`);
      const metadata = { apigate_user_id: 'usr_co', apigate_plan_id: licensed.input.planId };
      expect(lastRequestTo('POST', /^\/v1\/checkout\/sessions$/).params).toEqual({
        mode: 'subscription',
        customer: customerId,
        client_reference_id: 'usr_co',
        line_items: [{ price: licensed.priceId, quantity: '1' }],
        success_url: 'https://apigate.example.com/ok',
        cancel_url: 'https://apigate.example.com/cancel',
        metadata,
        subscription_data: { metadata, trial_period_days: '14' },
      });

      const metered = await priceFor(p, { metered: true });
      await p.createCheckout({
        customerId,
        priceId: metered.priceId,
        userId: 'usr_co',
        planId: metered.input.planId,
        successUrl: 'https://apigate.example.com/ok',
        cancelUrl: 'https://apigate.example.com/cancel',
      });
      const req = lastRequestTo('POST', /^\/v1\/checkout\/sessions$/);
      expect(req.params.line_items).toEqual([{ price: metered.priceId }]);
      expect(req.params.subscription_data).toEqual({ metadata: { apigate_user_id: 'usr_co', apigate_plan_id: metered.input.planId } });
    });

    it('portal: a billing portal session for the customer with the return url', async () => {
      const p = await stripe();
      const { customerId } = await p.createCustomer({ userId: 'usr_po', email: 'po@example.com' });
      const { url } = await p.createPortalSession({ customerId, returnUrl: 'https://apigate.example.com/account' });
      expect(url).toMatch(/^https:\/\/billing\.stripe\.com\/p\/session\//);
      expect(lastRequestTo('POST', /^\/v1\/billing_portal\/sessions$/).params).toEqual({
        customer: customerId,
        return_url: 'https://apigate.example.com/account',
      });
    });

    it('plan change swaps the item’s price with proration', async () => {
      const p = await stripe();
      const s = await subscribed(p);
      const next = await priceFor(p, { amountCents: 4900 });
      const itemId = (fake.subscriptionJson(s.subscriptionId) as any).items.data[0].id;
      const changed = await p.changeSubscription({ subscriptionId: s.subscriptionId, priceId: next.priceId });
      expect(changed.priceId).toBe(next.priceId);
      expect(lastRequestTo('POST', new RegExp(`^/v1/subscriptions/${s.subscriptionId}$`)).params).toEqual({
        items: [{ id: itemId, price: next.priceId }],
        proration_behavior: 'create_prorations',
      });
      // Asking again for the price it already has sends no update.
      const updates = requestsTo('POST', new RegExp(`^/v1/subscriptions/${s.subscriptionId}$`)).length;
      await p.changeSubscription({ subscriptionId: s.subscriptionId, priceId: next.priceId });
      expect(requestsTo('POST', new RegExp(`^/v1/subscriptions/${s.subscriptionId}$`)).length).toBe(updates);
    });

    it('an overage price rides along as a metered item: checkout sends both, the plan is the licensed item, a plan change leaves the metered item', async () => {
      const p = await stripe();
      const { customerId } = await p.createCustomer({ userId: 'usr_over', email: 'over@example.com' });
      const base = await priceFor(p);
      const overage = await priceFor(p, { planId: base.input.planId, name: 'Pro overage', amountCents: 2, metered: true });
      const { sessionId } = await p.createCheckout({
        customerId,
        priceId: base.priceId,
        meteredPriceId: overage.priceId,
        userId: 'usr_over',
        planId: base.input.planId,
        successUrl: 'https://apigate.example.com/ok',
        cancelUrl: 'https://apigate.example.com/cancel',
      });
      expect(lastRequestTo('POST', /^\/v1\/checkout\/sessions$/).params.line_items).toEqual([
        { price: base.priceId, quantity: '1' },
        { price: overage.priceId },
      ]);
      const { subscriptionId } = fake.completeCheckout(sessionId);
      const items = (fake.subscriptionJson(subscriptionId) as any).items.data;
      expect(items.map((i: any) => i.price.id)).toEqual([base.priceId, overage.priceId]);
      expect((await p.getSubscription(subscriptionId)).priceId).toBe(base.priceId);

      const next = await priceFor(p, { amountCents: 4900 });
      const changed = await p.changeSubscription({ subscriptionId, priceId: next.priceId });
      expect(changed.priceId).toBe(next.priceId);
      expect(lastRequestTo('POST', new RegExp(`^/v1/subscriptions/${subscriptionId}$`)).params.items).toEqual([
        { id: items[0].id, price: next.priceId },
      ]);
      expect((fake.subscriptionJson(subscriptionId) as any).items.data.map((i: any) => i.price.id)).toEqual([
        next.priceId,
        overage.priceId,
      ]);

      // A licensed price is not an overage price.
      await expect(
        p.createCheckout({
          customerId,
          priceId: base.priceId,
          meteredPriceId: next.priceId,
          userId: 'u',
          planId: 'p',
          successUrl: 'https://a.example/ok',
          cancelUrl: 'https://a.example/no',
        }),
      ).rejects.toThrow(/meteredPriceId: price "price_\w+" is not metered/);
    });

    it('cancel at period end sets cancel_at_period_end; cancel now deletes; cancelling again returns the state', async () => {
      const p = await stripe();
      const s = await subscribed(p);
      await p.cancelSubscription({ subscriptionId: s.subscriptionId, atPeriodEnd: true });
      expect(lastRequestTo('POST', new RegExp(`^/v1/subscriptions/${s.subscriptionId}$`)).params).toEqual({ cancel_at_period_end: 'true' });
      const now = await p.cancelSubscription({ subscriptionId: s.subscriptionId, atPeriodEnd: false });
      expect(now.status).toBe('canceled');
      expect(requestsTo('DELETE', new RegExp(`^/v1/subscriptions/${s.subscriptionId}$`))).toHaveLength(1);
      await expect(p.cancelSubscription({ subscriptionId: s.subscriptionId, atPeriodEnd: false })).resolves.toMatchObject({
        status: 'canceled',
      });
      expect(requestsTo('DELETE', new RegExp(`^/v1/subscriptions/${s.subscriptionId}$`))).toHaveLength(1);
    });

    it('deleting a customer twice is fine (Stripe answers 404 the second time)', async () => {
      const p = await stripe();
      const { customerId } = await p.createCustomer({ userId: 'usr_del', email: 'del@example.com' });
      await p.deleteCustomer(customerId);
      await expect(p.deleteCustomer(customerId)).resolves.toBeUndefined();
      expect(requestsTo('DELETE', new RegExp(`^/v1/customers/${customerId}$`))).toHaveLength(2);
    });

    it('usage is a meter event with the idempotency key as identifier and as the Idempotency-Key header', async () => {
      const p = await stripe();
      const s = await subscribed(p, { metered: true });
      const at = new Date(Date.now() - 60_000);
      await p.reportUsage({
        customerId: s.customerId,
        subscriptionId: s.subscriptionId,
        quantity: 42,
        timestamp: at,
        idempotencyKey: 'usage-2026-11-01T10:00-key',
      });
      const req = lastRequestTo('POST', /^\/v1\/billing\/meter_events$/);
      expect(req.params).toEqual({
        event_name: METER_EVENT,
        payload: { stripe_customer_id: s.customerId, value: '42' },
        identifier: 'usage-2026-11-01T10:00-key',
        timestamp: String(seconds(at)),
      });
      expect(req.headers['idempotency-key']).toBe('usage-2026-11-01T10:00-key');
      expect(fake.usageFor(s.customerId, METER_EVENT)).toBe(42);

      // A key longer than Stripe's 100-character identifier is sent as its hash, the same each time.
      const long = `usage-${'x'.repeat(120)}`;
      for (let n = 0; n < 2; n++) {
        await p.reportUsage({
          customerId: s.customerId,
          subscriptionId: s.subscriptionId,
          quantity: 8,
          timestamp: at,
          idempotencyKey: long,
        });
      }
      const sent = requestsTo('POST', /^\/v1\/billing\/meter_events$/).slice(-2);
      expect(sent.map((r) => r.params.identifier)).toEqual([expect.stringMatching(/^sha256_[0-9a-f]{64}$/), sent[0]!.params.identifier]);
      expect(fake.usageFor(s.customerId, METER_EVENT)).toBe(50);
    });

    it('the same usage key with another quantity is Stripe’s idempotency error: final', async () => {
      const p = await stripe();
      const s = await subscribed(p, { metered: true });
      const report = (quantity: number) =>
        p.reportUsage({
          customerId: s.customerId,
          subscriptionId: s.subscriptionId,
          quantity,
          timestamp: new Date(),
          idempotencyKey: 'usage-clash',
        });
      await report(3);
      const err = await providerErrorOf(report(4));
      expect(err).toMatchObject({ retryable: false, status: 400 });
      expect(err.message).toContain('idempotency_error');
      expect(fake.usageFor(s.customerId, METER_EVENT)).toBe(3);
    });
  });

  describe('listing invoices', () => {
    it('reads GET /v1/invoices?customer: total, currency, status, created, the subscription line’s period and the hosted page; drafts left out', async () => {
      const p = await stripe();
      const s = await subscribed(p);
      const sub = await p.getSubscription(s.subscriptionId);
      const failedAt = Math.floor(Date.now() / 1000) + 5;
      const open = fake.addInvoice(s.subscriptionId, { status: 'open', created: failedAt });
      fake.addInvoice(s.subscriptionId, { status: 'draft', created: failedAt + 5 });
      const invoices = await p.listInvoices!({ customerId: s.customerId, limit: 5 });
      expect(lastRequestTo('GET', /^\/v1\/invoices$/).params).toEqual({ customer: s.customerId, limit: '5' });
      expect(invoices.map((i) => [i.id, i.status, i.amountCents, i.currency])).toEqual([
        [open, 'open', 1900, 'usd'],
        [expect.stringMatching(/^in_/), 'paid', 1900, 'usd'],
      ]);
      expect(invoices[0]!.createdAt.getTime()).toBe(failedAt * 1000);
      expect(invoices[1]!.periodEnd!.getTime()).toBe(sub.currentPeriodEnd!.getTime());
      expect(invoices[1]!.periodStart!.getTime()).toBeLessThan(invoices[1]!.periodEnd!.getTime());
      expect(invoices[1]!.url).toBe(`https://invoice.stripe.com/i/acct_fake/test_${invoices[1]!.id.slice(3)}`);
    });

    it('a trial’s first invoice is a zero one; void and uncollectible keep their status', async () => {
      const p = await stripe();
      const { customerId } = await p.createCustomer({ userId: 'usr_trial', email: 'trial@example.com' });
      const price = await priceFor(p);
      const { sessionId } = await p.createCheckout({
        customerId,
        priceId: price.priceId,
        userId: 'usr_trial',
        planId: price.input.planId,
        successUrl: 'https://apigate.example.com/ok',
        cancelUrl: 'https://apigate.example.com/cancel',
        trialDays: 7,
      });
      const { subscriptionId } = fake.completeCheckout(sessionId);
      const t = Math.floor(Date.now() / 1000);
      fake.addInvoice(subscriptionId, { status: 'void', created: t + 10 });
      fake.addInvoice(subscriptionId, { status: 'uncollectible', created: t + 20 });
      const invoices = await p.listInvoices!({ customerId });
      expect(lastRequestTo('GET', /^\/v1\/invoices$/).params).toEqual({ customer: customerId, limit: '12' });
      expect(invoices.map((i) => [i.status, i.amountCents])).toEqual([
        ['uncollectible', 1900],
        ['void', 1900],
        ['paid', 0],
      ]);
    });

    it('refuses a bad limit without calling Stripe; an unknown customer is Stripe’s final 404', async () => {
      const p = await stripe();
      const before = requestsTo('GET', /^\/v1\/invoices$/).length;
      await expect(p.listInvoices!({ customerId: 'cus_x', limit: 0 })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
      expect(requestsTo('GET', /^\/v1\/invoices$/).length).toBe(before);
      const err = await providerErrorOf(p.listInvoices!({ customerId: 'cus_nobody' }));
      expect(err).toMatchObject({ retryable: false, operation: 'listInvoices' });
      expect(err.message).toContain('No such customer');
    });
  });

  describe('listing subscriptions', () => {
    it('follows pages (starting_after) to the end', async () => {
      const p = await stripe();
      const s = await subscribed(p);
      const seeded = fake.seedSubscriptions(s.customerId, s.price.priceId, 229);
      const before = requestsTo('GET', /^\/v1\/subscriptions$/).length;
      const ids: string[] = [];
      for await (const sub of p.listSubscriptions({ customerId: s.customerId })) ids.push(sub.subscriptionId);
      expect(ids).toHaveLength(230);
      expect(new Set(ids)).toEqual(new Set([s.subscriptionId, ...seeded]));
      const pages = requestsTo('GET', /^\/v1\/subscriptions$/).slice(before);
      expect(pages.map((r) => r.params.starting_after === undefined)).toEqual([true, false, false]);
      expect(pages[0]!.params).toEqual({ status: 'all', limit: '100', customer: s.customerId });
    });

    it('includes canceled subscriptions; updatedSince leaves out only those that ended before it', async () => {
      const p = await stripe();
      const live = await subscribed(p);
      const ended = await subscribed(p);
      await p.cancelSubscription({ subscriptionId: ended.subscriptionId, atPeriodEnd: false });
      const all = async (i: { customerId?: string; updatedSince?: Date }) => {
        const out: string[] = [];
        for await (const sub of p.listSubscriptions(i)) out.push(sub.subscriptionId);
        return out;
      };
      expect(await all({ customerId: ended.customerId })).toEqual([ended.subscriptionId]);
      const recent = await all({ updatedSince: new Date(Date.now() - 60_000) });
      expect(recent).toEqual(expect.arrayContaining([live.subscriptionId, ended.subscriptionId]));
      const later = await all({ updatedSince: new Date(Date.now() + 60_000) });
      expect(later).toContain(live.subscriptionId);
      expect(later).not.toContain(ended.subscriptionId);
    });
  });

  describe('webhooks', () => {
    it('accepts a header made by the SDK’s generateTestHeaderString', async () => {
      const p = await stripe();
      const body = JSON.stringify(
        fake.eventJson({
          id: 'evt_sdk_header',
          type: 'customer.created',
          created: seconds(new Date()),
          object: { id: 'cus_x', object: 'customer' },
        }),
      );
      const header = Stripe.webhooks.generateTestHeaderString({ payload: body, secret: WEBHOOK_SECRET });
      await expect(p.parseWebhook(webhook(body, { 'Stripe-Signature': header }))).resolves.toMatchObject({
        id: 'evt_sdk_header',
        type: 'ignored',
      });
    });

    it('accepts any of several v1 signatures (secret rotation) and ignores other schemes', async () => {
      const p = await stripe();
      const body = JSON.stringify(
        fake.eventJson({
          id: 'evt_rotation',
          type: 'invoice.created',
          created: seconds(new Date()),
          object: { id: 'in_1', object: 'invoice' },
        }),
      );
      const good = signStripe(body, WEBHOOK_SECRET)['Stripe-Signature']!;
      const old = signStripe(body, OTHER_SECRET)['Stripe-Signature']!;
      const header = `${old},${good.split(',')[1]},v0=${'0'.repeat(64)}`;
      await expect(p.parseWebhook(webhook(body, { 'Stripe-Signature': header }))).resolves.toMatchObject({ id: 'evt_rotation' });
    });

    it('names what failed in one line, without the secret', async () => {
      const p = await stripe();
      const body = '{"id":"evt_1","object":"event","type":"invoice.paid","created":1,"data":{"object":{}}}';
      const err = await p.parseWebhook(webhook(body, signStripe(body, OTHER_SECRET))).catch((e: Error) => e);
      expect(err).toMatchObject({ code: 'WEBHOOK_SIGNATURE_INVALID' });
      expect((err as Error).message).toMatch(/^payment\/stripe webhook: No signatures found matching the expected signature for payload/);
      expect((err as Error).message).not.toContain('\n');
      expect(inspect(err)).not.toContain(WEBHOOK_SECRET);
    });

    it('a correctly signed body that is not a Stripe event is bad input', async () => {
      const p = await stripe();
      for (const body of [
        'not json',
        '{"object":"list"}',
        JSON.stringify({
          id: 'evt_thin',
          object: 'v2.core.event',
          type: 'v1.billing.meter.error_report_triggered',
          created: '2026-01-01T00:00:00Z',
        }),
      ]) {
        await expect(p.parseWebhook(webhook(body, signStripe(body, WEBHOOK_SECRET)))).rejects.toMatchObject({ code: 'INVALID_INPUT' });
      }
    });

    it('after a plan change, subscription events carry the new price’s plan; user ids come from subscription metadata', async () => {
      const p = await stripe();
      const s = await subscribed(p);
      const next = await priceFor(p, { amountCents: 4900 });
      await p.changeSubscription({ subscriptionId: s.subscriptionId, priceId: next.priceId });
      const body = JSON.stringify(
        fake.eventJson({
          id: 'evt_changed',
          type: 'customer.subscription.updated',
          created: seconds(new Date()),
          object: fake.subscriptionJson(s.subscriptionId),
        }),
      );
      const event = await p.parseWebhook(webhook(body, signStripe(body, WEBHOOK_SECRET)));
      expect(event).toMatchObject({
        type: 'subscription.updated',
        priceId: next.priceId,
        localRefs: { userId: 'usr_sub', planId: next.input.planId },
        subscription: { subscriptionId: s.subscriptionId, priceId: next.priceId, status: 'active' },
      });
    });
  });

  describe('normalising Stripe objects', () => {
    const event = (type: string, object: Record<string, unknown>) => ({ id: 'evt_n', type, created: 1_700_000_000, data: { object } });
    const sub = (over: Record<string, unknown> = {}) => ({
      id: 'sub_1',
      customer: 'cus_1',
      status: 'active',
      cancel_at_period_end: false,
      cancel_at: null,
      items: { data: [{ id: 'si_1', current_period_end: 1_702_000_000, price: { id: 'price_1', metadata: {} } }] },
      metadata: { apigate_user_id: 'usr_1', apigate_plan_id: 'plan_old' },
      ...over,
    });

    it('maps every Stripe status; unknown ones grant nothing', () => {
      expect(
        ['trialing', 'active', 'past_due', 'paused', 'canceled', 'incomplete', 'unpaid', 'incomplete_expired', 'some_future_status'].map(
          mapStatus,
        ),
      ).toEqual(['trialing', 'active', 'past_due', 'paused', 'canceled', 'incomplete', 'unpaid', 'incomplete_expired', 'incomplete']);
    });

    it('a scheduled cancel_at counts as cancelling at period end; the subscription’s plan is the fallback', () => {
      const e = normaliseEvent(event('customer.subscription.updated', sub({ cancel_at: 1_702_000_000 })));
      expect(e.subscription).toEqual({
        subscriptionId: 'sub_1',
        customerId: 'cus_1',
        priceId: 'price_1',
        status: 'active',
        currentPeriodEnd: new Date(1_702_000_000_000),
        cancelAtPeriodEnd: true,
      });
      expect(e.localRefs).toEqual({ userId: 'usr_1', planId: 'plan_old' });
      expect(e.occurredAt).toEqual(new Date(1_700_000_000_000));
    });

    it('reads pre-basil shapes too (period on the subscription, invoice.subscription, line price)', () => {
      const legacySub = normaliseEvent(
        event('customer.subscription.created', {
          ...sub(),
          current_period_end: 1_703_000_000,
          items: { data: [{ id: 'si_1', price: { id: 'price_1' } }] },
        }),
      );
      expect(legacySub.subscription?.currentPeriodEnd).toEqual(new Date(1_703_000_000_000));
      const legacyInvoice = normaliseEvent(
        event('invoice.payment_failed', {
          id: 'in_1',
          customer: 'cus_1',
          subscription: 'sub_1',
          currency: 'eur',
          amount_due: 500,
          amount_paid: 0,
          attempt_count: 3,
          lines: { data: [{ price: { id: 'price_9' } }] },
        }),
      );
      expect(legacyInvoice).toMatchObject({
        type: 'invoice.payment_failed',
        subscriptionId: 'sub_1',
        priceId: 'price_9',
        invoice: { id: 'in_1', amountCents: 500, currency: 'eur', attempt: 3 },
      });
    });

    it('checkout sessions that are not subscriptions, and events without an object, are ignored', () => {
      expect(
        normaliseEvent(event('checkout.session.completed', { id: 'cs_1', mode: 'payment', customer: 'cus_1', subscription: null })).type,
      ).toBe('ignored');
      expect(normaliseEvent({ id: 'evt_x', type: 'invoice.paid', created: 1 }).type).toBe('ignored');
    });

    it('takes the user from client_reference_id when the session has no metadata', () => {
      const e = normaliseEvent(
        event('checkout.session.completed', {
          id: 'cs_1',
          mode: 'subscription',
          customer: { id: 'cus_1' },
          subscription: 'sub_1',
          client_reference_id: 'usr_9',
        }),
      );
      expect(e).toMatchObject({ type: 'checkout.completed', customerId: 'cus_1', subscriptionId: 'sub_1', localRefs: { userId: 'usr_9' } });
    });
  });

  describe('errors', () => {
    const forNext = (status: number, error: Record<string, unknown>, headers: Record<string, string> = {}) =>
      fake.failNext({ status, body: { error }, headers, match: (r) => r.path === '/v1/customers' && r.method === 'POST' });
    const create = (p: PaymentProvider) => p.createCustomer({ userId: 'usr_e', email: 'e@example.com' });

    it('404 resource_missing: final, with Stripe’s status, type, code and message', async () => {
      const err = await providerErrorOf((await stripe()).getSubscription('sub_doesnotexist'));
      expect(err).toMatchObject({ retryable: false, status: 404, code: 'resource_missing', operation: 'getSubscription' });
      expect(err.message).toMatch(
        /^payment\/stripe getSubscription: Stripe answered 404 invalid_request_error\/resource_missing: No such subscription: 'sub_doesnotexist' \[req_/,
      );
    });

    it('402 card_error: final', async () => {
      const p = await stripe({ maxNetworkRetries: 0 });
      forNext(402, { type: 'card_error', code: 'card_declined', decline_code: 'generic_decline', message: 'Your card was declined.' });
      const err = await providerErrorOf(create(p));
      expect(err).toMatchObject({ retryable: false, status: 402, code: 'card_declined' });
      expect(err.cause).toBeInstanceOf(Stripe.errors.StripeCardError);
    });

    it('401 from a wrong key: final; the key appears in no error, cause or health output', async () => {
      const badKey = 'sk_test_51RevokedKeyThatStripeNoLongerKnows0123456789';
      const p = await stripe({ apiKey: badKey });
      const err = await providerErrorOf(create(p), [badKey, WEBHOOK_SECRET]);
      expect(err).toMatchObject({ retryable: false, status: 401 });
      expect(err.cause).toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
      expect(err.message).toContain('Invalid API Key provided');
      const health = await p.check(AbortSignal.timeout(15_000));
      expect(health.status).toBe('error');
      expect(health.error).toContain('401');
      expect(inspect(health)).not.toContain(badKey);
    });

    it('a Stripe message quoting the key in full is masked too', async () => {
      const p = await stripe({ maxNetworkRetries: 0 });
      forNext(400, { type: 'invalid_request_error', message: `Something about ${SECRET_KEY} went wrong` });
      const err = await providerErrorOf(create(p), []);
      expect(err.message).not.toContain(SECRET_KEY);
      expect(err.message).toContain('sk_t…mnop');
    });

    it('429 rate limit, 409 conflict and 5xx: retryable', async () => {
      const p = await stripe({ maxNetworkRetries: 0 });
      forNext(429, { type: 'invalid_request_error', code: 'rate_limit', message: 'Too many requests hit the API too quickly.' });
      const limited = await providerErrorOf(create(p));
      expect(limited).toMatchObject({ retryable: true, status: 429, code: 'rate_limit' });
      expect(limited.cause).toBeInstanceOf(Stripe.errors.StripeRateLimitError);
      forNext(409, {
        type: 'invalid_request_error',
        code: 'lock_timeout',
        message: 'This object cannot be accessed right now because another API request or Stripe process is currently accessing it.',
      });
      expect(await providerErrorOf(create(p))).toMatchObject({ retryable: true, status: 409 });
      forNext(500, { type: 'api_error', message: 'Sorry, something went wrong on our end.' });
      const server = await providerErrorOf(create(p));
      expect(server).toMatchObject({ retryable: true, status: 500 });
      expect(isRetryable(server)).toBe(true);
    });

    it('Stripe-Should-Retry overrides the status', async () => {
      const p = await stripe({ maxNetworkRetries: 0 });
      forNext(
        500,
        { type: 'api_error', message: 'The request was applied; repeating it changes nothing.' },
        { 'stripe-should-retry': 'false' },
      );
      expect(await providerErrorOf(create(p))).toMatchObject({ retryable: false, status: 500 });
      forNext(400, { type: 'invalid_request_error', message: 'Try again.' }, { 'stripe-should-retry': 'true' });
      expect(await providerErrorOf(create(p))).toMatchObject({ retryable: true, status: 400 });
    });

    it('the SDK retries a 500 with the same Idempotency-Key, and the call succeeds', async () => {
      const p = await stripe({ maxNetworkRetries: 1 });
      const before = requestsTo('POST', /^\/v1\/customers$/).length;
      forNext(500, { type: 'api_error', message: 'Sorry, something went wrong on our end.' });
      await expect(create(p)).resolves.toMatchObject({ customerId: expect.stringMatching(/^cus_/) });
      const attempts = requestsTo('POST', /^\/v1\/customers$/).slice(before);
      expect(attempts).toHaveLength(2);
      expect(attempts[0]!.headers['idempotency-key']).toBeTruthy();
      expect(attempts[1]!.headers['idempotency-key']).toBe(attempts[0]!.headers['idempotency-key']);
    });

    it('no answer (refused connection, time-out): retryable, naming the host', async () => {
      const port = await closedPort();
      const refused = await stripe({ baseUrl: `http://127.0.0.1:${port}`, maxNetworkRetries: 0 });
      const err = await providerErrorOf(create(refused));
      expect(err.retryable).toBe(true);
      expect(err.cause).toBeInstanceOf(Stripe.errors.StripeConnectionError);
      expect(err.message).toContain(`could not reach Stripe at 127.0.0.1:${port}`);

      const slow = await stripe({ timeoutMs: 300, maxNetworkRetries: 0 });
      fake.hold = true;
      try {
        const timedOut = await providerErrorOf(create(slow));
        expect(timedOut.retryable).toBe(true);
        expect(timedOut.message).toContain('timeout');
      } finally {
        fake.hold = false;
      }
    });

    it('bad input is refused before any request, as InvalidInputError', async () => {
      const p = await stripe();
      const before = fake.requests.length;
      const bad = [
        () => p.upsertPrice({ planId: 'p', name: 'P', amountCents: 1.5, currency: 'usd', interval: 'month' }),
        () => p.upsertPrice({ planId: 'p', name: 'P', amountCents: 100, currency: 'dollars', interval: 'month' }),
        () => p.upsertPrice({ planId: '', name: 'P', amountCents: 100, currency: 'usd', interval: 'month' }),
        () =>
          p.reportUsage({
            customerId: 'cus_1',
            subscriptionId: 'sub_1',
            quantity: 1,
            timestamp: new Date(Number.NaN),
            idempotencyKey: 'k',
          }),
        () => p.reportUsage({ customerId: 'cus_1', subscriptionId: 'sub_1', quantity: 1, timestamp: new Date(), idempotencyKey: '' }),
        () =>
          p.createCheckout({
            customerId: 'cus_1',
            priceId: 'price_1',
            userId: 'u',
            planId: 'p',
            successUrl: 'https://a.example',
            cancelUrl: 'https://a.example',
            trialDays: -1,
          }),
        () => p.createPortalSession({ customerId: 'cus_1', returnUrl: 'not a url' }),
      ];
      for (const call of bad) await expect(call()).rejects.toMatchObject({ code: 'INVALID_INPUT' });
      expect(fake.requests.length).toBe(before);
    });

    it('after close(), calls fail without retry', async () => {
      const p = await stripe();
      await p.close();
      const err = await providerErrorOf(create(p));
      expect(err).toMatchObject({ retryable: false });
      expect(err.message).toContain('closed');
      await expect(p.listSubscriptions({})[Symbol.asyncIterator]().next()).rejects.toThrow(/closed/);
      expect(await p.check(AbortSignal.timeout(15_000))).toMatchObject({ status: 'error', error: 'the provider is closed' });
    });
  });

  describe('check()', () => {
    it('connected, in test mode, through GET /v1/balance', async () => {
      const p = await stripe();
      const health = await p.check(AbortSignal.timeout(15_000));
      expect(health).toMatchObject({ status: 'connected', detail: `${new URL(fake.url).host} (test mode)` });
      expect(lastRequestTo('GET', /^\/v1\/balance$/).headers.authorization).toBe(`Bearer ${SECRET_KEY}`);
    });

    it('degraded for a restricted key that may not read the balance', async () => {
      const p = await stripe({ apiKey: RESTRICTED_KEY });
      const health = await p.check(AbortSignal.timeout(15_000));
      expect(health.status).toBe('degraded');
      expect(health.detail).toContain('restricted key');
      expect(inspect(health)).not.toContain(RESTRICTED_KEY);
    });

    it('ends when the signal aborts, while Stripe has not answered', async () => {
      const p = await stripe({ timeoutMs: 60_000 });
      const controller = new AbortController();
      fake.hold = true;
      fake.onHeld = () => controller.abort(new Error('health check timed out after 3000 ms'));
      try {
        const health = await p.check(controller.signal);
        expect(health).toMatchObject({ status: 'error', error: expect.stringContaining('timed out') });
      } finally {
        fake.hold = false;
        fake.onHeld = undefined;
        await p.close();
      }
    });
  });

  describe('configuration', () => {
    const env = { PAYMENT_PROVIDER: 'stripe', STRIPE_API_KEY: SECRET_KEY, STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET };

    it('reads both secrets from env or settings, and marks them secret', () => {
      const fromEnv = resolveProviderConfig(provider, env, settingsFromRecord({}));
      expect(fromEnv.config).toMatchObject({
        apiKey: SECRET_KEY,
        webhookSecret: WEBHOOK_SECRET,
        baseUrl: 'https://api.stripe.com',
        maxNetworkRetries: 2,
      });
      expect(fromEnv.secretValues).toEqual([SECRET_KEY, WEBHOOK_SECRET]);
      const fromSettings = resolveProviderConfig(
        provider,
        {},
        settingsFromRecord({ 'payment.stripe.api_key': SECRET_KEY, 'payment.stripe.webhook_secret': WEBHOOK_SECRET }),
      );
      expect(fromSettings.sources).toMatchObject({
        apiKey: { kind: 'setting', key: 'payment.stripe.api_key' },
        webhookSecret: { kind: 'setting', key: 'payment.stripe.webhook_secret' },
      });
      const keys = knownSettingKeys([provider]);
      expect(keys.get('payment.stripe.api_key')).toEqual({ secret: true, envVar: 'STRIPE_API_KEY' });
      expect(keys.get('payment.stripe.webhook_secret')).toEqual({ secret: true, envVar: 'STRIPE_WEBHOOK_SECRET' });
    });

    it('a missing webhook secret stops start-up with one line naming STRIPE_WEBHOOK_SECRET', async () => {
      const { STRIPE_WEBHOOK_SECRET: _omit, ...withoutSecret } = env;
      const catalog = await discoverPlugins({ builtins: [provider] });
      const err = await createKernel({
        catalog,
        env: withoutSecret,
        only: ['payment'],
        dataDir: mkdtempSync(path.join(tmpdir(), 'apigate-stripe-')),
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigErrors);
      const message = (err as ConfigErrors).message;
      expect(message.split('\n')).toHaveLength(1);
      expect(message).toMatch(
        /^STRIPE_WEBHOOK_SECRET \(setting payment\.stripe\.webhook_secret\): is required; expected the signing secret \(whsec_…\)/,
      );
      expect(message).not.toContain(SECRET_KEY);
    });

    it('refuses a publishable key or a malformed secret without echoing them', () => {
      let errors: Error[] = [];
      try {
        resolveProviderConfig(
          provider,
          { STRIPE_API_KEY: 'pk_test_publishable123', STRIPE_WEBHOOK_SECRET: 'not-a-whsec' },
          settingsFromRecord({}),
        );
      } catch (e) {
        errors = e as Error[];
      }
      expect(errors.map((e) => e.message)).toEqual([
        expect.stringMatching(
          /^STRIPE_API_KEY \(setting payment\.stripe\.api_key\): not a Stripe secret key; expected a secret key \(sk_live_…/,
        ),
        expect.stringMatching(
          /^STRIPE_WEBHOOK_SECRET \(setting payment\.stripe\.webhook_secret\): not a webhook signing secret; expected the signing secret/,
        ),
      ]);
      expect(inspect(errors)).not.toContain('pk_test_publishable123');
      expect(inspect(errors)).not.toContain('not-a-whsec');
    });
  });
});
