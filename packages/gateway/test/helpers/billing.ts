import { type PaymentProvider, silentLogger } from '@apigate/kernel';
import dummyPayment, { type DummyPayment, type SignedWebhook } from '@apigate/provider-dummy-payment';
import { createForTest } from '@apigate/provider-testkit';
import { Hono } from 'hono';
import { expect, vi } from 'vitest';
import {
  createPaymentWebhookApp,
  PaymentInbox,
  paymentWebhookPath,
  type PaymentWorker,
  startPaymentWorker,
  syncPlanPrices,
} from '../../src/billing/index.js';
import { startServer } from '../../src/http/server.js';
import { domainStore, type TestDialect } from './domain.js';
import { call } from './http.js';
import { memory } from './queues.js';

export interface BillingSetupOptions {
  /** The store's database: SQLite (default) or the test file's PostgreSQL database. */
  dialect?: TestDialect;
  /** Wraps the provider the worker normalises with (to inject failures). */
  normalizer?: (dummy: DummyPayment) => Pick<PaymentProvider, 'normalizeWebhook'>;
  attempts?: number;
  backoffMs?: number;
  maxBytes?: number;
  pastDueGraceDays?: number;
  /** Do not start the worker (the test starts it, e.g. after rows were recorded). */
  noWorker?: boolean;
}

/**
 * A real listening server with the dummy provider's webhook route, the memory queue and the
 * payment worker over a real SQLite store; a Free (default), Pro and Team plan synced to dummy
 * prices; one user mapped to a dummy customer.
 */
export async function billingSetup(cleanups: (() => Promise<void>)[], o: BillingSetupOptions = {}) {
  const { store, d } = await domainStore({ ...(o.dialect ? { dialect: o.dialect } : {}) });
  const { provider } = await createForTest(dummyPayment);
  const dummy = provider as unknown as DummyPayment;
  const q = await memory();
  const emitted: { type: string; data: Record<string, unknown>; id?: string }[] = [];
  // Records what the dispatcher would send (its own delivery is tested in gate-webhooks).
  const webhooks = {
    emit: async (type: string, data: Record<string, unknown>, e: { id?: string } = {}) => {
      emitted.push({ type, data, ...e });
      return undefined as never;
    },
  };
  const startWorker = (): PaymentWorker =>
    startPaymentWorker(q.queue, {
      store,
      logger: silentLogger(),
      webhooks,
      providerName: 'dummy',
      payment: o.normalizer ? o.normalizer(dummy) : dummy,
      attempts: o.attempts ?? 5,
      backoffMs: o.backoffMs ?? 20,
      sweepMs: 200,
      ...(o.pastDueGraceDays !== undefined ? { pastDueGraceDays: o.pastDueGraceDays } : {}),
    });
  const workers: PaymentWorker[] = [];
  if (!o.noWorker) workers.push(startWorker());
  const path = paymentWebhookPath('dummy', dummyPayment.features);
  const app = new Hono();
  app.route(
    path,
    createPaymentWebhookApp({
      providerName: 'dummy',
      payment: dummy,
      queue: q.queue,
      store,
      logger: silentLogger(),
      ...(o.maxBytes ? { maxBytes: o.maxBytes } : {}),
    }),
  );
  const server = await startServer({ app, port: 0, host: '127.0.0.1' });
  cleanups.push(async () => {
    await server.close();
    for (const w of workers) await w.close();
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

  const url = `${server.url}${path}`;
  const post = (w: SignedWebhook) => call(url, { method: 'POST', headers: w.headers, body: Buffer.from(w.rawBody) });
  const inbox = new PaymentInbox(store);
  const settled = (eventId: string, timeout = 10_000) =>
    vi.waitFor(
      async () => {
        const row = await inbox.find('dummy', eventId);
        expect(row?.status).not.toBe('queued');
        return row!;
      },
      { timeout, interval: 20 },
    );

  async function checkout(planId: string, forCustomer = customerId, forUser = user.id) {
    const { sessionId } = await dummy.createCheckout({
      customerId: forCustomer,
      priceId: await priceOf(planId),
      userId: forUser,
      planId,
      successUrl: 'https://example.com/ok',
      cancelUrl: 'https://example.com/no',
    });
    return dummy.completeCheckout(sessionId);
  }
  const planOf = async (userId = user.id) => (await d.users.get(userId)).planId;
  return {
    store,
    d,
    dummy,
    q,
    url,
    path,
    post,
    inbox,
    settled,
    checkout,
    user,
    customerId,
    free,
    pro,
    team,
    priceOf,
    planOf,
    emitted,
    workers,
    startWorker,
  };
}
