import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  createHttpApp,
  type Gateway,
  GATEWAY_SETTINGS,
  openStore,
  type RunningServer,
  type Store,
  selectedPayment,
  startDelivery,
  startGateway,
  startPaymentWorker,
  startServer,
} from '@apigate/gateway';
import { type CapabilityName, createKernel, discoverPlugins, type Kernel, silentLogger, type Worker } from '@apigate/kernel';
import dummyPayment from '@apigate/provider-dummy-payment';
import logEmail, { type LogEmail } from '@apigate/provider-log-email';
import memoryCache from '@apigate/provider-memory-cache';
import memoryQueue from '@apigate/provider-memory-queue';
import memoryStorage from '@apigate/provider-memory-storage';
import { freePort } from '@apigate/provider-testkit';
import { mountWebPages } from '../src/index.js';

export const ADMIN_TOKEN = 'web-test-admin-token-0123456789';
export const SECRET_KEY = 'web-test-secret-key-that-is-long-enough-01';

export interface Site {
  url: string;
  store: Store;
  kernel: Kernel;
  mail: LogEmail;
  gateway: Gateway;
  upstreamCalls: string[];
  /** How many times the pages asked for the setting keys (a loader, as the app passes it). */
  settingKeyLoads: { count: number };
  close(): Promise<void>;
}

export interface SiteOptions {
  /** The port to listen on (default: a free one); known up front when an IdP must register the callback URL. */
  port?: number;
  /** More provider plugins, their env vars and capabilities (e.g. the oidc plugin for `oauth`). */
  plugins?: { builtins: Parameters<typeof discoverPlugins>[0]['builtins']; env: Record<string, string>; only: CapabilityName[] };
}

/**
 * The whole product on a real port, as `apigate serve` puts it together: store, kernel (memory
 * cache, queue and storage, log email, dummy payment), delivery outbox, the gateway's proxy path
 * with metering, the payment worker, and the HTTP app with the pages. A route /echo forwards to
 * a local upstream; plans Free (default) and Pro (paid).
 */
export async function startSite(o: SiteOptions = {}): Promise<Site> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'apigate-web-'));
  const port = o.port ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;
  const logger = silentLogger();
  const store = await openStore({ dataDir, secretKey: SECRET_KEY });
  // The dummy provider's checkout pages are the ones this package serves.
  await store.settings.set('payment.dummy.checkout_base_url', `${url}/portal/dummy-checkout`, { secret: false });
  const kernel = await createKernel({
    catalog: await discoverPlugins({
      builtins: [memoryCache, memoryQueue, memoryStorage, logEmail, dummyPayment, ...(o.plugins?.builtins ?? [])],
    }),
    env: {
      CACHE_PROVIDER: 'memory',
      QUEUE_PROVIDER: 'memory',
      STORAGE_PROVIDER: 'memory',
      EMAIL_PROVIDER: 'log',
      PAYMENT_PROVIDER: 'dummy',
      NOTIFICATION_PROVIDER: 'none',
      ...o.plugins?.env,
    },
    settings: store.settings,
    dataDir,
    only: ['cache', 'queue', 'storage', 'email', 'payment', ...(o.plugins?.only ?? [])],
  });
  const upstreamCalls: string[] = [];
  const upstream: Server = createServer((req, res) => {
    upstreamCalls.push(req.url ?? '');
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ hello: 'world', path: req.url }));
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as { port: number }).port}`;

  await store.domain.plans.create({ name: 'Free', requestsPerMinute: 60, requestsPerMonth: 1000 });
  await store.domain.plans.create({ name: 'Pro', requestsPerMinute: 600, requestsPerMonth: 100000, priceCents: 1900 });
  await store.domain.routes.create({ pathPrefix: '/echo', upstreamUrl, stripPrefix: true });

  const delivery = startDelivery({ kernel, settings: store.settings, logger });
  const gateway = await startGateway({
    kernel,
    store,
    dataDir,
    logger,
    pollIntervalMs: 200,
    meterIntervalMs: 200,
    sendEmail: delivery?.outbox.sendEmail.bind(delivery.outbox),
  });
  const pay = selectedPayment(kernel)!;
  const payments: Worker = startPaymentWorker(kernel.get('queue'), {
    store,
    logger,
    webhooks: gateway.webhooks,
    providerName: pay.name,
    payment: pay.payment,
  });
  const settingKeys = new Map(
    Object.entries(GATEWAY_SETTINGS).map(([k, v]) => [k, { validate: v.validate, secret: !!v.secret, envVar: v.envVar }]),
  );
  // A provider's secret field, as the app's settings keys list it (apigate settings keys).
  settingKeys.set('payment.dummy.webhook_secret', {
    validate: (v) => (v.length >= 16 ? undefined : 'too short'),
    secret: true,
    envVar: undefined,
  });
  const settingKeyLoads = { count: 0 };
  const app = createHttpApp({
    kernel,
    store,
    logger,
    adminToken: ADMIN_TOKEN,
    bindHost: '127.0.0.1',
    ...(delivery ? { outbox: delivery.outbox } : {}),
    portal: { scrypt: { ln: 12, r: 8, p: 1 } },
    // A loader, as the app passes it: the keys are listed when the settings page first needs them.
    pages: (a) =>
      mountWebPages(a, {
        store,
        logger,
        kernel,
        adminToken: ADMIN_TOKEN,
        webhooks: gateway.webhooks,
        settingKeys: async () => {
          settingKeyLoads.count++;
          return settingKeys;
        },
      }),
  });
  const server: RunningServer = await startServer({ app, port, host: '127.0.0.1', front: gateway.front, closeTimeoutMs: 1000 });
  const mail = kernel.active.find((a) => a.capability === 'email')?.instance as LogEmail;
  return {
    url,
    store,
    kernel,
    mail,
    gateway,
    upstreamCalls,
    settingKeyLoads,
    async close() {
      await server.close();
      await payments.close();
      await gateway.close();
      await delivery?.close();
      await kernel.close();
      await store.close();
      await new Promise((r) => upstream.close(r));
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Polls `check` until it returns a value (not undefined), or fails after `ms`. */
export async function eventually<T>(check: () => Promise<T | undefined> | T | undefined, what: string, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
