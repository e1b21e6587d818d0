import { createKernel, defineProvider, discoverPlugins, type HealthReport, type Kernel, silentLogger, z } from '@apigate/kernel';
import dummyPayment, { DEV_WEBHOOK_SECRET, DummyPayment } from '@apigate/provider-dummy-payment';
import memoryQueue from '@apigate/provider-memory-queue';
import { afterEach, describe, expect, it } from 'vitest';
import { isLoopbackHost } from '../src/billing/index.js';
import { createHttpApp, openStore, type Store, startServer } from '../src/index.js';
import { KEY_A, tempDir } from './helpers.js';

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

// A payment provider whose API is down: check() fails as a real one would on an outage.
const downPayment = defineProvider({
  capability: 'payment',
  name: 'down',
  description: 'payment API unreachable',
  config: z.object({}),
  create: () =>
    ({
      check: async () => ({ status: 'error' as const, latencyMs: 3000, error: 'connect ECONNREFUSED 127.0.0.1:9' }),
      close: async () => undefined,
    }) as never,
});
const downQueue = defineProvider({
  capability: 'queue',
  name: 'down',
  description: 'queue unreachable',
  config: z.object({}),
  create: () =>
    ({ check: async () => ({ status: 'error' as const, latencyMs: 1, error: 'redis down' }), close: async () => undefined }) as never,
});

async function serve(env: Record<string, string>, o: { bindHost?: string; settings?: Record<string, string> } = {}) {
  const dataDir = await tempDir();
  const store: Store = await openStore({ dataDir, secretKey: KEY_A });
  open.push(store);
  for (const [k, v] of Object.entries(o.settings ?? {})) await store.settings.set(k, v, { secret: true });
  const catalog = await discoverPlugins({ builtins: [dummyPayment, memoryQueue, downPayment, downQueue] });
  const kernel: Kernel = await createKernel({ catalog, env, settings: store.settings, dataDir, only: ['payment', 'queue'] });
  open.push(kernel);
  const app = createHttpApp({ kernel, store, logger: silentLogger(), bindHost: o.bindHost });
  const server = await startServer({ app, port: 0, host: '127.0.0.1' });
  open.push(server);
  return { url: server.url, kernel };
}

/** A dummy event signed with the published development secret: what anyone on the internet can make. */
function forged() {
  const signer = new DummyPayment({ checkoutBaseUrl: 'http://localhost/x', webhookSecret: DEV_WEBHOOK_SECRET });
  const hook = signer.signEvent({
    id: 'evt_forged',
    type: 'subscription.created',
    occurredAt: new Date(),
    subscription: { subscriptionId: 'sub_f', customerId: 'cus_f', priceId: 'price_f', status: 'active', cancelAtPeriodEnd: false },
  });
  return { method: 'POST', headers: hook.headers, body: Buffer.from(hook.rawBody) };
}

describe('the dummy provider’s webhook route on a default install', () => {
  const env = { PAYMENT_PROVIDER: 'dummy', QUEUE_PROVIDER: 'memory' };

  it('is 404 when the server binds a public address with the development secret (a forged event is refused)', async () => {
    for (const bindHost of ['0.0.0.0', '::', '192.0.2.10', undefined]) {
      const { url } = await serve(env, bindHost ? { bindHost } : {});
      const res = await fetch(`${url}/webhooks/dummy`, forged());
      expect(res.status, `bound to ${bindHost}`).toBe(404);
    }
  });

  it('is served on a loopback bind (development), and with a secret of its own on any bind', async () => {
    const local = await serve(env, { bindHost: '127.0.0.1' });
    expect((await fetch(`${local.url}/webhooks/dummy`, forged())).status).toBe(200);
    const own = await serve(env, { bindHost: '0.0.0.0', settings: { 'payment.dummy.webhook_secret': 'whsec_a_secret_of_our_own_123456' } });
    // Served, and the forged (development-secret) event fails its signature.
    const res = await fetch(`${own.url}/webhooks/dummy`, forged());
    expect(res.status).toBe(400);
    const viaEnv = await serve({ ...env, PAYMENT_DUMMY_WEBHOOK_SECRET: 'whsec_another_secret_of_ours_1234' }, { bindHost: '0.0.0.0' });
    expect((await fetch(`${viaEnv.url}/webhooks/dummy`, forged())).status).toBe(400);
  });

  it('knows loopback addresses', () => {
    expect(['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]'].every(isLoopbackHost)).toBe(true);
    expect(['0.0.0.0', '::', '10.0.0.1', 'example.com', undefined].some(isLoopbackHost)).toBe(false);
  });
});

describe('/admin/health with a payment provider outage', () => {
  it('is degraded (200), not unhealthy: the proxy keeps working', async () => {
    const { url } = await serve({ PAYMENT_PROVIDER: 'down', QUEUE_PROVIDER: 'memory' });
    const res = await fetch(`${url}/admin/health`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as HealthReport;
    expect(body.status).toBe('degraded');
    expect(body.providers.payment).toMatchObject({ provider: 'down', status: 'error' });
  });

  it('stays unhealthy (503) when a critical capability is down too', async () => {
    const { url } = await serve({ PAYMENT_PROVIDER: 'down', QUEUE_PROVIDER: 'down' });
    const res = await fetch(`${url}/admin/health`);
    expect(res.status).toBe(503);
    expect(((await res.json()) as HealthReport).status).toBe('unhealthy');
  });
});
