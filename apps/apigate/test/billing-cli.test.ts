import { openStore } from '@apigate/gateway';
import { DEV_WEBHOOK_SECRET, DummyPayment } from '@apigate/provider-dummy-payment';
import { describe, expect, it, vi } from 'vitest';
import { BIN, cleanEnv, cli, serve, tempDir } from './helpers.js';

describe('apigate plans sync and the payment webhook of serve (dummy provider)', { timeout: 120_000 }, () => {
  it('syncs plan prices, then applies a signed subscription webhook posted to the running server', async () => {
    const dataDir = tempDir('billing');
    const env = cleanEnv({ APIGATE_DATA_DIR: dataDir, PAYMENT_PROVIDER: 'dummy', QUEUE_PROVIDER: 'memory', CACHE_PROVIDER: 'memory' });
    const store = await openStore({ dataDir });
    try {
      const free = await store.domain.plans.create({ name: 'Free', isDefault: true });
      const pro = await store.domain.plans.create({ name: 'Pro', priceCents: 2900 });
      const user = await store.domain.users.create({ email: 'ada@example.com', planId: free.id });
      await store.mappings.put({ provider: 'dummy', entityType: 'user', localId: user.id, externalId: 'cus_dummy_ada' });

      const sync = await cli(['plans', 'sync', '--json'], env);
      expect(sync.code, sync.stderr).toBe(0);
      const rows = JSON.parse(sync.stdout) as { planId: string; priceId: string }[];
      expect(rows).toEqual([expect.objectContaining({ planId: pro.id, changed: true })]);
      expect((await store.mappings.findExternal('dummy', 'plan', pro.id))?.externalId).toBe(rows[0]!.priceId);

      const server = await serve(BIN, env);
      try {
        expect(server.logs()).toContain('payment webhooks: POST /webhooks/dummy');
        // Signed with the dummy's development secret, as the running provider verifies it.
        const signer = new DummyPayment({ checkoutBaseUrl: 'http://localhost/c', webhookSecret: DEV_WEBHOOK_SECRET });
        const state = {
          subscriptionId: 'sub_dummy_1',
          customerId: 'cus_dummy_ada',
          priceId: rows[0]!.priceId,
          status: 'active' as const,
          cancelAtPeriodEnd: false,
        };
        const hook = signer.signEvent({
          id: 'evt_app_1',
          type: 'subscription.created',
          occurredAt: new Date(),
          customerId: state.customerId,
          subscription: state,
        });
        const send = () =>
          fetch(`${server.url}/webhooks/dummy`, { method: 'POST', headers: hook.headers, body: Buffer.from(hook.rawBody) });
        const first = await send();
        expect(first.status).toBe(200);
        expect(await first.json()).toEqual({ received: true, duplicate: false });
        await vi.waitFor(async () => expect((await store.domain.users.get(user.id)).planId).toBe(pro.id), {
          timeout: 20_000,
          interval: 100,
        });
        expect(await (await send()).json()).toEqual({ received: true, duplicate: true });
        const bad = await fetch(`${server.url}/webhooks/dummy`, { method: 'POST', headers: hook.headers, body: '{"id":"evt_forged"}' });
        expect(bad.status).toBe(400);
      } finally {
        expect(await server.stop()).toBe(0);
      }
    } finally {
      await store.close();
    }
  });
});
