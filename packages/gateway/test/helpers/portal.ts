import { type AnyProviderDefinition, type CapabilityName, createKernel, discoverPlugins, type Kernel, silentLogger } from '@apigate/kernel';
import logEmail, { type LoggedEmail, type LogEmail } from '@apigate/provider-log-email';
import memoryCache from '@apigate/provider-memory-cache';
import memoryQueue from '@apigate/provider-memory-queue';
import { CookieJar } from 'tough-cookie';
import { expect, vi } from 'vitest';
import { freshPostgresUrl, type TestDialect } from './domain.js';
import {
  createHttpApp,
  type HttpAppOptions,
  openStore,
  type PortalMailer,
  type Store,
  startDelivery,
  startServer,
} from '../../src/index.js';
import { KEY_A, tempDir } from '../helpers.js';
import { cleanupAfterEach } from './cleanup.js';

/** Cheap scrypt for the flows (the default cost is tested on its own in portal-password). */
export const FAST_SCRYPT = { ln: 12, r: 8, p: 1 };
export const PASSWORD = 'correct horse battery';

export interface PortalClient {
  jar: CookieJar;
  /** A JSON call with this client's cookies; sends X-Requested-With unless `csrf: false`. */
  call(
    method: string,
    path: string,
    body?: unknown,
    opts?: { csrf?: boolean; headers?: Record<string, string> },
  ): Promise<{ status: number; headers: Headers; body: any }>;
}

export interface PortalHarness {
  url: string;
  store: Store;
  kernel: Kernel;
  clock: { now: Date };
  /** The log email provider: every message it was handed. */
  mail: LogEmail;
  client(): PortalClient;
  /** Waits for the `n`th (1-based) email to `to` whose subject matches, and returns it. */
  email(to: string, subject: RegExp, n?: number): Promise<LoggedEmail>;
  /** Signs up, verifies through the emailed link and logs in: a ready customer. */
  customer(email: string, name?: string): Promise<PortalClient>;
}

/** The token in an emailed link. */
export function tokenIn(msg: LoggedEmail): string {
  const m = /[?&]token=([0-9A-Za-z]+)/.exec(msg.text ?? '');
  expect(m, `no token link in "${msg.subject}"`).not.toBeNull();
  return m![1]!;
}

export function linkIn(msg: LoggedEmail): string {
  return /(https?:\/\/\S+token=[0-9A-Za-z]+)/.exec(msg.text ?? '')![1]!;
}

/**
 * The whole gateway app on a real port: SQLite store, a kernel with the memory cache, memory
 * queue and log email providers, the delivery outbox and its workers (unless `outbox: false`,
 * then portal emails go to the provider directly), and a default plan.
 */
export function portalHarness() {
  const cleanup = cleanupAfterEach();
  return async function start(
    opts: {
      dialect?: TestDialect;
      outbox?: boolean;
      plan?: boolean;
      app?: Partial<HttpAppOptions>;
      env?: Record<string, string>;
      providers?: AnyProviderDefinition[];
      only?: CapabilityName[];
    } = {},
  ): Promise<PortalHarness> {
    const dataDir = await tempDir();
    const clock = { now: new Date() };
    const now = () => clock.now;
    const databaseUrl = opts.dialect === 'postgres' ? await freshPostgresUrl() : undefined;
    const store = await cleanup.use(openStore({ dataDir, secretKey: KEY_A, now, ...(databaseUrl ? { databaseUrl } : {}) }));
    const kernel = await cleanup.use(
      createKernel({
        catalog: await discoverPlugins({ builtins: [memoryCache, memoryQueue, logEmail, ...(opts.providers ?? [])] }),
        env: { CACHE_PROVIDER: 'memory', QUEUE_PROVIDER: 'memory', EMAIL_PROVIDER: 'log', ...opts.env },
        settings: store.settings,
        dataDir,
        only: ['cache', 'queue', 'email', ...(opts.only ?? [])],
      }),
    );
    let outbox: PortalMailer | undefined;
    if (opts.outbox !== false) {
      const delivery = startDelivery({ kernel, settings: store.settings });
      if (delivery) {
        cleanup.defer(() => delivery.close());
        outbox = delivery.outbox;
      }
    }
    if (opts.plan !== false) await store.domain.plans.create({ name: 'Free', requestsPerMinute: 60, requestsPerMonth: 1000 });
    const app = createHttpApp({
      kernel,
      store,
      logger: silentLogger(),
      adminToken: '',
      outbox,
      ...opts.app,
      portal: { scrypt: FAST_SCRYPT, now, ...opts.app?.portal },
    });
    const server = await cleanup.use(startServer({ app, port: 0, host: '127.0.0.1', closeTimeoutMs: 1000 }));
    const mail = kernel.active.find((a) => a.capability === 'email')?.instance as LogEmail;

    const client = (): PortalClient => {
      const jar = new CookieJar();
      return {
        jar,
        async call(method, path, body, o = {}) {
          const url = `${server.url}${path}`;
          const headers: Record<string, string> = { ...o.headers };
          if (o.csrf !== false) headers['x-requested-with'] = 'XMLHttpRequest';
          if (body !== undefined) headers['content-type'] = 'application/json';
          const cookie = await jar.getCookieString(url);
          if (cookie) headers.cookie = cookie;
          const res = await fetch(url, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
          for (const sc of res.headers.getSetCookie()) await jar.setCookie(sc, url);
          const text = await res.text();
          return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
        },
      };
    };

    const email = async (to: string, subject: RegExp, n = 1) => {
      let found: LoggedEmail | undefined;
      await vi.waitFor(
        () => {
          const hits = mail.messages().filter((m) => m.to.includes(to) && subject.test(m.subject));
          expect(hits.length).toBeGreaterThanOrEqual(n);
          found = hits[n - 1];
        },
        { timeout: 15_000, interval: 20 },
      );
      return found!;
    };

    return {
      url: server.url,
      store,
      kernel,
      clock,
      mail,
      client,
      email,
      async customer(address, name = '') {
        const c = client();
        expect((await c.call('POST', '/portal/api/signup', { email: address, password: PASSWORD, name })).status).toBe(202);
        const verified = await fetch(linkIn(await email(address, /Confirm your email/)));
        expect(verified.status).toBe(200);
        expect((await c.call('POST', '/portal/api/login', { email: address, password: PASSWORD })).status).toBe(200);
        return c;
      },
    };
  };
}
