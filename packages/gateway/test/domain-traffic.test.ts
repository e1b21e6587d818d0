import { describe, expect, it } from 'vitest';
import { storeUsageSink } from '../src/gate/usage-sink.js';
import { createHttpApp } from '../src/index.js';
import { OVERHEAD_BUCKETS_MS, type UsageRow } from '../src/metering/types.js';
import { silentLogger } from '@apigate/kernel';
import { cleanupAfterEach } from './helpers/cleanup.js';
import { openStore } from '../src/index.js';
import { KEY_A, tempDir } from './helpers.js';
import { tempPostgres } from './helpers/postgres.js';
import { customer, recorder, startGate } from './helpers/gate.js';
import { call } from './helpers/http.js';

const { defer, use } = cleanupAfterEach();
const T = Date.parse('2025-03-10T12:00:00Z');
/** A histogram with `counts` placed at the buckets whose upper bounds are the keys (ms). */
const hist = (counts: Record<number, number>) => OVERHEAD_BUCKETS_MS.map((b) => counts[b] ?? 0);
const row = (r: Partial<UsageRow> & Pick<UsageRow, 'keyId' | 'userId' | 'routeId' | 'minute' | 'requests'>): UsageRow => ({
  clientErrors: 0,
  serverErrors: 0,
  bytesIn: 0,
  bytesOut: 0,
  latencyMsTotal: 0,
  latencyMsMax: 0,
  ...r,
});

// The admin traffic overview: per-route minute counters and the added-latency histogram written with each metering batch.
describe('traffic overview', () => {
  it.each([
    'sqlite',
    'postgres',
  ] as const)('adds batches per route and minute once, and reads p50/p99, top routes and top keys of a window (%s)', async (dialect) => {
    const pg = dialect === 'postgres' ? await tempPostgres() : undefined;
    if (pg) defer(() => pg.drop());
    const store = await openStore({ dataDir: await tempDir(), secretKey: KEY_A, ...(pg ? { databaseUrl: pg.url } : {}) });
    defer(() => store.close());
    const d = store.domain;
    await d.plans.create({ name: 'Free' });
    const ada = await d.users.create({ email: 'ada@example.com' });
    const bob = await d.users.create({ email: 'bob@example.com' });
    const a = (await d.keys.create({ userId: ada.id })).apiKey;
    const b = (await d.keys.create({ userId: bob.id })).apiKey;
    const weather = await d.routes.create({ pathPrefix: '/weather', upstreamUrl: 'http://127.0.0.1:9/' });
    const maps = await d.routes.create({ pathPrefix: '/maps', upstreamUrl: 'http://127.0.0.1:9/' });
    const repo = storeUsageSink(d.usage);
    const batch = {
      id: 'traffic-1',
      createdAt: new Date(T).toISOString(),
      rows: [
        // 98 fast requests and 2 slow ones on /weather in minute 0: p50 0.5 ms, p99 16 ms.
        row({
          keyId: a.id,
          userId: ada.id,
          routeId: weather.id,
          minute: T,
          requests: 60,
          serverErrors: 1,
          bytesOut: 600,
          overhead: hist({ 0.5: 59, 16: 1 }),
        }),
        row({
          keyId: b.id,
          userId: bob.id,
          routeId: weather.id,
          minute: T,
          requests: 40,
          clientErrors: 2,
          overhead: hist({ 0.5: 39, 16: 1 }),
        }),
        row({ keyId: b.id, userId: bob.id, routeId: maps.id, minute: T + 60_000, requests: 5, overhead: hist({ 2: 5 }) }),
        // refused before a route matched; no histogram (a batch of an older gateway)
        row({ keyId: b.id, userId: bob.id, routeId: null, minute: T + 60_000, requests: 3, clientErrors: 3 }),
      ],
    };
    expect(await repo.applyBatch(batch)).toBe(true);
    expect(await repo.applyBatch(batch)).toBe(false); // redelivered: counted once
    await repo.applyBatch({
      ...batch,
      id: 'traffic-2',
      rows: [
        row({ keyId: a.id, userId: ada.id, routeId: maps.id, minute: T + 60_000, requests: 1, overhead: hist({ 256: 0, [Infinity]: 1 }) }),
      ],
    });
    await d.routes.delete(maps.id);

    const o = await d.traffic.overview({ from: new Date(T), to: new Date(T + 120_000) });
    expect(o.minutes).toEqual([
      { minute: new Date(T), requests: 100, errors: 3, overhead: hist({ 0.5: 98, 16: 2 }), p50Ms: 0.5, p99Ms: 16 },
      { minute: new Date(T + 60_000), requests: 9, errors: 3, overhead: hist({ 2: 5, [Infinity]: 1 }), p50Ms: 2, p99Ms: null },
    ]);
    expect(o.totals).toEqual({ requests: 109, errors: 6, overhead: hist({ 0.5: 98, 2: 5, 16: 2, [Infinity]: 1 }), p50Ms: 0.5, p99Ms: 16 });
    expect(o.routes.map((r) => [r.routeId, r.pathPrefix, r.requests, r.errors, r.p50Ms, r.p99Ms])).toEqual([
      [weather.id, '/weather', 100, 3, 0.5, 16],
      [maps.id, null, 6, 0, 2, null], // deleted since: history stays, the prefix is gone
      [null, null, 3, 3, null, null],
    ]);
    expect(o.routes[0]!.bytesOut).toBe(600);
    expect(o.keys.map((k) => [k.keyId, k.userId, k.requests, k.errors])).toEqual([
      [a.id, ada.id, 61, 1],
      [b.id, bob.id, 48, 5],
    ]);
    // the window is [from, to) and limited
    const first = await d.traffic.overview({ from: new Date(T), to: new Date(T + 60_000), limit: 1 });
    expect([first.totals.requests, first.routes.length, first.keys.length]).toEqual([100, 1, 1]);
    const empty = await d.traffic.overview({ from: new Date(T - 60_000), to: new Date(T) });
    expect(empty).toMatchObject({ minutes: [], routes: [], keys: [], totals: { requests: 0, p50Ms: null, p99Ms: null } });
    await expect(d.traffic.overview({ from: new Date(T), to: new Date(T) })).rejects.toThrow(/from: expected a time before to/);
  });

  it('shows calls through the gateway with their added latency on GET /admin/usage/traffic', async () => {
    const upstream = await use(
      recorder(async () => {
        await new Promise((r) => setTimeout(r, 150)); // a slow upstream: not added latency
        return { status: 200 };
      }),
    );
    const gate = await startGate();
    defer(() => gate.stop());
    const a = await customer(gate.store, upstream.url);
    for (let i = 0; i < 3; i++) expect((await call(`${gate.url}/api/x`, { headers: { 'x-api-key': a.key } })).status).toBe(200);
    expect((await call(`${gate.url}/api/x`, { headers: { 'x-api-key': 'ak_wrong' } })).status).toBe(401);
    await gate.gateway.close(); // usage applied to the store

    const token = 'traffic-test-admin-token-0123456789';
    const app = createHttpApp({ kernel: gate.kernel, store: gate.store, logger: silentLogger(), adminToken: token });
    const res = await app.request('/admin/usage/traffic', { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    expect(body.totals.requests).toBe(3);
    expect(body.buckets_ms.at(-1)).toBeNull(); // the open bucket (Infinity) in JSON
    expect(body.totals.overhead.reduce((n: number, c: number) => n + c, 0)).toBe(3);
    // The 150 ms upstream wait is not counted: counted, it would put p99 in the 256 ms bucket. The 128 ms bound
    // leaves room for a cold first request on a loaded CI machine.
    expect(body.totals.p99_ms).toBeLessThanOrEqual(128);
    expect(body.routes).toEqual([expect.objectContaining({ route_id: a.route.id, path_prefix: '/api', requests: 3, errors: 0 })]);
    expect(body.keys).toEqual([expect.objectContaining({ key_id: a.apiKey.id, user_id: a.user.id, requests: 3 })]);
    expect(body.minutes.reduce((n: number, m: { requests: number }) => n + m.requests, 0)).toBe(3);

    const bad = await app.request('/admin/usage/traffic?from=2025-01-01T00:00:00Z&to=2025-03-01T00:00:00Z', {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(bad.status).toBe(400);
  });
});
