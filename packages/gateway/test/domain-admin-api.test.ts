import { createKernel, discoverPlugins, silentLogger } from '@apigate/kernel';
import { afterEach, describe, expect, it } from 'vitest';
import { type ChangeEvent, createHttpApp, openStore, type Store, startServer } from '../src/index.js';
import { KEY_A, tempDir } from './helpers.js';

const ADMIN = 'env-admin-token-0123456789abcdef';

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

/** The real app (store, kernel, admin API) on a real port, and a fetch that sends JSON with a token. */
async function serve(opts: { adminToken?: string } = { adminToken: ADMIN }) {
  const dataDir = await tempDir();
  const store: Store = await openStore({ dataDir, secretKey: KEY_A });
  open.push(store);
  const kernel = await createKernel({
    catalog: await discoverPlugins({ builtins: [] }),
    env: {},
    settings: store.settings,
    dataDir,
    only: [],
  });
  open.push(kernel);
  const server = await startServer({ app: createHttpApp({ kernel, store, logger: silentLogger(), ...opts }), port: 0, host: '127.0.0.1' });
  open.push(server);
  const call = async (method: string, path: string, body?: unknown, token: string | null = ADMIN) => {
    const headers: Record<string, string> = {};
    if (token !== null) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers,
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
  };
  return { store, url: server.url, call };
}

describe('admin API authentication', () => {
  it('keeps /admin/health public and answers 401 JSON without a token or with a wrong one', async () => {
    const { call } = await serve();
    expect((await call('GET', '/admin/health', undefined, null)).status).toBe(200);
    for (const token of [null, 'wrong-token-0123456789', 'agt_notarealtoken']) {
      const r = await call('GET', '/admin/users', undefined, token);
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toBe('Bearer realm="apigate-admin"');
      expect(r.body.error.code).toBe('UNAUTHORIZED');
      expect(r.body.error.message).toMatch(token === null ? /send an admin token as "Authorization: Bearer <token>"/ : /not valid/);
    }
    const basic = await fetch(`${(await serve()).url}/admin/plans`, {
      headers: { authorization: `Basic ${Buffer.from(`x:${ADMIN}`).toString('base64')}` },
    });
    expect(basic.status).toBe(401);
    // An unknown admin path does not tell a caller without a token that it does not exist.
    expect((await call('GET', '/admin/nothing', undefined, null)).status).toBe(401);
    expect((await call('GET', '/admin/nothing')).status).toBe(404);
    expect((await call('GET', '/admin/plans')).status).toBe(200);
  });

  it('accepts database tokens until they are revoked', async () => {
    const { call, store } = await serve({ adminToken: '' });
    const { adminToken, token } = await store.domain.adminTokens.create({ name: 'ci' });
    expect(token).toMatch(/^agt_[0-9A-Za-z]{40}$/);
    expect((await call('GET', '/admin/plans', undefined, ADMIN)).status).toBe(401); // no fixed token configured
    expect((await call('GET', '/admin/plans', undefined, token)).status).toBe(200);
    expect((await store.domain.adminTokens.list())[0]!.lastUsedAt).toBeInstanceOf(Date);
    await store.domain.adminTokens.revoke(adminToken.id);
    expect((await call('GET', '/admin/plans', undefined, token)).status).toBe(401);
  });

  it('refuses a short APIGATE_ADMIN_TOKEN at start-up in one line', async () => {
    await expect(serve({ adminToken: 'short' })).rejects.toThrow(
      /^APIGATE_ADMIN_TOKEN is too short \(5 characters\): expected at least 16, e\.g\. the output of `openssl rand -base64 32`$/,
    );
  });
});

describe('admin API', () => {
  it('manages plans with snake_case JSON and field-named errors', async () => {
    const { call } = await serve();
    const free = await call('POST', '/admin/plans', { name: 'Free', requests_per_minute: 5, requests_per_month: 100 });
    expect(free.status).toBe(201);
    expect(free.body).toMatchObject({
      name: 'Free',
      requests_per_minute: 5,
      requests_per_month: 100,
      price_cents: 0,
      currency: 'usd',
      is_default: true,
      overage_cents_per_request: null,
    });
    expect(free.body.created_at).toMatch(/^\d{4}-\d\d-\d\dT/);
    const pro = await call('POST', '/admin/plans', { name: 'Pro', price_cents: 4900, overage_cents_per_request: 0.02 });
    expect(pro.body.is_default).toBe(false);

    expect(await call('POST', '/admin/plans', { name: 'free' })).toMatchObject({
      status: 409,
      body: { error: { code: 'PLAN_NAME_TAKEN', field: 'name' } },
    });
    expect(await call('POST', '/admin/plans', { name: 'X', trial_days: -1 })).toMatchObject({
      status: 400,
      body: { error: { code: 'INVALID_INPUT', field: 'trial_days', message: 'plan: trial_days: must not be negative' } },
    });
    expect(await call('POST', '/admin/plans', { name: 'X', speed: 'fast' })).toMatchObject({
      status: 400,
      body: { error: { field: 'speed' } },
    });
    expect(await call('POST', '/admin/plans', '{"name": ')).toMatchObject({
      status: 400,
      body: { error: { code: 'INVALID_INPUT', message: expect.stringMatching(/^request body: expected a JSON object/) } },
    });
    expect(await call('POST', '/admin/plans', [1])).toMatchObject({ status: 400 });

    expect((await call('POST', `/admin/plans/${pro.body.id}/default`)).body.is_default).toBe(true);
    expect((await call('PATCH', `/admin/plans/${free.body.id}`, { requests_per_month: null })).body.requests_per_month).toBeNull();
    const list = await call('GET', '/admin/plans');
    expect(list.body.data.map((p: { name: string; is_default: boolean }) => [p.name, p.is_default])).toEqual([
      ['Free', false],
      ['Pro', true],
    ]);
    expect((await call('GET', '/admin/plans/plan_nope')).body).toEqual({
      error: { code: 'NOT_FOUND', message: 'no plan with id plan_nope' },
    });
    expect((await call('DELETE', `/admin/plans/${free.body.id}`)).body).toEqual({ id: free.body.id, deleted: true });
  });

  it('manages users, keys and routes, and tells the in-process caches', async () => {
    const { call, store } = await serve();
    const events: ChangeEvent[] = [];
    store.domain.changes.on('change', (e) => events.push(e));
    const plan = (await call('POST', '/admin/plans', { name: 'Free' })).body;

    const user = await call('POST', '/admin/users', { email: 'Ada@Example.com', name: 'Ada' });
    expect(user).toMatchObject({
      status: 201,
      body: { email: 'ada@example.com', plan_id: plan.id, status: 'active', email_verified: false },
    });
    expect(user.body).not.toHaveProperty('password_hash');
    expect(await call('POST', '/admin/users', { email: 'ada@example.com' })).toMatchObject({
      status: 409,
      body: { error: { code: 'EMAIL_TAKEN', field: 'email' } },
    });
    expect(await call('POST', '/admin/users', { email: 'bob@example.com', plan_id: 'plan_nope' })).toMatchObject({
      status: 400,
      body: { error: { code: 'PLAN_NOT_FOUND', field: 'plan_id', message: 'user: plan_id: no plan with id plan_nope' } },
    });
    expect(await call('POST', '/admin/users', { email: 'eve@example.com', password_hash: 'scrypt$x' })).toMatchObject({
      status: 400,
      body: { error: { field: 'password_hash' } },
    });
    expect((await call('POST', `/admin/users/${user.body.id}/suspend`)).body.status).toBe('suspended');
    expect((await call('POST', `/admin/users/${user.body.id}/activate`)).body.status).toBe('active');
    expect((await call('PATCH', `/admin/users/${user.body.id}`, { name: 'Ada L.' })).body.name).toBe('Ada L.');
    await call('POST', '/admin/users', { email: 'bob@example.com' });
    const page = await call('GET', '/admin/users?limit=1');
    expect(page.body.data).toHaveLength(1);
    expect(page.body.next_cursor).toEqual(expect.any(String));
    const rest = await call('GET', `/admin/users?limit=1&cursor=${page.body.next_cursor}`);
    expect(rest.body).toMatchObject({ data: [{ email: expect.any(String) }], next_cursor: null });
    expect((await call('GET', '/admin/users?status=gone')).status).toBe(400);
    expect((await call('GET', '/admin/users?limit=abc')).body.error.field).toBe('limit');

    const key = await call('POST', '/admin/keys', { user_id: user.body.id, name: 'ci', expires_at: '2999-01-01T00:00:00Z' });
    expect(key.status).toBe(201);
    expect(key.body.key).toMatch(/^ak_/);
    expect(key.body).toMatchObject({
      user_id: user.body.id,
      name: 'ci',
      status: 'active',
      expires_at: '2999-01-01T00:00:00.000Z',
      prefix: key.body.key.slice(0, 11),
    });
    expect((await store.domain.keys.check(key.body.key)).ok).toBe(true);
    const keys = await call('GET', `/admin/keys?user_id=${user.body.id}`);
    expect(keys.body.data).toHaveLength(1);
    expect(JSON.stringify(keys.body)).not.toContain(key.body.key);
    expect(keys.body.data[0]).not.toHaveProperty('hash');
    expect((await call('POST', `/admin/keys/${key.body.id}/revoke`)).body.status).toBe('revoked');
    expect((await call('GET', `/admin/keys?user_id=${user.body.id}&active=true`)).body.data).toEqual([]);
    expect(await call('POST', '/admin/keys', { user_id: 'usr_nope' })).toMatchObject({
      status: 400,
      body: { error: { field: 'user_id' } },
    });

    const route = await call('POST', '/admin/routes', {
      path_prefix: '/weather',
      upstream_url: 'http://127.0.0.1:3000',
      strip_prefix: true,
      methods: ['get'],
    });
    expect(route).toMatchObject({
      status: 201,
      body: { path_prefix: '/weather', strip_prefix: true, methods: ['GET'], timeout_ms: null, enabled: true },
    });
    expect(await call('POST', '/admin/routes', { path_prefix: '/weather', upstream_url: 'http://x' })).toMatchObject({
      status: 409,
      body: { error: { field: 'path_prefix' } },
    });
    expect((await call('PATCH', `/admin/routes/${route.body.id}`, { timeout_ms: 2500 })).body.timeout_ms).toBe(2500);
    expect((await call('GET', '/admin/routes')).body.data).toHaveLength(1);
    expect((await call('DELETE', `/admin/routes/${route.body.id}`)).status).toBe(200);
    expect((await call('GET', `/admin/routes/${route.body.id}`)).status).toBe(404);

    expect((await call('DELETE', `/admin/users/${user.body.id}`)).body).toEqual({ id: user.body.id, deleted: true });
    expect(new Set(events.map((e) => e.entity))).toEqual(new Set(['plans', 'users', 'keys', 'routes']));
    expect(events).toContainEqual(expect.objectContaining({ entity: 'keys', action: 'revoked', id: key.body.id }));
  });

  it('reads usage per user (with quota), per key and per month', async () => {
    const { call, store } = await serve();
    const d = store.domain;
    await d.plans.create({ name: 'Free', requestsPerMonth: 100 });
    const user = await d.users.create({ email: 'ada@example.com' });
    const { apiKey } = await d.keys.create({ userId: user.id });
    const at = Date.parse('2025-02-14T10:00:00Z');
    await d.usage.applyBatch('b1', [
      { keyId: apiKey.id, userId: user.id, at, requests: 30, bytesOut: 300, errors: 2 },
      { keyId: apiKey.id, userId: user.id, at: at + 60_000, requests: 10 },
    ]);

    const mine = await call('GET', `/admin/usage?user_id=${user.id}&month=2025-02`);
    expect(mine.body).toEqual({
      user_id: user.id,
      month: '2025-02',
      totals: { requests: 40, bytes_in: 0, bytes_out: 300, errors: 2 },
      keys: [{ key_id: apiKey.id, requests: 40, bytes_in: 0, bytes_out: 300, errors: 2 }],
      quota: { limit: 100, remaining: 60, resets_at: '2025-03-01T00:00:00.000Z' },
    });
    expect((await call('GET', `/admin/usage?key_id=${apiKey.id}&month=2025-02`)).body).toMatchObject({
      key_id: apiKey.id,
      totals: { requests: 40 },
    });
    expect((await call('GET', '/admin/usage?month=2025-02')).body).toEqual({
      month: '2025-02',
      data: [{ user_id: user.id, requests: 40, bytes_in: 0, bytes_out: 300, errors: 2 }],
    });
    expect((await call('GET', '/admin/usage?month=2025-01')).body.data).toEqual([]);
    const minutes = await call('GET', `/admin/usage/minutes?key_id=${apiKey.id}&from=2025-02-14T09:00:00Z&to=2025-02-14T11:00:00Z`);
    expect(minutes.body.data.map((m: { minute: string; requests: number }) => [m.minute, m.requests])).toEqual([
      ['2025-02-14T10:00:00.000Z', 30],
      ['2025-02-14T10:01:00.000Z', 10],
    ]);
    expect(await call('GET', '/admin/usage?month=2025-2')).toMatchObject({ status: 400, body: { error: { field: 'month' } } });
    expect(await call('GET', '/admin/usage/minutes?from=yesterday&key_id=x')).toMatchObject({
      status: 400,
      body: { error: { field: 'from' } },
    });
    expect((await call('GET', '/admin/usage?user_id=usr_nope')).status).toBe(404);
  });
});
