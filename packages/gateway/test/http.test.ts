import { createServer } from 'node:net';
import { createKernel, defineProvider, discoverPlugins, type HealthReport, type Kernel, silentLogger, z } from '@apigate/kernel';
import { afterEach, describe, expect, it } from 'vitest';
import { createHttpApp, openStore, type Store, startServer } from '../src/index.js';
import { KEY_A, tempDir } from './helpers.js';

const SECRET = 'sk-notify-very-secret-0123456789';

// Tiny providers: only check() and close() matter to the health endpoint.
const healthyCache = defineProvider({
  capability: 'cache',
  name: 'ok',
  description: 'always connected',
  config: z.object({}),
  create: () => ({ check: async () => ({ status: 'connected' as const, latencyMs: 1.234 }), close: async () => undefined }) as never,
});

const slowQueue = defineProvider({
  capability: 'queue',
  name: 'slow',
  description: 'answers, but slowly',
  config: z.object({}),
  create: () =>
    ({
      check: async () => ({ status: 'degraded' as const, latencyMs: 900, detail: 'high latency' }),
      close: async () => undefined,
    }) as never,
});

const brokenNotification = defineProvider({
  capability: 'notification',
  name: 'down',
  description: 'check always fails',
  config: z.object({ apiKey: z.string() }),
  env: { apiKey: 'NOTIFY_DOWN_KEY' },
  secrets: ['apiKey'],
  create: (cfg) =>
    ({
      // A careless backend error that echoes the credential: the answer must not.
      check: async () => {
        throw new Error(`connect ECONNREFUSED 127.0.0.1:1 (key ${cfg.apiKey})`);
      },
      close: async () => undefined,
    }) as never,
});

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

/** A real store and kernel (only the given capabilities) behind the gateway's app. */
async function buildApp(
  only: ('cache' | 'queue' | 'notification')[],
  secretSettings: Record<string, string> = {},
  extra: Pick<Parameters<typeof createHttpApp>[0], 'gatewayHealth'> = {},
) {
  const dataDir = await tempDir();
  const catalog = await discoverPlugins({ builtins: [healthyCache, slowQueue, brokenNotification] });
  const store: Store = await openStore({ dataDir, secretKey: KEY_A });
  open.push(store);
  for (const [k, v] of Object.entries(secretSettings)) await store.settings.set(k, v, { secret: true });
  const kernel: Kernel = await createKernel({
    catalog,
    env: { CACHE_PROVIDER: 'ok', QUEUE_PROVIDER: 'slow', NOTIFICATION_PROVIDER: 'down' },
    settings: store.settings,
    dataDir,
    only,
  });
  open.push(kernel);
  const app = createHttpApp({ kernel, store, logger: silentLogger(), ...extra });
  app.get('/test/boom', () => {
    throw new Error(`database password ${SECRET} rejected`);
  });
  return app;
}

async function serve(only: ('cache' | 'queue' | 'notification')[], secretSettings: Record<string, string> = {}) {
  const server = await startServer({ app: await buildApp(only, secretSettings), port: 0, host: '127.0.0.1' });
  open.push(server);
  return server;
}

describe('GET /admin/health', () => {
  it('answers 200 with the spec shape when every provider is connected', async () => {
    const { url } = await serve(['cache']);
    const res = await fetch(`${url}/admin/health`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = (await res.json()) as HealthReport;
    expect(body.status).toBe('healthy');
    expect(body.providers.cache).toEqual({ provider: 'ok', status: 'connected', latency_ms: 1.23 });
    expect(body.providers.payment).toEqual({ provider: null, status: 'disabled' });
    expect(Object.keys(body.providers).sort()).toEqual(['cache', 'email', 'notification', 'oauth', 'payment', 'queue', 'storage', 'tls']);
  });

  it("shows the gateway's own state and turns healthy into degraded while rate limits fail open", async () => {
    const app = await buildApp(
      ['cache'],
      {},
      {
        gatewayHealth: () => ({ status: 'degraded', latencyMs: 0, detail: 'cache unavailable: rate limits per instance' }),
      },
    );
    const server = await startServer({ app, port: 0, host: '127.0.0.1' });
    open.push(server);
    const res = await fetch(`${server.url}/admin/health`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as HealthReport & { gateway: unknown };
    expect(body.status).toBe('degraded');
    expect(body.gateway).toEqual({ status: 'degraded', detail: 'cache unavailable: rate limits per instance' });
    expect(body.providers.cache.status).toBe('connected');
  });

  it('answers 200 when degraded', async () => {
    const { url } = await serve(['cache', 'queue']);
    const res = await fetch(`${url}/admin/health`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as HealthReport;
    expect(body.status).toBe('degraded');
    expect(body.providers.queue).toEqual({ provider: 'slow', status: 'degraded', latency_ms: 900, detail: 'high latency' });
  });

  it('answers 503 with the failing provider and its error, secret masked, when unhealthy', async () => {
    // The key comes from an encrypted setting, as a deployment would store it.
    const { url } = await serve(['cache', 'notification'], { 'notification.down.api_key': SECRET });
    const res = await fetch(`${url}/admin/health`);
    expect(res.status).toBe(503);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const text = await res.text();
    expect(text).not.toContain(SECRET);
    const body = JSON.parse(text);
    expect(body.status).toBe('unhealthy');
    expect(body.providers.cache.status).toBe('connected');
    expect(body.providers.notification).toMatchObject({ provider: 'down', status: 'error' });
    expect(body.providers.notification.error).toContain('ECONNREFUSED');
    expect(typeof body.providers.notification.latency_ms).toBe('number');
  });
});

describe('HTTP app', () => {
  it('answers unknown routes with a JSON 404', async () => {
    const { url } = await serve(['cache']);
    const res = await fetch(`${url}/no/such/route`, { method: 'POST' });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: { code: 'NOT_FOUND', message: 'no route for POST /no/such/route' } });
  });

  it('answers a thrown error with a JSON 500 that carries no stack and no message text', async () => {
    const { url } = await serve(['cache']);
    const res = await fetch(`${url}/test/boom`);
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({ error: { code: 'INTERNAL', message: 'internal server error' } });
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain('at ');
  });
});

describe('startServer', () => {
  it('close() waits for an in-flight request, then stops listening', async () => {
    const app = await buildApp(['cache']);
    let release!: () => void;
    let entered!: () => void;
    const inHandler = new Promise<void>((r) => {
      entered = r;
    });
    app.get('/test/slow', async (c) => {
      entered();
      await new Promise<void>((r) => {
        release = r;
      });
      return c.json({ done: true });
    });
    const server = await startServer({ app, port: 0, host: '127.0.0.1' });
    const pending = fetch(`${server.url}/test/slow`);
    await inHandler;
    let closed = false;
    const closing = server.close().then(() => {
      closed = true;
    });
    // Still open while the request runs: the server only finishes once the handler answers.
    await new Promise((r) => setImmediate(r));
    expect(closed).toBe(false);
    release();
    const res = await pending;
    expect(await res.json()).toEqual({ done: true });
    await closing;
    await expect(fetch(`${server.url}/admin/health`)).rejects.toThrow();
    await expect(server.close()).resolves.toBeUndefined();
  });

  it('a port in use is a one-line LISTEN_FAILED error', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    try {
      const app = await buildApp(['cache']);
      await expect(startServer({ app, port, host: '127.0.0.1' })).rejects.toMatchObject({
        code: 'LISTEN_FAILED',
        message: `cannot listen on 127.0.0.1:${port}: the port is already in use by another process; stop it or choose another port`,
      });
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });
});
