import http from 'node:http';
import { ProviderError, silentLogger } from '@apigate/kernel';
import dummyPayment, { type DummyEvent } from '@apigate/provider-dummy-payment';
import { afterEach, describe, expect, it } from 'vitest';
import { enqueuePaymentEvent, paymentWebhookPath, replayPaymentEvent, syncPlanPrices } from '../src/billing/index.js';
import { createAdminApi } from '../src/admin/api.js';
import { startServer } from '../src/http/server.js';
import { billingSetup } from './helpers/billing.js';
import { DIALECTS } from './helpers/domain.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
const setup = (o: Parameters<typeof billingSetup>[1] = {}) => billingSetup(cleanups, o);
const json = (b: Buffer) => JSON.parse(b.toString());

describe.each(DIALECTS)('%s', (dialect) => {
  describe('payment webhooks through a listening server (dummy provider)', () => {
    it('mounts at the provider webhook path', () => {
      expect(paymentWebhookPath('dummy', dummyPayment.features)).toBe('/webhooks/dummy');
      expect(paymentWebhookPath('stripe', {})).toBe('/webhooks/stripe');
    });

    it('answers 200 to a signed checkout and applies it: subscription stored, user on the plan, webhook emitted', async () => {
      const t = await setup({ dialect });
      const change = await t.checkout(t.pro.id);
      const res = await t.post(change.webhook);
      expect(res.status).toBe(200);
      expect(json(res.body)).toEqual({ received: true, duplicate: false });
      const row = await t.settled(change.event.id);
      expect(row).toMatchObject({ status: 'applied', type: 'checkout.completed', attempts: 1, lastError: null, hasBody: true });
      expect(row.appliedAt).toBeInstanceOf(Date);
      // The inbox holds the verified body byte for byte, and the signature header normalisation may need.
      const input = (await t.inbox.input('dummy', change.event.id))!;
      expect(Buffer.from(input.rawBody).equals(Buffer.from(change.webhook.rawBody))).toBe(true);
      expect(input.headers['apigate-dummy-signature']).toBe(change.webhook.headers['apigate-dummy-signature']);

      const sub = await t.d.subscriptions.findByExternal('dummy', change.subscription.subscriptionId);
      expect(sub).toMatchObject({ userId: t.user.id, planId: t.pro.id, status: 'active', provider: 'dummy' });
      expect(await t.planOf()).toBe(t.pro.id);
      expect(t.emitted).toEqual([expect.objectContaining({ type: 'subscription.created', id: `dummy:${change.event.id}` })]);
      expect(t.emitted[0]!.data).toMatchObject({ user_id: t.user.id, plan_id: t.pro.id, status: 'active' });
    });

    describe('refused before anything is stored', () => {
      it('a bad signature: 400 with no detail', async () => {
        const t = await setup({ dialect });
        const change = await t.checkout(t.pro.id);
        const res = await t.post(t.dummy.signEvent(change.event, { secret: 'whsec_someone_else_entirely_0000' }));
        expect(res.status).toBe(400);
        expect(json(res.body)).toEqual({ error: { code: 'WEBHOOK_SIGNATURE_INVALID', message: 'webhook signature did not verify' } });
        expect(await t.inbox.find('dummy', change.event.id)).toBeUndefined();
        expect(await t.planOf()).toBe(t.free.id);
      });

      it('a tampered body (a Team price written into a signed Pro event): 400', async () => {
        const t = await setup({ dialect });
        const change = await t.checkout(t.pro.id);
        const text = Buffer.from(change.webhook.rawBody)
          .toString()
          .replace(await t.priceOf(t.pro.id), await t.priceOf(t.team.id));
        const res = await t.post({ ...change.webhook, rawBody: Buffer.from(text) });
        expect(res.status).toBe(400);
        expect(await t.inbox.find('dummy', change.event.id)).toBeUndefined();
      });

      it('a stale signature (a captured event replayed an hour later): 400', async () => {
        const t = await setup({ dialect });
        const change = await t.checkout(t.pro.id);
        const res = await t.post(t.dummy.signEvent(change.event, { signedAt: new Date(Date.now() - 3_600_000) }));
        expect(res.status).toBe(400);
        expect(json(res.body).error.code).toBe('WEBHOOK_SIGNATURE_INVALID');
        expect(await t.inbox.find('dummy', change.event.id)).toBeUndefined();
      });

      it('an event of the other mode (live event, test-only provider): 400 WEBHOOK_MODE_MISMATCH', async () => {
        const t = await setup({ dialect });
        const change = await t.checkout(t.pro.id);
        const live: DummyEvent = { ...change.event, livemode: true };
        const res = await t.post(t.dummy.signEvent(live));
        expect(res.status).toBe(400);
        expect(json(res.body).error.code).toBe('WEBHOOK_MODE_MISMATCH');
        expect(await t.inbox.find('dummy', change.event.id)).toBeUndefined();
        expect(await t.planOf()).toBe(t.free.id);
      });

      it('a body over the limit: 413 from Content-Length, and 413 while streaming a chunked body, before it is read whole', async () => {
        const t = await setup({ dialect, maxBytes: 4096 });
        const change = await t.checkout(t.pro.id);
        const padded: DummyEvent = { ...change.event, sessionId: 'x'.repeat(5000) };
        const big = t.dummy.signEvent(padded);
        const res = await t.post(big);
        expect(res.status).toBe(413);
        expect(json(res.body).error.code).toBe('PAYLOAD_TOO_LARGE');

        // No Content-Length: chunks of 1 KiB, 64 of them; the answer comes before the client has sent them all.
        let sent = 0;
        const chunked = await new Promise<{ status: number; sentWhenAnswered: number }>((resolve, reject) => {
          const req = http.request(t.url, { method: 'POST', headers: { ...big.headers, 'transfer-encoding': 'chunked' } }, (r) => {
            r.resume();
            resolve({ status: r.statusCode!, sentWhenAnswered: sent });
            req.destroy();
          });
          req.on('error', (err) => (sent >= 64 ? undefined : reject(err)));
          const pump = () => {
            if (sent >= 64 || req.destroyed) return req.end();
            sent++;
            req.write(Buffer.alloc(1024, 0x20));
            setTimeout(pump, 5);
          };
          pump();
        });
        expect(chunked.status).toBe(413);
        expect(chunked.sentWhenAnswered).toBeLessThan(64);
        expect(await t.inbox.find('dummy', change.event.id)).toBeUndefined();
        // The same event within the limit is taken.
        expect((await t.post(change.webhook)).status).toBe(200);
      });
    });

    it('acknowledges a duplicate with 200 duplicate:true and applies the event once', async () => {
      const t = await setup({ dialect });
      const change = await t.checkout(t.pro.id);
      expect((await t.post(change.webhook)).status).toBe(200);
      await t.settled(change.event.id);
      const again = await t.post(change.webhook);
      expect(again.status).toBe(200);
      expect(json(again.body)).toEqual({ received: true, duplicate: true });
      const fail = t.dummy.failPayment(change.subscription.subscriptionId);
      await t.post(fail.webhook);
      await t.settled(fail.event.id);
      expect(t.emitted.map((e) => e.type)).toEqual(['subscription.created', 'payment.failed']);
      expect((await t.d.subscriptions.findByExternal('dummy', change.subscription.subscriptionId))?.status).toBe('past_due');
    });

    it('out of order: keeps the newer state when an older updated event arrives late', async () => {
      const t = await setup({ dialect });
      const change = await t.checkout(t.pro.id);
      await t.post(change.webhook);
      await t.settled(change.event.id);
      const subId = change.subscription.subscriptionId;
      const base = change.event.occurredAt.getTime();
      const teamPrice = await t.priceOf(t.team.id);
      const older: DummyEvent = {
        ...change.event,
        id: 'evt_older',
        type: 'subscription.updated',
        occurredAt: new Date(base + 1000),
        sequence: 10,
      };
      const newer: DummyEvent = {
        ...change.event,
        id: 'evt_newer',
        type: 'subscription.updated',
        occurredAt: new Date(base + 2000),
        sequence: 11,
        priceId: teamPrice,
        subscription: { ...change.subscription, priceId: teamPrice },
      };
      expect((await t.post(t.dummy.signEvent(newer))).status).toBe(200);
      expect((await t.settled('evt_newer')).status).toBe('applied');
      expect((await t.post(t.dummy.signEvent(older))).status).toBe(200);
      expect((await t.settled('evt_older')).status).toBe('skipped');

      const sub = await t.d.subscriptions.findByExternal('dummy', subId);
      expect(sub).toMatchObject({ planId: t.team.id, lastEventAt: new Date(base + 2000) });
      expect(await t.planOf()).toBe(t.team.id);
    });

    describe('same-second events: a stable tie-break, never arrival order', () => {
      const pair = async (t: Awaited<ReturnType<typeof setup>>, withSequence: boolean) => {
        const change = await t.checkout(t.pro.id);
        await t.post(change.webhook);
        await t.settled(change.event.id);
        const at = new Date(change.event.occurredAt.getTime() + 5000);
        const seq = (n: number) => (withSequence ? { sequence: n } : { sequence: undefined });
        const canceled: DummyEvent = {
          ...change.event,
          id: `evt_cancel_${withSequence}`,
          type: 'subscription.updated',
          occurredAt: at,
          ...seq(21),
          subscription: { ...change.subscription, status: 'canceled' },
        };
        const active: DummyEvent = {
          ...change.event,
          id: `evt_active_${withSequence}`,
          type: 'subscription.updated',
          occurredAt: at,
          ...seq(20),
          subscription: { ...change.subscription, status: 'active', cancelAtPeriodEnd: true },
        };
        return { change, canceled, active };
      };

      // With the provider's sequence the sequence says the canceled state came last; without one the terminal
      // status wins over active. Either way, in both arrival orders, the subscription ends canceled.
      const orderings = [
        { withSequence: true, rule: "with the provider's sequence: the higher sequence wins" },
        { withSequence: false, rule: 'without a sequence: the terminal status wins over active' },
      ];
      for (const { withSequence, rule } of orderings) {
        for (const order of ['canceled first', 'active first'] as const) {
          it(`${rule} (${order})`, async () => {
            const t = await setup({ dialect });
            const { change, canceled, active } = await pair(t, withSequence);
            const [first, second] = order === 'canceled first' ? [canceled, active] : [active, canceled];
            for (const event of [first, second]) {
              await t.post(t.dummy.signEvent(event));
              await t.settled(event.id!);
            }
            expect((await t.d.subscriptions.findByExternal('dummy', change.subscription.subscriptionId))?.status).toBe('canceled');
            expect(await t.planOf()).toBe(t.free.id);
          });
        }
      }

      it('with the provider sequence, an active state that came after a past_due one in the same second wins', async () => {
        const t = await setup({ dialect });
        const change = await t.checkout(t.pro.id);
        await t.post(change.webhook);
        await t.settled(change.event.id);
        const at = new Date(change.event.occurredAt.getTime() + 5000);
        const pastDue: DummyEvent = {
          ...change.event,
          id: 'evt_pd',
          type: 'subscription.updated',
          occurredAt: at,
          sequence: 30,
          subscription: { ...change.subscription, status: 'past_due' },
        };
        const recovered: DummyEvent = {
          ...change.event,
          id: 'evt_ok',
          type: 'subscription.updated',
          occurredAt: at,
          sequence: 31,
          subscription: { ...change.subscription, status: 'active' },
        };
        await t.post(t.dummy.signEvent(recovered));
        await t.settled('evt_ok');
        await t.post(t.dummy.signEvent(pastDue));
        expect((await t.settled('evt_pd')).status).toBe('skipped');
        expect((await t.d.subscriptions.findByExternal('dummy', change.subscription.subscriptionId))?.status).toBe('active');
      });
    });

    it('moves the user to the default plan when the subscription is deleted', async () => {
      const t = await setup({ dialect });
      const change = await t.checkout(t.pro.id);
      await t.post(change.webhook);
      await t.settled(change.event.id);
      expect(await t.planOf()).toBe(t.pro.id);

      await t.dummy.cancelSubscription({ subscriptionId: change.subscription.subscriptionId, atPeriodEnd: true });
      const end = t.dummy.renewSubscription(change.subscription.subscriptionId);
      expect(end.event.type).toBe('subscription.deleted');
      expect((await t.post(end.webhook)).status).toBe(200);
      expect((await t.settled(end.event.id)).status).toBe('applied');

      expect(await t.planOf()).toBe(t.free.id);
      expect((await t.d.subscriptions.findByExternal('dummy', change.subscription.subscriptionId))?.status).toBe('canceled');
      expect(t.emitted.at(-1)?.type).toBe('subscription.deleted');
    });

    describe('the inbox worker', () => {
      it('a missing price mapping fails the event; after the mapping exists, replay applies it', async () => {
        const t = await setup({ dialect });
        const biz = await t.d.plans.create({ name: 'Biz', priceCents: 4900 });
        // A price the provider has, with no plan mapping yet (plans sync not run since the plan was made).
        const { priceId } = await t.dummy.upsertPrice({
          planId: biz.id,
          name: 'Biz',
          amountCents: 4900,
          currency: 'usd',
          interval: 'month',
        });
        const { sessionId } = await t.dummy.createCheckout({
          customerId: t.customerId,
          priceId,
          userId: t.user.id,
          planId: biz.id,
          successUrl: 'https://example.com/ok',
          cancelUrl: 'https://example.com/no',
        });
        const change = t.dummy.completeCheckout(sessionId);
        expect((await t.post(change.webhook)).status).toBe(200);
        const failed = await t.settled(change.event.id);
        expect(failed).toMatchObject({ status: 'failed', attempts: 1 });
        expect(failed.lastError).toContain(`no plan for dummy price ${priceId}`);
        expect(await t.planOf()).toBe(t.free.id);
        // A replay before the mapping exists fails again, final at once.
        await t.workers[0]!.replay('dummy', change.event.id);
        expect((await t.settled(change.event.id)).status).toBe('failed');

        await t.store.mappings.put({ provider: 'dummy', entityType: 'plan', localId: biz.id, externalId: priceId });
        const replayed = await t.workers[0]!.replay('dummy', change.event.id);
        expect(replayed).toMatchObject({ status: 'queued', attempts: 0 });
        expect((await t.settled(change.event.id)).status).toBe('applied');
        expect(await t.planOf()).toBe(biz.id);
        await expect(t.workers[0]!.replay('dummy', change.event.id)).rejects.toMatchObject({ code: 'PAYMENT_EVENT_DONE' });
      });

      it('the admin API lists failed events, shows one with its body, and replays it', async () => {
        const t = await setup({ dialect });
        const token = 'admin-token-for-payment-events-0001';
        const admin = await startServer({
          app: createAdminApi({ store: t.store, logger: silentLogger(), adminToken: token, paymentQueue: t.q.queue }),
          port: 0,
          host: '127.0.0.1',
        });
        cleanups.push(() => admin.close());
        const api = (path: string, method = 'GET') =>
          fetch(`${admin.url}/payments/events${path}`, { method, headers: { authorization: `Bearer ${token}` } });

        // A customer nobody mapped: the event fails for want of a user.
        const { customerId } = await t.dummy.createCustomer({ userId: 'usr_unknown', email: 'x@example.com' });
        const change = await t.checkout(t.pro.id, customerId, 'usr_unknown');
        await t.post(change.webhook);
        expect((await t.settled(change.event.id)).status).toBe('failed');

        const listed = (await (await api('?status=failed')).json()) as { data: Record<string, unknown>[]; next_cursor: null };
        expect(listed.data).toEqual([
          expect.objectContaining({
            provider: 'dummy',
            event_id: change.event.id,
            status: 'failed',
            type: 'checkout.completed',
            attempts: 1,
          }),
        ]);
        expect(listed.data[0]!.last_error).toContain(`no local user for dummy customer ${customerId}`);
        expect((await api('?status=nope')).status).toBe(400);
        const shown = (await (await api(`/${change.event.id}`)).json()) as Record<string, unknown>;
        expect(JSON.parse(shown.body as string)).toMatchObject({ id: change.event.id });
        expect(shown.header_names).toContain('apigate-dummy-signature');
        expect((await api('/evt_nope')).status).toBe(404);

        await t.store.mappings.put({
          provider: 'dummy',
          entityType: 'user',
          localId: (await t.d.users.create({ email: 'x@example.com' })).id,
          externalId: customerId,
        });
        const replayed = await api(`/${change.event.id}/replay`, 'POST');
        expect(replayed.status).toBe(200);
        expect((await t.settled(change.event.id)).status).toBe('applied');
        expect((await api(`/${change.event.id}/replay`, 'POST')).status).toBe(409);
      });

      it('retries a retryable failure with backoff, then applies it', async () => {
        let calls = 0;
        const t = await setup({
          dialect,
          backoffMs: 30,
          normalizer: (dummy) => ({
            normalizeWebhook: async (i) => {
              calls++;
              if (calls <= 2)
                throw new ProviderError({
                  capability: 'payment',
                  provider: 'dummy',
                  operation: 'normalizeWebhook',
                  retryable: true,
                  message: 'upstream 503',
                });
              return dummy.normalizeWebhook(i);
            },
          }),
        });
        const change = await t.checkout(t.pro.id);
        const started = Date.now();
        expect((await t.post(change.webhook)).status).toBe(200);
        const row = await t.settled(change.event.id);
        expect(row).toMatchObject({ status: 'applied', attempts: 3 });
        // Waits of 30 and 60 ms between the three tries.
        expect(Date.now() - started).toBeGreaterThanOrEqual(90);
        expect(row.lastError).toContain('upstream 503');
        expect(await t.planOf()).toBe(t.pro.id);
      });

      it('ends failed after the last try, with the masked error, and a replay gives it fresh tries', async () => {
        let down = true;
        const t = await setup({
          dialect,
          attempts: 3,
          backoffMs: 10,
          normalizer: (dummy) => ({
            normalizeWebhook: async (i) => {
              if (down)
                throw new ProviderError({
                  capability: 'payment',
                  provider: 'dummy',
                  operation: 'normalizeWebhook',
                  retryable: true,
                  message: 'connect ECONNREFUSED',
                });
              return dummy.normalizeWebhook(i);
            },
          }),
        });
        const change = await t.checkout(t.pro.id);
        await t.post(change.webhook);
        const row = await t.settled(change.event.id);
        expect(row).toMatchObject({ status: 'failed', attempts: 3, nextAttemptAt: null });
        expect(row.lastError).toContain('ECONNREFUSED');
        expect((await t.inbox.list({ status: 'failed' })).items.map((r) => r.eventId)).toEqual([change.event.id]);
        down = false;
        await replayPaymentEvent({ inbox: t.inbox, queue: t.q.queue }, change.event.id);
        expect((await t.settled(change.event.id)).status).toBe('applied');
        expect(await t.planOf()).toBe(t.pro.id);
      });

      it('at start, re-queues every queued row (jobs lost with the memory queue) and applies them in event order', async () => {
        const t = await setup({ dialect, noWorker: true });
        const change = await t.checkout(t.pro.id);
        const fail = t.dummy.failPayment(change.subscription.subscriptionId);
        // Accepted (stored, 200) while no worker ran; then the queue lost its jobs (a restart).
        expect((await t.post(change.webhook)).status).toBe(200);
        expect((await t.post(fail.webhook)).status).toBe(200);
        await t.q.queue.purge('payment.events');
        expect((await t.inbox.queued()).map((r) => r.eventId).sort()).toEqual([change.event.id, fail.event.id].sort());
        t.workers.push(t.startWorker());
        expect((await t.settled(change.event.id)).status).toBe('applied');
        expect((await t.settled(fail.event.id)).status).toBe('applied');
        expect((await t.d.subscriptions.findByExternal('dummy', change.subscription.subscriptionId))?.status).toBe('past_due');
        // past_due within the grace period keeps the plan.
        expect(await t.planOf()).toBe(t.pro.id);
      });

      it('a re-published job of a row already done changes nothing', async () => {
        const t = await setup({ dialect });
        const change = await t.checkout(t.pro.id);
        await t.post(change.webhook);
        await t.settled(change.event.id);
        await enqueuePaymentEvent(t.q.queue, { provider: 'dummy', eventId: change.event.id, attempts: 7, nextAttemptAt: null });
        await new Promise((r) => setTimeout(r, 100));
        expect(await t.inbox.find('dummy', change.event.id)).toMatchObject({ status: 'applied', attempts: 1 });
        expect(t.emitted).toHaveLength(1);
      });
    });

    it('plans sync keeps an unchanged price and maps a changed plan to a new one', async () => {
      const t = await setup({ dialect });
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
});
