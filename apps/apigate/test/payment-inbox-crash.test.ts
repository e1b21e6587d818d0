import { openStore, PaymentInbox, type Store } from '@apigate/gateway';
import { DEV_WEBHOOK_SECRET, DummyPayment } from '@apigate/provider-dummy-payment';
import { describe, expect, it, vi } from 'vitest';
import { BIN, cleanEnv, serve, tempDir } from './helpers.js';

const EVENTS = 300;

/**
 * 300 users, each mapped to a dummy customer, and a plan mapped to a dummy price. The plan has no
 * price of its own: serve syncs priced plans at start, and the dummy keeps prices in memory, so each
 * start would give a priced plan a new price id and move its mapping away from the one signed here.
 */
async function seed(store: Store) {
  await store.domain.plans.create({ name: 'Free', isDefault: true });
  const pro = await store.domain.plans.create({ name: 'Partner', requestsPerMonth: 1_000_000 });
  await store.mappings.put({ provider: 'dummy', entityType: 'plan', localId: pro.id, externalId: 'price_dummy_pro' });
  const users: string[] = [];
  for (let i = 0; i < EVENTS; i++) {
    const u = await store.domain.users.create({ email: `crash${i}@example.com` });
    await store.mappings.put({ provider: 'dummy', entityType: 'user', localId: u.id, externalId: `cus_dummy_${i}` });
    users.push(u.id);
  }
  return { pro, users };
}

/** Signed exactly as the running dummy provider verifies (its development secret; the server binds loopback). */
function signedEvents() {
  const signer = new DummyPayment({ checkoutBaseUrl: 'http://localhost/c', webhookSecret: DEV_WEBHOOK_SECRET });
  return Array.from({ length: EVENTS }, (_, i) =>
    signer.signEvent({
      id: `evt_crash_${i}`,
      type: 'subscription.created',
      occurredAt: new Date(),
      customerId: `cus_dummy_${i}`,
      subscription: {
        subscriptionId: `sub_dummy_${i}`,
        customerId: `cus_dummy_${i}`,
        priceId: 'price_dummy_pro',
        status: 'active',
        cancelAtPeriodEnd: false,
      },
    }),
  );
}

describe('the payment inbox survives the death of `apigate serve` on the memory queue', { timeout: 180_000 }, () => {
  for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
    it(`${signal} right after the 200s of ${EVENTS} signed events: every event is applied after a restart`, async () => {
      const dataDir = tempDir(`crash-${signal.toLowerCase()}`);
      const env = cleanEnv({ APIGATE_DATA_DIR: dataDir, PAYMENT_PROVIDER: 'dummy', QUEUE_PROVIDER: 'memory', CACHE_PROVIDER: 'memory' });
      const store = await openStore({ dataDir });
      try {
        const { pro, users } = await seed(store);
        const inbox = new PaymentInbox(store);
        const first = await serve(BIN, env);
        const exited = new Promise<void>((r) => first.child.on('close', () => r()));
        // All at once, as a provider's burst would come: the answers arrive while the worker is still applying.
        const answers = await Promise.all(
          signedEvents().map((hook) =>
            fetch(`${first.url}/webhooks/dummy`, { method: 'POST', headers: hook.headers, body: Buffer.from(hook.rawBody) }),
          ),
        );
        first.child.kill(signal);
        await exited;
        expect(answers.map((a) => a.status)).toEqual(Array(EVENTS).fill(200));
        // Every 200 means the event is in the inbox; the memory queue's jobs died with the process.
        const stored = (await inbox.list({ limit: 1000 })).items;
        expect(stored).toHaveLength(EVENTS);
        const queuedAtDeath = stored.filter((r) => r.status === 'queued').length;
        expect(queuedAtDeath, 'some events were still waiting when the process died (else this run proves nothing)').toBeGreaterThan(0);

        const second = await serve(BIN, env);
        try {
          await vi.waitFor(
            async () =>
              expect((await inbox.list({ status: 'applied', limit: 1000 })).items.length, second.logs().slice(-2000)).toBe(EVENTS),
            {
              timeout: 60_000,
              interval: 200,
            },
          );
          // After SIGKILL only the inbox has them; after SIGTERM the memory queue may also have spooled its jobs (then the inbox's re-publish is a no-op).
          if (signal === 'SIGKILL') expect(second.logs()).toMatch(/payment inbox: \d+ queued event\(s\) sent to the worker at start/);
        } finally {
          expect(await second.stop()).toBe(0);
        }
        expect((await inbox.list({ status: 'queued' })).items).toEqual([]);
        expect((await inbox.list({ status: 'failed' })).items).toEqual([]);
        for (const id of users) expect((await store.domain.users.get(id)).planId).toBe(pro.id);
        console.info(`${signal}: ${queuedAtDeath} of ${EVENTS} events were still queued when serve died; all applied after the restart`);
      } finally {
        await store.close();
      }
    });
  }
});
