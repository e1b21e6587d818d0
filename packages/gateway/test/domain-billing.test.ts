import { describe, expect, it } from 'vitest';
import { type DomainError, openStore } from '../src/index.js';
import { eventMatches } from '../src/domain/webhook-endpoints.js';
import { KEY_B } from './helpers.js';
import { DIALECTS, domainStore, testPostgresUrl } from './helpers/domain.js';

describe.each(DIALECTS)('%s', (dialect) => {
  describe('subscriptions', () => {
    it('syncs provider state by external id and never lets an older event overwrite a newer one', async () => {
      const { d } = await domainStore({ dialect });
      const free = await d.plans.create({ name: 'Free' });
      const pro = await d.plans.create({ name: 'Pro', priceCents: 2900 });
      const user = await d.users.create({ email: 'ada@example.com' });
      const base = { userId: user.id, provider: 'stripe', externalCustomerId: 'cus_1', externalSubscriptionId: 'sub_ext_1' };

      const created = await d.subscriptions.sync({
        ...base,
        planId: pro.id,
        status: 'trialing',
        lastEventAt: new Date('2025-03-01T00:00:00Z'),
      });
      expect(created.applied).toBe(true);
      expect(created.subscription).toMatchObject({ planId: pro.id, status: 'trialing', cancelAtPeriodEnd: false });
      expect(created.subscription.id).toMatch(/^sub_/);

      const newer = await d.subscriptions.sync({
        ...base,
        planId: pro.id,
        status: 'active',
        cancelAtPeriodEnd: true,
        currentPeriodEnd: '2025-04-01T00:00:00Z' as never,
        lastEventAt: new Date('2025-03-03T00:00:00Z'),
      });
      expect(newer).toMatchObject({
        applied: true,
        subscription: { id: created.subscription.id, status: 'active', cancelAtPeriodEnd: true },
      });
      expect(newer.subscription.currentPeriodEnd).toEqual(new Date('2025-04-01T00:00:00Z'));

      const late = await d.subscriptions.sync({
        ...base,
        planId: free.id,
        status: 'past_due',
        lastEventAt: new Date('2025-03-02T00:00:00Z'),
      });
      expect(late).toMatchObject({ applied: false, subscription: { status: 'active', planId: pro.id } });
      expect((await d.subscriptions.findByExternal('stripe', 'sub_ext_1'))?.status).toBe('active');
      expect(await d.subscriptions.listForUser(user.id)).toHaveLength(1);

      const err = await d.subscriptions.create({ ...base, planId: pro.id, status: 'active' }).catch((e: DomainError) => e);
      expect(err).toMatchObject({ code: 'SUBSCRIPTION_EXISTS', field: 'external_subscription_id' });
      const bad = await d.subscriptions
        .create({ ...base, externalSubscriptionId: null, planId: pro.id, status: 'great' as never })
        .catch((e: DomainError) => e);
      expect(bad).toMatchObject({ field: 'status' });
      // A plan with a subscription cannot be deleted.
      await d.users.update(user.id, { planId: free.id });
      expect(await d.plans.delete(pro.id).catch((e: DomainError) => e.code)).toBe('PLAN_IN_USE');
    });
  });

  describe('webhook endpoints and deliveries', () => {
    it('stores the signing secret encrypted with the settings key and returns it to the sender', async () => {
      const { d, dataDir, store } = await domainStore({ dialect });
      const { endpoint, secret } = await d.webhooks.createEndpoint({ url: 'https://example.com/hooks', events: ['key.*', 'usage.limit'] });
      expect(secret).toMatch(/^whsec_[0-9A-Za-z]{32}$/);
      expect(endpoint).toMatchObject({ url: 'https://example.com/hooks', events: ['key.*', 'usage.limit'], enabled: true });
      expect(endpoint).not.toHaveProperty('secret');
      expect(await d.webhooks.signingSecret(endpoint.id)).toBe(secret);

      const [raw] = await store.db.select({ secret: store.t.webhookEndpoints.secret }).from(store.t.webhookEndpoints);
      expect(raw!.secret).toMatch(/^v1:/);
      expect(raw!.secret).not.toContain(secret.slice(6));

      const rotated = await d.webhooks.rotateSecret(endpoint.id);
      expect(rotated).not.toBe(secret);
      expect(await d.webhooks.signingSecret(endpoint.id)).toBe(rotated);

      // With another settings key the store does not open at all (the key check), so secrets never leak as garbage.
      await store.close();
      await expect(
        openStore({ dataDir, secretKey: KEY_B, ...(dialect === 'postgres' ? { databaseUrl: await testPostgresUrl() } : {}) }),
      ).rejects.toMatchObject({ code: 'SECRET_KEY_MISMATCH' });
    });

    it('matches events by name, group and wildcard, and validates the list', async () => {
      const { d } = await domainStore({ dialect });
      expect(eventMatches(['key.*'], 'key.revoked')).toBe(true);
      expect(eventMatches(['key.*'], 'keys.x')).toBe(false);
      expect(eventMatches(['*'], 'test')).toBe(true);
      const a = (await d.webhooks.createEndpoint({ url: 'http://127.0.0.1:1/a', events: ['subscription.*'] })).endpoint;
      const b = (await d.webhooks.createEndpoint({ url: 'http://127.0.0.1:1/b', events: ['*'], enabled: false })).endpoint;
      expect((await d.webhooks.endpointsFor('subscription.updated')).map((e) => e.id)).toEqual([a.id]);
      await d.webhooks.updateEndpoint(b.id, { enabled: true });
      expect((await d.webhooks.endpointsFor('test')).map((e) => e.id)).toEqual([b.id]);
      const err = (await d.webhooks
        .createEndpoint({ url: 'http://x', events: ['user.exploded'] })
        .catch((e: DomainError) => e)) as DomainError;
      expect(err).toMatchObject({ field: 'events.0' });
      expect(err.message).toMatch(/^webhook endpoint: events\.0: expected event types \(key\.created, /);
      expect(await d.webhooks.createEndpoint({ url: 'http://x', events: [] }).catch((e: DomainError) => e.message)).toBe(
        'webhook endpoint: events: subscribe to at least one event type',
      );
      await d.webhooks.deleteEndpoint(a.id);
      expect((await d.webhooks.listEndpoints()).map((e) => e.id)).toEqual([b.id]);
    });

    it('records one delivery per event and endpoint, and each attempt', async () => {
      const { d, clock } = await domainStore({ dialect });
      const { endpoint } = await d.webhooks.createEndpoint({ url: 'http://127.0.0.1:1/a', events: ['*'] });
      const first = await d.webhooks.recordDelivery({ endpointId: endpoint.id, eventId: 'evt_1', eventType: 'test', payload: '{"a":1}' });
      const again = await d.webhooks.recordDelivery({ endpointId: endpoint.id, eventId: 'evt_1', eventType: 'test' });
      expect(again.id).toBe(first.id);
      expect(first).toMatchObject({ status: 'pending', attempts: 0, payload: '{"a":1}' });

      let del = await d.webhooks.recordAttempt(first.id, { ok: false, responseStatus: 503, error: 'HTTP 503' });
      expect(del).toMatchObject({ status: 'pending', attempts: 1, lastError: 'HTTP 503', responseStatus: 503 });
      clock.now = new Date(clock.now.getTime() + 60_000);
      del = await d.webhooks.recordAttempt(first.id, { ok: true, responseStatus: 200 });
      expect(del).toMatchObject({ status: 'succeeded', attempts: 2, lastError: null, deliveredAt: clock.now });

      const other = await d.webhooks.recordDelivery({ endpointId: endpoint.id, eventId: 'evt_2', eventType: 'test' });
      await d.webhooks.recordAttempt(other.id, { ok: false, error: 'refused', final: true });
      expect((await d.webhooks.listDeliveries({ status: 'failed' })).items.map((x) => x.id)).toEqual([other.id]);
      expect((await d.webhooks.listDeliveries({ endpointId: endpoint.id, limit: 1 })).cursor).toBeDefined();
    });
  });
});
