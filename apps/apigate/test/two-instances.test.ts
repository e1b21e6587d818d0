// Issue 13 "How it will be checked", through the built binary: one PostgreSQL database (created
// and dropped here) and one Redis, two `apigate serve` processes and the CLI pointed at them.
// A plan with --rpm 10: 16 calls alternated over both give exactly 10 x 200 and 6 x 429; a signed
// payment webhook posted to both is applied once; a key revoked through one is refused by the
// other within a second; after both stop `usage show` counts 10; no SQLite file exists anywhere.
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { connect } from 'node:tls';
import { openStore } from '@apigate/gateway';
import { DEV_WEBHOOK_SECRET, DummyPayment } from '@apigate/provider-dummy-payment';
import { startPebble } from '@apigate/provider-testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, cleanEnv, ok, type Served, serve, startUpstream, tempDir, tempPostgres, type Upstream, waitFor } from './helpers.js';

let upstream: Upstream;
let db: Awaited<ReturnType<typeof tempPostgres>>;
const running: Served[] = [];

beforeAll(async () => {
  upstream = await startUpstream();
  db = await tempPostgres('apigate_two');
});
afterAll(async () => {
  for (const s of running.splice(0)) if (s.child.exitCode === null) await s.stop();
  await upstream?.close();
  await db?.drop();
});

const SECRET_KEY = randomBytes(24).toString('hex');
const ADMIN_TOKEN = randomBytes(24).toString('hex');
const CACHE_PREFIX = `apigate-two-${randomBytes(4).toString('hex')}:`;

/** Each process has a data dir of its own (nothing may be written there but the serve address); one database, one Redis, one key. */
function envFor(dataDir: string): NodeJS.ProcessEnv {
  return cleanEnv({
    APIGATE_DATA_DIR: dataDir,
    APIGATE_DATABASE_URL: db.url,
    APIGATE_SECRET_KEY: SECRET_KEY,
    APIGATE_ADMIN_TOKEN: ADMIN_TOKEN,
    CACHE_PROVIDER: 'redis',
    QUEUE_PROVIDER: 'redis',
    REDIS_URL: 'redis://127.0.0.1:6379',
    // The default prefixes come from the database's install id (new here); the cache's explicit anyway, the same for all.
    REDIS_KEY_PREFIX: CACHE_PREFIX,
    PAYMENT_PROVIDER: 'dummy',
  });
}

/** One call through the gateway on a new connection; its status. */
async function call(url: string, key: string): Promise<number> {
  const r = await fetch(`${url}/up/x`, { headers: { 'x-api-key': key, connection: 'close' }, signal: AbortSignal.timeout(15_000) });
  await r.arrayBuffer();
  return r.status;
}

/** The files ending in .db, .db-wal or .db-shm in `dir`. */
const sqliteFiles = (dir: string) => readdirSync(dir).filter((f) => /\.(db|sqlite)(-wal|-shm|-journal)?$/.test(f));

describe('two apigate serve processes on one PostgreSQL database and one Redis', () => {
  it('share limits, apply a webhook once, see a revoked key within a second and count the usage, with no SQLite file', async () => {
    const dirs = { cli: tempDir('two-cli'), a: tempDir('two-a'), b: tempDir('two-b') };
    const env = envFor(dirs.cli);
    const status = JSON.parse(await ok(['db', 'status', '--json'], env));
    expect(status.dialect).toBe('postgres');

    // Everything through the CLI.
    await ok(['plans', 'create', 'ten', '--rpm', '10', '--default'], env);
    const partner = JSON.parse(await ok(['plans', 'create', 'partner', '--monthly', '100000', '--json'], env)) as { id: string };
    await ok(['users', 'create', 'ann@example.com'], env);
    const bob = JSON.parse(await ok(['users', 'create', 'bob@example.com', '--json'], env)) as { id: string };
    await ok(['routes', 'add', '/up', upstream.url, '--strip-prefix'], env);
    const annKey = JSON.parse(await ok(['keys', 'create', '--user', 'ann@example.com', '--json'], env)).key as string;
    const bobKey = JSON.parse(await ok(['keys', 'create', '--user', 'bob@example.com', '--json'], env)) as { id: string; key: string };
    // The webhook's price maps to the partner plan (a plan without a price: serve's plan sync leaves it alone).
    const store = await openStore({ dataDir: dirs.cli, databaseUrl: db.url, secretKey: SECRET_KEY });
    try {
      await store.mappings.put({ provider: 'dummy', entityType: 'plan', localId: partner.id, externalId: 'price_dummy_partner' });
    } finally {
      await store.close();
    }

    const a = await serve(BIN, envFor(dirs.a));
    running.push(a);
    const b = await serve(BIN, envFor(dirs.b));
    running.push(b);

    // 16 calls alternated over both instances: one limit for the key, whichever instance answers.
    const statuses: number[] = [];
    for (let i = 0; i < 16; i++) statuses.push(await call(i % 2 === 0 ? a.url : b.url, annKey));
    expect(
      statuses.filter((s) => s === 200),
      statuses.join(' '),
    ).toHaveLength(10);
    expect(
      statuses.filter((s) => s === 429),
      statuses.join(' '),
    ).toHaveLength(6);

    // One signed payment webhook posted to both: stored once, applied once.
    const signer = new DummyPayment({ checkoutBaseUrl: 'http://localhost/c', webhookSecret: DEV_WEBHOOK_SECRET });
    const hook = signer.signEvent({
      id: 'evt_two_instances',
      type: 'checkout.completed',
      occurredAt: new Date(),
      customerId: 'cus_dummy_bob',
      localRefs: { userId: bob.id },
      subscription: {
        subscriptionId: 'sub_dummy_bob',
        customerId: 'cus_dummy_bob',
        priceId: 'price_dummy_partner',
        status: 'active',
        cancelAtPeriodEnd: false,
      },
    });
    const posted = await Promise.all(
      [a, b].map((s) => fetch(`${s.url}/webhooks/dummy`, { method: 'POST', headers: hook.headers, body: Buffer.from(hook.rawBody) })),
    );
    expect(posted.map((r) => r.status)).toEqual([200, 200]);
    const events = async () =>
      JSON.parse(await ok(['payments', 'events', 'list', '--json'], env)).data as { event_id: string; status: string; attempts: number }[];
    await waitFor('the webhook applied', async () => (await events()).some((e) => e.status === 'applied'), 30_000);
    // Time for a second application to show up, if there were one.
    await new Promise((r) => setTimeout(r, 1500));
    expect((await events()).map((e) => [e.event_id, e.status, e.attempts])).toEqual([['evt_two_instances', 'applied', 1]]);
    const subs = JSON.parse(await ok(['subscriptions', 'list', '--json'], env)).data as { user_id: string; plan_id: string }[];
    expect(subs.map((s) => [s.user_id, s.plan_id])).toEqual([[bob.id, partner.id]]);
    expect(JSON.parse(await ok(['users', 'get', 'bob@example.com', '--json'], env)).plan_id).toBe(partner.id);

    // A key revoked through instance a is refused by instance b within a second.
    expect(await call(b.url, bobKey.key)).toBe(200);
    const revoked = await fetch(`${a.url}/admin/keys/${bobKey.id}/revoke`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(revoked.status).toBe(200);
    const t0 = Date.now();
    let refusedAfter = -1;
    while (Date.now() - t0 < 5000) {
      if ((await call(b.url, bobKey.key)) === 401) {
        refusedAfter = Date.now() - t0;
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(refusedAfter, 'instance b refused the revoked key after (ms)').toBeGreaterThanOrEqual(0);
    expect(refusedAfter, 'instance b refused the revoked key after (ms)').toBeLessThanOrEqual(1000);

    // Both stop gracefully; the metered usage of both is in the database.
    const codes = await Promise.all([a.stop(), b.stop()]);
    running.splice(0);
    expect(codes, `${a.logs().slice(-3000)}\n${b.logs().slice(-3000)}`).toEqual([0, 0]);
    const usage = JSON.parse(await ok(['usage', 'show', '--user', 'ann@example.com', '--json'], env));
    expect(usage.totals.requests).toBe(10);

    for (const dir of Object.values(dirs)) expect(sqliteFiles(dir), dir).toEqual([]);
  }, 240_000);

  it('order a TLS certificate once and serve it from both', async () => {
    const pebble = await startPebble();
    try {
      const tls = {
        TLS_ACME_ENABLED: 'true',
        TLS_ACME_EMAIL: 'ops@apigate.test',
        TLS_ACME_DIRECTORY: pebble.directory,
        TLS_ACME_CA_FILE: pebble.caFile,
        APIGATE_TLS_DOMAINS: 'two.apigate.test',
        APIGATE_HTTPS_PORT: '0',
      };
      // Pebble dials one port for HTTP-01: instance a's (so it is listening before b starts). Whichever
      // instance orders, the answer is in the shared Redis; the other waits for the certificate or finds it stored.
      const started = [await serve(BIN, { ...envFor(tempDir('two-tls-a')), ...tls }, undefined, pebble.httpPort)];
      running.push(started[0]!);
      started.push(await serve(BIN, { ...envFor(tempDir('two-tls-b')), ...tls }));
      running.push(started[1]!);
      const httpsPort = (s: Served) => Number(/apigate listening on https:\/\/127\.0\.0\.1:(\d+)/.exec(s.logs())?.[1] ?? 0);
      await waitFor('both instances on HTTPS', () => started.every((s) => httpsPort(s) > 0), 120_000);
      const logs = started.map((s) => s.logs());
      const count = (re: RegExp) => logs.map((l) => l.split('\n').filter((x) => re.test(x)).length);
      const sum = (n: number[]) => n.reduce((x, y) => x + y, 0);
      expect(sum(count(/ordering a certificate for two\.apigate\.test/)), logs.join('\n----\n')).toBe(1);
      expect(sum(count(/obtained a certificate for two\.apigate\.test/))).toBe(1);
      const roots = await pebble.roots();
      const serials = await Promise.all(
        started.map(
          (s) =>
            new Promise<string>((resolve, reject) => {
              const c = connect({ host: '127.0.0.1', port: httpsPort(s), servername: 'two.apigate.test', ca: roots }, () => {
                if (!c.authorized) reject(new Error(`not authorized: ${c.authorizationError}`));
                resolve(c.getPeerCertificate().serialNumber);
                c.end();
              });
              c.once('error', reject);
            }),
        ),
      );
      expect(serials[0]).toBe(serials[1]);
      expect(await Promise.all(started.map((s) => s.stop()))).toEqual([0, 0]);
      running.splice(0);
    } finally {
      await pebble.close();
    }
  }, 240_000);
});
