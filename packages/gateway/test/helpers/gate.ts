import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createKernel, discoverPlugins, type Kernel, type Logger, silentLogger } from '@apigate/kernel';
import memoryCache from '@apigate/provider-memory-cache';
import memoryQueue from '@apigate/provider-memory-queue';
import memoryStorage from '@apigate/provider-memory-storage';
import redisCache from '@apigate/provider-redis-cache';
import redisQueue from '@apigate/provider-redis-queue';
import { createForTest } from '@apigate/provider-testkit';
import {
  createHttpApp,
  createOutbox,
  type Gateway,
  type GatewayOptions,
  installPrefixDefaults,
  openStore,
  type RunningServer,
  type Store,
  startGateway,
  startServer,
} from '../../src/index.js';
import { KEY_A, tempDir } from '../helpers.js';
import { REDIS_URL } from './caches.js';

export interface GateSetup {
  cache?: 'memory' | 'redis';
  queue?: 'memory' | 'redis';
  /** Reuse a data folder (a restart); a fresh temp folder otherwise. */
  dataDir?: string;
  /** Redis key prefix shared by the restarts of one test; fresh otherwise. */
  redisPrefix?: string;
  /** Leave the Redis prefixes to the database's install id (as `apigate serve` does) instead of a test prefix. */
  derivedPrefixes?: boolean;
  /** A Redis of the test's own (a PrivateRedis it can flush, stop and restart); the shared one otherwise. */
  redisUrl?: string;
  gateway?: Partial<Omit<GatewayOptions, 'kernel' | 'store' | 'dataDir' | 'logger'>>;
  /** Quota emails through the real outbox on the kernel's queue (queue `email.send`). */
  outbox?: boolean;
  logger?: Logger;
}

export interface RunningGate {
  url: string;
  dataDir: string;
  redisPrefix: string;
  store: Store;
  kernel: Kernel;
  gateway: Gateway;
  server: RunningServer;
  /** The shutdown order of `apigate serve`: server, gateway, kernel, store. Idempotent. */
  stop(): Promise<void>;
}

/** The real store, kernel (memory or Redis cache and queue, memory storage) and gateway behind a real server, as `serve` wires them. */
export async function startGate(s: GateSetup = {}): Promise<RunningGate> {
  const dataDir = s.dataDir ?? (await tempDir());
  const redisPrefix = s.redisPrefix ?? `apigate-test-gate-${randomUUID()}`;
  const store = await openStore({ dataDir, secretKey: KEY_A });
  if (!s.derivedPrefixes) {
    await store.settings.set('cache.redis.key_prefix', `${redisPrefix}:cache:`, { secret: false });
    await store.settings.set('queue.redis.prefix', `${redisPrefix}-queue`, { secret: false });
  }
  const catalog = await discoverPlugins({ builtins: [memoryCache, memoryQueue, memoryStorage, redisCache, redisQueue] });
  const kernel = await createKernel({
    catalog,
    env: {
      CACHE_PROVIDER: s.cache ?? 'memory',
      QUEUE_PROVIDER: s.queue ?? 'memory',
      STORAGE_PROVIDER: 'memory',
      REDIS_URL: s.redisUrl ?? REDIS_URL,
    },
    settings: store.settings,
    defaults: installPrefixDefaults(store.installId),
    dataDir,
    only: ['cache', 'queue', 'storage'],
  });
  const logger = s.logger ?? silentLogger();
  const outbox = s.outbox ? createOutbox(kernel, store.settings) : undefined;
  const gateway = await startGateway({
    kernel,
    store,
    dataDir,
    logger,
    ...(outbox ? { sendEmail: (msg, opts) => outbox.sendEmail(msg, opts) } : {}),
    ...s.gateway,
  });
  const app = createHttpApp({ kernel, store, logger, adminToken: undefined, gatewayHealth: () => gateway.health() });
  const server = await startServer({ app, port: 0, host: '127.0.0.1', front: gateway.front });
  let stopping: Promise<void> | undefined;
  return {
    url: server.url,
    dataDir,
    redisPrefix,
    store,
    kernel,
    gateway,
    server,
    stop() {
      stopping ??= (async () => {
        await server.close();
        await gateway.close();
        await kernel.close();
        await store.close();
      })();
      return stopping;
    },
  };
}

/** Deletes every Redis key a gate test made under its prefix. */
export async function sweepRedis(prefix: string): Promise<void> {
  const { provider } = await createForTest(redisCache, { url: REDIS_URL, keyPrefix: prefix });
  await provider.clear();
  await provider.close();
}

export interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A local HTTP server that records each request and answers with `answer(n)` (n counts from 1); JSON echo by default. */
export async function recorder(
  answer?: (n: number, r: Received) => { status: number; body?: string } | Promise<{ status: number; body?: string }>,
) {
  const received: Received[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const r: Received = { method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks) };
    received.push(r);
    for (const w of waiters.filter((x) => received.length >= x.n)) w.resolve();
    const a = (await answer?.(received.length, r)) ?? { status: 200, body: JSON.stringify({ path: req.url }) };
    res.writeHead(a.status, { 'content-type': 'application/json' });
    res.end(a.body ?? '');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    received,
    /** Resolves once `n` requests have arrived. */
    count(n: number): Promise<void> {
      if (received.length >= n) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ n, resolve }));
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Sets up a plan, a user on it, a key and a route to `upstream` through the domain; returns the key. */
export async function customer(store: Store, upstream: string, plan: { rpm?: number | null; monthly?: number | null } = {}) {
  const d = store.domain;
  const p = await d.plans.create({
    name: `plan-${randomUUID().slice(0, 8)}`,
    requestsPerMinute: plan.rpm ?? null,
    requestsPerMonth: plan.monthly ?? null,
  });
  const user = await d.users.create({ email: `u-${randomUUID().slice(0, 8)}@example.com`, name: 'Ada', planId: p.id });
  const { apiKey, key } = await d.keys.create({ userId: user.id, name: 'test' });
  const route =
    (await d.routes.list()).find((r) => r.pathPrefix === '/api') ??
    (await d.routes.create({ pathPrefix: '/api', upstreamUrl: upstream, stripPrefix: true }));
  return { plan: p, user, apiKey, key, route };
}
