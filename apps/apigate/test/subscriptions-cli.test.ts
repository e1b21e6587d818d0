import { CustomerBilling, openStore, PaymentProcessor } from '@apigate/gateway';
import { type PaymentProvider, silentLogger } from '@apigate/kernel';
import stripe from '@apigate/provider-stripe';
import { FakeStripe, SECRET_KEY } from '@apigate/provider-stripe/testing';
import { createForTest } from '@apigate/provider-testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, cli, tempDir } from './helpers.js';

const WEBHOOK_SECRET = 'whsec_apigateSubscriptionsCliTest0123';
let fake: FakeStripe;
beforeAll(async () => {
  fake = await FakeStripe.start();
});
afterAll(async () => {
  await fake?.close();
});

describe('apigate subscriptions (against the Stripe stand-in)', { timeout: 120_000 }, () => {
  it('sync repairs what the store missed, then list, show, cancel at period end, cancel --now and report-usage', async () => {
    const dataDir = tempDir('subscriptions');
    const env = cleanEnv({
      APIGATE_DATA_DIR: dataDir,
      PAYMENT_PROVIDER: 'stripe',
      STRIPE_API_KEY: SECRET_KEY,
      STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
      STRIPE_BASE_URL: fake.url,
      QUEUE_PROVIDER: 'memory',
      CACHE_PROVIDER: 'memory',
    });
    const store = await openStore({ dataDir });
    const { provider } = await createForTest(stripe, { apiKey: SECRET_KEY, webhookSecret: WEBHOOK_SECRET, baseUrl: fake.url });
    try {
      const d = store.domain;
      const free = await d.plans.create({ name: 'Free', isDefault: true });
      const pro = await d.plans.create({ name: 'Pro', priceCents: 2900 });
      const user = await d.users.create({ email: 'ada@example.com' });
      // A checkout made by this gateway, paid at Stripe, whose webhooks never arrived.
      const billing = new CustomerBilling({
        store,
        logger: silentLogger(),
        providerName: 'stripe',
        payment: provider as PaymentProvider,
        features: stripe.features,
        applier: new PaymentProcessor({ store, logger: silentLogger() }),
      });
      const { sessionId } = await billing.checkout(user, { plan: 'Pro', returnBase: 'https://api.example.com' });
      const { subscriptionId } = fake.completeCheckout(sessionId);
      expect((await cli(['subscriptions', 'list', '--json'], env)).stdout).toContain('"data": []');

      const sync = await cli(['subscriptions', 'sync', '--user', 'ada@example.com', '--json'], env);
      expect(sync.code, sync.stderr).toBe(0);
      expect(JSON.parse(sync.stdout)).toMatchObject({
        provider: 'stripe',
        errors: [],
        changed: [{ external_subscription_id: subscriptionId, before: null, after: { status: 'active', plan_id: pro.id } }],
      });
      expect((await d.users.get(user.id)).planId).toBe(pro.id);
      const text = await cli(['subscriptions', 'sync'], env);
      expect(text.stdout).toContain('stripe: checked 1 subscription(s), repaired 0');

      const list = await cli(['subscriptions', 'list', '--user', user.id, '--status', 'active', '--json'], env);
      const [sub] = JSON.parse(list.stdout).data;
      expect(sub).toMatchObject({
        user_id: user.id,
        plan_id: pro.id,
        provider: 'stripe',
        status: 'active',
        external_subscription_id: subscriptionId,
      });
      expect((await cli(['subscriptions', 'list'], env)).stdout).toMatch(/ID\s+USER\s+PLAN\s+PROVIDER\s+STATUS/);
      const bad = await cli(['subscriptions', 'list', '--status', 'bogus'], env);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/^apigate: --status: expected one of trialing, active/);

      const show = await cli(['subscriptions', 'show', sub.id, '--json'], env);
      expect(JSON.parse(show.stdout)).toMatchObject({ id: sub.id, usage_reports: [] });
      expect((await cli(['subscriptions', 'show', 'sub_nope'], env)).code).toBe(3);

      const atEnd = await cli(['subscriptions', 'cancel', sub.id, '--json'], env);
      expect(atEnd.code, atEnd.stderr).toBe(0);
      expect(JSON.parse(atEnd.stdout)).toMatchObject({ id: sub.id, status: 'active', cancel_at_period_end: true });
      expect((await d.users.get(user.id)).planId).toBe(pro.id);

      const now = await cli(['subscriptions', 'cancel', sub.id, '--now'], env);
      expect(now.code, now.stderr).toBe(0);
      expect(now.stdout).toContain(`canceled ${sub.id} now (status canceled)`);
      expect((await d.users.get(user.id)).planId).toBe(free.id);

      const usage = await cli(['subscriptions', 'report-usage', '--json'], env);
      expect(JSON.parse(usage.stdout)).toEqual({ provider: 'stripe', supported: true, reported: [], failed: [] });
    } finally {
      await provider.close();
      await store.close();
    }
  });

  it('says plainly when no payment provider is selected', async () => {
    const env = cleanEnv({
      APIGATE_DATA_DIR: tempDir('subscriptions-none'),
      PAYMENT_PROVIDER: 'none',
      QUEUE_PROVIDER: 'memory',
      CACHE_PROVIDER: 'memory',
    });
    const r = await cli(['subscriptions', 'sync'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^apigate: no payment provider is selected/);
    expect((await cli(['subscriptions', '--help'], env)).stdout).toMatch(/list.*\n.*show.*\n.*cancel.*\n.*sync/s);
  });
});
