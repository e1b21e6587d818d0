import { type PaymentEvent, type SubscriptionState, type SubscriptionStatus, silentLogger } from '@apigate/kernel';
import { describe, expect, it } from 'vitest';
import { PaymentProcessor } from '../src/billing/index.js';
import { domainStore } from './helpers/domain.js';

const DAY_MS = 86_400_000;

/** A store with Free (default), Pro and Team plans mapped to provider prices, and a user mapped to a customer. */
async function setup(o: { graceDays?: number } = {}) {
  const { store, d } = await domainStore();
  const clock = { now: new Date('2026-06-01T12:00:00Z') };
  const processor = new PaymentProcessor({ store, logger: silentLogger(), pastDueGraceDays: o.graceDays ?? 7, now: () => clock.now });
  const free = await d.plans.create({ name: 'Free', isDefault: true });
  const pro = await d.plans.create({ name: 'Pro', priceCents: 2900 });
  const team = await d.plans.create({ name: 'Team', priceCents: 9900 });
  for (const [plan, price] of [
    [pro.id, 'price_pro'],
    [team.id, 'price_team'],
  ] as const) {
    await store.mappings.put({ provider: 'stripe', entityType: 'plan', localId: plan, externalId: price });
  }
  const user = await d.users.create({ email: 'ada@example.com' });
  await store.mappings.put({ provider: 'stripe', entityType: 'user', localId: user.id, externalId: 'cus_ada' });
  let n = 0;
  const state = (over: Partial<SubscriptionState> = {}): SubscriptionState => ({
    subscriptionId: 'sub_1',
    customerId: 'cus_ada',
    priceId: 'price_pro',
    status: 'active',
    currentPeriodEnd: new Date(clock.now.getTime() + 30 * DAY_MS),
    cancelAtPeriodEnd: false,
    ...over,
  });
  const event = (type: PaymentEvent['type'], s: SubscriptionState, over: Partial<PaymentEvent> = {}): PaymentEvent => ({
    id: `evt_${++n}`,
    type,
    occurredAt: new Date(clock.now.getTime() + n * 1000),
    customerId: s.customerId,
    subscriptionId: s.subscriptionId,
    priceId: s.priceId,
    subscription: s,
    raw: {},
    ...over,
  });
  const planOf = async (id = user.id) => (await d.users.get(id)).planId;
  return { store, d, clock, processor, free, pro, team, user, state, event, planOf };
}

describe('payment access rules (PaymentProcessor)', () => {
  for (const status of ['unpaid', 'paused', 'incomplete_expired', 'canceled'] as SubscriptionStatus[]) {
    it(`${status} withdraws the paid plan (back to the default plan)`, async () => {
      const t = await setup();
      await t.processor.applyEvent('stripe', t.event('subscription.created', t.state()));
      expect(await t.planOf()).toBe(t.pro.id);
      const r = await t.processor.applyEvent('stripe', t.event('subscription.updated', t.state({ status })));
      expect(r).toMatchObject({ status: 'applied', userPlanId: t.free.id });
      expect(await t.planOf()).toBe(t.free.id);
      expect((await t.d.subscriptions.findByExternal('stripe', 'sub_1'))?.status).toBe(status);
    });
  }

  it('past_due keeps the plan for the grace period, then the periodic check withdraws it; paying again restores it', async () => {
    const t = await setup({ graceDays: 3 });
    await t.processor.applyEvent('stripe', t.event('subscription.created', t.state()));
    await t.processor.applyEvent('stripe', t.event('invoice.payment_failed', t.state({ status: 'past_due' })));
    expect(await t.planOf()).toBe(t.pro.id);
    // A second failed attempt does not restart the grace period.
    t.clock.now = new Date(t.clock.now.getTime() + 2 * DAY_MS);
    await t.processor.applyEvent('stripe', t.event('invoice.payment_failed', t.state({ status: 'past_due' })));
    expect(await t.processor.expirePastDue()).toEqual([]);
    expect(await t.planOf()).toBe(t.pro.id);
    t.clock.now = new Date(t.clock.now.getTime() + 1.5 * DAY_MS);
    expect(await t.processor.expirePastDue()).toEqual([t.user.id]);
    expect(await t.planOf()).toBe(t.free.id);
    await t.processor.applyEvent('stripe', t.event('invoice.paid', t.state({ status: 'active' })));
    expect(await t.planOf()).toBe(t.pro.id);
  });

  it('several subscriptions: the best active one is kept when another ends', async () => {
    const t = await setup();
    await t.processor.applyEvent('stripe', t.event('subscription.created', t.state()));
    await t.processor.applyEvent('stripe', t.event('subscription.created', t.state({ subscriptionId: 'sub_2', priceId: 'price_team' })));
    expect(await t.planOf()).toBe(t.team.id);
    await t.processor.applyEvent(
      'stripe',
      t.event('subscription.deleted', t.state({ subscriptionId: 'sub_2', priceId: 'price_team', status: 'canceled' })),
    );
    expect(await t.planOf()).toBe(t.pro.id);
    // The cheaper one ending while the better one runs changes nothing.
    await t.processor.applyEvent('stripe', t.event('subscription.created', t.state({ subscriptionId: 'sub_3', priceId: 'price_team' })));
    await t.processor.applyEvent('stripe', t.event('subscription.deleted', t.state({ status: 'canceled' })));
    expect(await t.planOf()).toBe(t.team.id);
  });

  it('a plan an admin gave by hand is not withdrawn by a subscription of another plan ending', async () => {
    const t = await setup();
    await t.processor.applyEvent('stripe', t.event('subscription.created', t.state()));
    await t.d.users.update(t.user.id, { planId: t.team.id });
    await t.processor.applyEvent('stripe', t.event('subscription.deleted', t.state({ status: 'canceled' })));
    expect(await t.planOf()).toBe(t.team.id);
  });

  describe('the plan comes from the price mapping only; custom data may only name a new customer’s user', () => {
    it('localRefs.planId never chooses the plan', async () => {
      const t = await setup();
      await t.processor.applyEvent(
        'stripe',
        t.event('subscription.created', t.state(), { localRefs: { userId: t.user.id, planId: t.team.id } }),
      );
      expect(await t.planOf()).toBe(t.pro.id);
      // A price with no mapping is a failure, whatever the custom data says.
      await expect(
        t.processor.applyEvent(
          'stripe',
          t.event('subscription.created', t.state({ subscriptionId: 'sub_x', priceId: 'price_unknown' }), {
            localRefs: { planId: t.team.id },
          }),
        ),
      ).rejects.toMatchObject({ code: 'PAYMENT_MAPPING_MISSING' });
      expect(await t.planOf()).toBe(t.pro.id);
    });

    it('the customer mapping wins over a localRefs.userId naming someone else', async () => {
      const t = await setup();
      const mallory = await t.d.users.create({ email: 'mallory@example.com' });
      await t.processor.applyEvent('stripe', t.event('subscription.created', t.state(), { localRefs: { userId: mallory.id } }));
      expect(await t.planOf()).toBe(t.pro.id);
      expect(await t.planOf(mallory.id)).toBe(t.free.id);
    });

    it('a new customer is paired with localRefs.userId and remembered for later events without it', async () => {
      const t = await setup();
      const bob = await t.d.users.create({ email: 'bob@example.com' });
      await t.processor.applyEvent(
        'stripe',
        t.event('checkout.completed', t.state({ customerId: 'cus_bob', subscriptionId: 'sub_b' }), { localRefs: { userId: bob.id } }),
      );
      expect(await t.planOf(bob.id)).toBe(t.pro.id);
      expect((await t.store.mappings.findLocal('stripe', 'user', 'cus_bob'))?.localId).toBe(bob.id);
      await t.processor.applyEvent(
        'stripe',
        t.event('subscription.updated', t.state({ customerId: 'cus_bob', subscriptionId: 'sub_b', priceId: 'price_team' })),
      );
      expect(await t.planOf(bob.id)).toBe(t.team.id);
    });

    it('localRefs.userId of a user who already has another customer is not trusted (a buyer naming a victim)', async () => {
      const t = await setup();
      // cus_evil is new, but the custom data names Ada, who is cus_ada.
      await expect(
        t.processor.applyEvent(
          'stripe',
          t.event('checkout.completed', t.state({ customerId: 'cus_evil', subscriptionId: 'sub_e', status: 'canceled' }), {
            localRefs: { userId: t.user.id },
          }),
        ),
      ).rejects.toMatchObject({ code: 'PAYMENT_MAPPING_MISSING' });
      expect(await t.store.mappings.findLocal('stripe', 'user', 'cus_evil')).toBeUndefined();
    });
  });

  it('applyState (reconciliation) follows the same rules and keeps a newer event', async () => {
    const t = await setup();
    await t.processor.applyEvent('stripe', t.event('subscription.created', t.state()));
    const read = new Date(t.clock.now.getTime() + 60_000);
    const r = await t.processor.applyState('stripe', t.state({ status: 'unpaid' }), { at: read });
    expect(r).toMatchObject({ status: 'applied', userPlanId: t.free.id });
    // An API read older than the stored event changes nothing.
    const stale = await t.processor.applyState('stripe', t.state({ status: 'active' }), { at: new Date(read.getTime() - 1000) });
    expect(stale.status).toBe('skipped');
    expect(await t.planOf()).toBe(t.free.id);
    await expect(
      t.processor.applyState('stripe', t.state({ subscriptionId: 'sub_9', customerId: 'cus_nobody' }), { at: read }),
    ).rejects.toMatchObject({
      code: 'PAYMENT_MAPPING_MISSING',
    });
  });
});
