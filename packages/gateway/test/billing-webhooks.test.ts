import { silentLogger } from '@apigate/kernel';
import dummyPayment, { type DummyPayment, type SignedWebhook } from '@apigate/provider-dummy-payment';
import { createForTest } from '@apigate/provider-testkit';
import { Hono } from 'hono';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { PaymentEventLog, createPaymentWebhookApp, paymentWebhookPath, startPaymentWorker, syncPlanPrices } from '../src/billing/index.js';
import { startServer } from '../src/http/server.js';
import { domainStore } from './helpers/domain.js';
import { call } from './helpers/http.js';
import { memory } from './helpers/queues.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A real server with the webhook route of the dummy provider, the memory queue and the payment worker. */
async function setup() {
  const { store, d } = await domainStore();
  const { provider } = await createForTest(dummyPayment);
  const dummy = provider as DummyPayment;
  const q = await memory();
  const emitted: { type: string; data: Record<string, unknown>; id?: string }[] = [];
  // Records what the dispatcher would send (its own delivery is tested in gate-webhooks).
  const webhooks = {
    emit: async (type: string, data: Record<string, unknown>, o: { id?: string } = {}) => {
      emitted.push({ type, data, ...o });
      return undefined as never;
    },
  };
  const worker = startPaymentWorker(q.queue, { store, logger: silentLogger(), webhooks });
  const path = paymentWebhookPath('dummy', dummyPayment.features);
  const app = new Hono();
  app.route(path, createPaymentWebhookApp({ providerName: 'dummy', payment: dummy, queue: q.queue, store, logger: silentLogger() }));
  const server = await startServer({ app, port: 0, host: '127.0.0.1' });
  cleanups.push(async () => {
    await server.close();
    await worker.close();
    await q.close();
  });

  const free = await d.plans.create({ name: 'Free', isDefault: true });
  const pro = await d.plans.create({ name: 'Pro', priceCents: 2900 });
  const team = await d.plans.create({ name: 'Team', priceCents: 9900 });
  await syncPlanPrices({ store, providerName: 'dummy', payment: dummy });
  const user = await d.users.create({ email: 'ada@example.com', planId: free.id });
  const { customerId } = await dummy.createCustomer({ userId: user.id, email: user.email });
  await store.mappings.put({ provider: 'dummy', entityType: 'user', localId: user.id, externalId: customerId });
  const priceOf = async (planId: string) => (await store.mappings.findExternal('dummy', 'plan', planId))!.externalId;

  const post = (w: SignedWebhook) => call(`${server.url}${path}`, { method: 'POST', headers: w.headers, body: Buffer.from(w.rawBody) });
  const log = new PaymentEventLog(store.db);
  const settled = (eventId: string) =>
    vi.waitFor(
      () => {
        const row = log.find('dummy', eventId);
        expect(row?.status).not.toBe('queued');
        return row!;
      },
      { timeout: 10_000, interval: 20 },
    );

  async function checkout(planId: string) {
    const { sessionId } = await dummy.createCheckout({
      customerId,
      priceId: await priceOf(planId),
      userId: user.id,
      planId,
      successUrl: 'https://example.com/ok',
      cancelUrl: 'https://example.com/no',
    });
    return dummy.completeCheckout(sessionId);
  }
  return { store, d, dummy, path, post, settled, checkout, user, free, pro, team, priceOf, emitted };
}

describe('payment webhooks through a listening server (dummy provider)', () => {
  it('mounts at the provider webhook path', () => {
    expect(paymentWebhookPath('dummy', dummyPayment.features)).toBe('/webhooks/dummy');
    expect(paymentWebhookPath('stripe', {})).toBe('/webhooks/stripe');
  });

  it('answers 200 to a signed checkout and applies it: subscription stored, user on the plan, webhook emitted', async () => {
    const t = await setup();
    const change = await t.checkout(t.pro.id);
    const res = await t.post(change.webhook);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body.toString())).toEqual({ received: true, duplicate: false });
    expect((await t.settled(change.event.id)).status).toBe('applied');

    const sub = await t.d.subscriptions.findByExternal('dummy', change.subscription.subscriptionId);
    expect(sub).toMatchObject({ userId: t.user.id, planId: t.pro.id, status: 'active', provider: 'dummy' });
    expect((await t.d.users.get(t.user.id)).planId).toBe(t.pro.id);
    expect(t.emitted).toEqual([expect.objectContaining({ type: 'subscription.created', id: `dummy:${change.event.id}` })]);
    expect(t.emitted[0]!.data).toMatchObject({ user_id: t.user.id, plan_id: t.pro.id, status: 'active' });
  });

  it('refuses a bad signature with 400 and no detail, and records nothing', async () => {
    const t = await setup();
    const change = await t.checkout(t.pro.id);
    const forged = t.dummy.signEvent(change.event, { secret: 'whsec_someone_else_entirely_0000' });
    const res = await t.post(forged);
    expect(res.status).toBe(400);
    const body = JSON.parse(res.body.toString());
    expect(body).toEqual({ error: { code: 'WEBHOOK_SIGNATURE_INVALID', message: 'webhook signature did not verify' } });
    expect(new PaymentEventLog(t.store.db).find('dummy', change.event.id)).toBeUndefined();
    expect((await t.d.users.get(t.user.id)).planId).toBe(t.free.id);
  });

  it('acknowledges a duplicate with 200 duplicate:true and applies the event once', async () => {
    const t = await setup();
    const change = await t.checkout(t.pro.id);
    expect((await t.post(change.webhook)).status).toBe(200);
    await t.settled(change.event.id);
    const again = await t.post(change.webhook);
    expect(again.status).toBe(200);
    expect(JSON.parse(again.body.toString())).toEqual({ received: true, duplicate: true });
    // A later event goes through the same queue: once it is applied, the duplicate would have been too.
    const fail = t.dummy.failPayment(change.subscription.subscriptionId);
    await t.post(fail.webhook);
    await t.settled(fail.event.id);
    expect(t.emitted.map((e) => e.type)).toEqual(['subscription.created', 'payment.failed']);
    expect((await t.d.subscriptions.findByExternal('dummy', change.subscription.subscriptionId))?.status).toBe('past_due');
  });

  it('keeps the newer state when an older updated event arrives late', async () => {
    const t = await setup();
    const change = await t.checkout(t.pro.id);
    await t.post(change.webhook);
    await t.settled(change.event.id);
    const subId = change.subscription.subscriptionId;
    const base = change.event.occurredAt.getTime();
    const older = { ...change.event, id: 'evt_older', type: 'subscription.updated', occurredAt: new Date(base + 1000), priceId: await t.priceOf(t.pro.id) };
    const newer = {
      ...change.event,
      id: 'evt_newer',
      type: 'subscription.updated',
      occurredAt: new Date(base + 2000),
      priceId: await t.priceOf(t.team.id),
      subscription: { ...change.subscription, priceId: await t.priceOf(t.team.id) },
      localRefs: {},
    };
    expect((await t.post(t.dummy.signEvent(newer))).status).toBe(200);
    expect((await t.settled('evt_newer')).status).toBe('applied');
    expect((await t.post(t.dummy.signEvent(older))).status).toBe(200);
    expect((await t.settled('evt_older')).status).toBe('skipped');

    const sub = await t.d.subscriptions.findByExternal('dummy', subId);
    expect(sub).toMatchObject({ planId: t.team.id, lastEventAt: new Date(base + 2000) });
    expect((await t.d.users.get(t.user.id)).planId).toBe(t.team.id);
  });

  it('moves the user to the default plan when the subscription is deleted', async () => {
    const t = await setup();
    const change = await t.checkout(t.pro.id);
    await t.post(change.webhook);
    await t.settled(change.event.id);
    expect((await t.d.users.get(t.user.id)).planId).toBe(t.pro.id);

    await t.dummy.cancelSubscription({ subscriptionId: change.subscription.subscriptionId, atPeriodEnd: true });
    const end = t.dummy.renewSubscription(change.subscription.subscriptionId);
    expect(end.event.type).toBe('subscription.deleted');
    expect((await t.post(end.webhook)).status).toBe(200);
    expect((await t.settled(end.event.id)).status).toBe('applied');

    expect((await t.d.users.get(t.user.id)).planId).toBe(t.free.id);
    expect((await t.d.subscriptions.findByExternal('dummy', change.subscription.subscriptionId))?.status).toBe('canceled');
    expect(t.emitted.at(-1)?.type).toBe('subscription.deleted');
  });

  it('plans sync keeps an unchanged price and maps a changed plan to a new one', async () => {
    const t = await setup();
    const before = await t.priceOf(t.pro.id);
    const again = await syncPlanPrices({ store: t.store, providerName: 'dummy', payment: t.dummy });
    expect(again.find((r) => r.planId === t.pro.id)).toMatchObject({ priceId: before, changed: false });
    expect(again.map((r) => r.name).sort()).toEqual(['Pro', 'Team']);
    await t.d.plans.update(t.pro.id, { priceCents: 3900 });
    const changed = await syncPlanPrices({ store: t.store, providerName: 'dummy', payment: t.dummy });
    const row = changed.find((r) => r.planId === t.pro.id)!;
    expect(row.changed).toBe(true);
    expect(await t.priceOf(t.pro.id)).toBe(row.priceId);
    expect(row.priceId).not.toBe(before);
  });
});
