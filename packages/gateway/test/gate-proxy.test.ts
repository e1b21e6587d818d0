import { describe, expect, it, vi } from 'vitest';
import { monthOf, openStore } from '../src/index.js';
import { KEY_A } from './helpers.js';
import { cleanupAfterEach } from './helpers/cleanup.js';
import { customer, recorder, startGate } from './helpers/gate.js';
import { call } from './helpers/http.js';

const { defer, use } = cleanupAfterEach();

const json = (b: Buffer) => JSON.parse(b.toString('utf8'));

async function setup(plan: { rpm?: number | null; monthly?: number | null } = {}) {
  const upstream = await use(recorder());
  // Mid-minute, so a test never straddles two rate-limit windows.
  const minute = Math.floor(Date.now() / 60_000) * 60_000;
  const gate = await startGate({ gateway: { pollIntervalMs: 50, now: () => minute + 30_000 } });
  defer(() => gate.stop());
  const c = await customer(gate.store, upstream.url, plan);
  await gate.gateway.catalog.settled();
  return { gate, upstream, ...c };
}

describe('the proxy path in front of the app', () => {
  it('refuses missing, malformed, unknown, revoked and expired keys with 401 JSON, before any upstream call', async () => {
    const { gate, upstream, key, apiKey, user } = await setup();
    const missing = await call(`${gate.url}/api/x`);
    expect(missing.status).toBe(401);
    expect(missing.headers['www-authenticate']).toBe('Bearer realm="apigate"');
    expect(json(missing.body).error.code).toBe('API_KEY_MISSING');
    expect(json((await call(`${gate.url}/api/x`, { headers: { 'x-api-key': 'nope' } })).body).error.code).toBe('API_KEY_INVALID');
    const unknown = `ak_${'A'.repeat(40)}`;
    expect(json((await call(`${gate.url}/api/x`, { headers: { authorization: `Bearer ${unknown}` } })).body).error.code).toBe(
      'API_KEY_INVALID',
    );

    // Expired: a second key made while the store's clock said an hour ago, expiring half an hour ago.
    const past = await openStore({ dataDir: gate.dataDir, secretKey: KEY_A, now: () => new Date(Date.now() - 3_600_000) });
    const old = await past.domain.keys.create({ userId: user.id, expiresAt: new Date(Date.now() - 1_800_000) });
    await past.close();
    await vi.waitFor(() => expect(gate.gateway.catalog.size.keys).toBe(2));
    const expired = await call(`${gate.url}/api/x`, { headers: { 'x-api-key': old.key } });
    expect(expired.status).toBe(401);
    expect(json(expired.body).error).toMatchObject({ code: 'API_KEY_EXPIRED' });

    expect((await call(`${gate.url}/api/x`, { headers: { 'x-api-key': key } })).status).toBe(200);
    await gate.store.domain.keys.revoke(apiKey.id);
    await gate.gateway.catalog.settled();
    const revoked = await call(`${gate.url}/api/x`, { headers: { 'x-api-key': key } });
    expect(revoked.status).toBe(401);
    expect(json(revoked.body).error.code).toBe('API_KEY_REVOKED');
    expect(upstream.received).toHaveLength(1);
  });

  it('answers 403 for a suspended user and 404 for a path no route owns; /admin stays the app', async () => {
    const { gate, key, user } = await setup();
    const notFound = await call(`${gate.url}/nowhere?q=1`, { headers: { 'x-api-key': key } });
    expect(notFound.status).toBe(404);
    expect(json(notFound.body).error).toEqual({ code: 'NOT_FOUND', message: 'no route for GET /nowhere' });
    const health = await call(`${gate.url}/admin/health`, { headers: { 'x-api-key': key } });
    expect(health.status).toBe(200);
    expect(json(health.body).status).toBe('healthy');

    await gate.store.domain.users.suspend(user.id);
    await gate.gateway.catalog.settled();
    const suspended = await call(`${gate.url}/api/x`, { headers: { 'x-api-key': key } });
    expect(suspended.status).toBe(403);
    expect(json(suspended.body).error.code).toBe('USER_SUSPENDED');
  });

  it('forwards with the identity injected, client copies and the key header dropped, and rate-limit headers on the answer', async () => {
    const { gate, upstream, key, user, plan, apiKey } = await setup({ rpm: 100 });
    const res = await call(`${gate.url}/api/items?page=2`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'x-user-id': 'usr_forged', 'X-Key-ID': 'key_forged', 'content-type': 'text/plain' },
      body: 'hello',
    });
    expect(res.status).toBe(200);
    expect(res.headers['x-ratelimit-limit']).toBe('100');
    expect(res.headers['x-ratelimit-remaining']).toBe('99');
    expect(Number(res.headers['x-ratelimit-reset'])).toBeGreaterThan(Date.now() / 1000);
    const got = upstream.received[0]!;
    expect(got.url).toBe('/items?page=2');
    expect(got.body.toString()).toBe('hello');
    expect(got.headers['x-user-id']).toBe(user.id);
    expect(got.headers['x-plan-id']).toBe(plan.id);
    expect(got.headers['x-key-id']).toBe(apiKey.id);
    expect(got.headers.authorization).toBeUndefined();

    await call(`${gate.url}/api/items`, { headers: { 'x-api-key': key, authorization: 'Basic dXBzdHJlYW06cGFzcw==' } });
    // The key came in X-API-Key: that header goes, the Authorization meant for the upstream stays.
    expect(upstream.received[1]!.headers['x-api-key']).toBeUndefined();
    expect(upstream.received[1]!.headers.authorization).toBe('Basic dXBzdHJlYW06cGFzcw==');
  });

  it('limits per minute (429, Retry-After) and per month (429 saying when it resets); only forwarded requests are stored as usage', async () => {
    const { gate, upstream, key, user, apiKey } = await setup({ rpm: 3, monthly: 5 });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await call(`${gate.url}/api/x`, { headers: { 'x-api-key': key } })).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const limited = await call(`${gate.url}/api/x`, { headers: { 'x-api-key': key } });
    expect(json(limited.body).error.code).toBe('RATE_LIMITED');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(limited.headers['x-ratelimit-remaining']).toBe('0');

    // A second key of the same user has its own per-minute count but shares the monthly quota.
    const second = await gate.store.domain.keys.create({ userId: user.id });
    await gate.gateway.catalog.settled();
    expect((await call(`${gate.url}/api/x`, { headers: { 'x-api-key': second.key } })).status).toBe(200);
    expect((await call(`${gate.url}/api/x`, { headers: { 'x-api-key': second.key } })).status).toBe(200);
    const quota = await call(`${gate.url}/api/x`, { headers: { 'x-api-key': second.key } });
    expect(quota.status).toBe(429);
    const err = json(quota.body).error;
    expect(err.code).toBe('QUOTA_EXCEEDED');
    expect(err.message).toMatch(/monthly quota of 5 requests is used up; it resets at \d{4}-\d\d-01T00:00:00.000Z/);
    expect(upstream.received).toHaveLength(5);

    await gate.stop();
    const store = await openStore({ dataDir: gate.dataDir, secretKey: KEY_A });
    defer(() => store.close());
    const month = monthOf(new Date());
    const usage = await store.domain.usage.forUser(user.id, month);
    expect(usage.totals.requests).toBe(5);
    expect((await store.domain.keys.get(apiKey.id)).lastUsedAt).toBeInstanceOf(Date);
  });

  it('sees routes, plans and keys written by another process (the CLI) within the poll interval', async () => {
    const { gate, upstream, key, plan } = await setup();
    const other = await openStore({ dataDir: gate.dataDir, secretKey: KEY_A });
    defer(() => other.close());
    await other.domain.routes.create({ pathPrefix: '/v2', upstreamUrl: `${upstream.url}/base` });
    await other.domain.plans.update(plan.id, { requestsPerMinute: 7 });
    await vi.waitFor(async () => expect((await call(`${gate.url}/v2/a`, { headers: { 'x-api-key': key } })).status).toBe(200));
    expect(upstream.received.at(-1)!.url).toBe('/base/v2/a');
    await vi.waitFor(async () =>
      expect((await call(`${gate.url}/v2/a`, { headers: { 'x-api-key': key } })).headers['x-ratelimit-limit']).toBe('7'),
    );
  });

  it('answers 405 for a method the route refuses without counting it', async () => {
    const { gate, upstream, key, route } = await setup({ rpm: 10 });
    await gate.store.domain.routes.update(route.id, { methods: ['GET'] });
    await gate.gateway.catalog.settled();
    const res = await call(`${gate.url}/api/x`, { method: 'DELETE', headers: { 'x-api-key': key } });
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('GET');
    expect(res.headers['x-ratelimit-limit']).toBeUndefined();
    expect((await call(`${gate.url}/api/x`, { headers: { 'x-api-key': key } })).headers['x-ratelimit-remaining']).toBe('9');
    expect(upstream.received).toHaveLength(1);
  });
});
