import { describe, expect, it } from 'vitest';
import { schema } from '../src/index.js';
import { linkIn, PASSWORD, portalHarness, tokenIn } from './helpers/portal.js';

const start = portalHarness();

describe('customer portal: sign up to usage', () => {
  it('signs up, verifies by the emailed link, logs in, creates, lists and revokes a key and reads usage', async () => {
    const p = await start();
    const ada = p.client();

    const signup = await ada.call('POST', '/portal/api/signup', { email: ' Ada@Example.com ', password: PASSWORD, name: 'Ada' });
    expect(signup.status).toBe(202);
    expect(signup.body).toEqual({
      status: 'verification_sent',
      message: 'check ada@example.com for a link to confirm the address, then log in',
    });
    expect(signup.headers.get('cache-control')).toBe('no-store');

    // The user exists on the default plan, unverified, with a scrypt hash (never the password).
    const user = (await p.store.domain.users.findByEmail('ada@example.com'))!;
    expect(user).toMatchObject({
      name: 'Ada',
      status: 'active',
      emailVerified: false,
      planId: (await p.store.domain.plans.getDefault())!.id,
    });
    expect(await p.store.domain.users.passwordHash(user.id)).toMatch(/^\$scrypt\$ln=12,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);

    // Not yet: the address is unconfirmed (and the answer says so only to someone who knows the password).
    const early = await ada.call('POST', '/portal/api/login', { email: 'ada@example.com', password: PASSWORD });
    expect(early).toMatchObject({ status: 403, body: { error: { code: 'EMAIL_NOT_VERIFIED', field: 'email' } } });

    // The email went through the outbox and the delivery workers to the log provider.
    const mail = await p.email('ada@example.com', /^Confirm your email address$/);
    expect(mail.text).toContain('Hello Ada,');
    expect(mail.html).toContain('<a href="http://127.0.0.1:');
    const link = linkIn(mail);
    expect(link).toBe(`${p.url}/portal/api/verify-email?token=${tokenIn(mail)}`);
    // Only the hash of the token is stored.
    const raw = p.store.db.select().from(schema.portalTokens).all();
    expect(raw.map((r) => r.hash)).not.toContain(tokenIn(mail));
    expect(raw[0]!.hash).toMatch(/^[0-9a-f]{64}$/);

    const verified = await fetch(link);
    expect(verified.status).toBe(200);
    expect(await verified.json()).toEqual({ email: 'ada@example.com', email_verified: true });
    expect((await p.store.domain.users.get(user.id)).emailVerified).toBe(true);

    const login = await ada.call('POST', '/portal/api/login', { email: 'ADA@example.com', password: PASSWORD });
    expect(login.status).toBe(200);
    expect(login.body.user).toMatchObject({
      id: user.id,
      email: 'ada@example.com',
      email_verified: true,
      plan: { name: 'Free', requests_per_minute: 60, requests_per_month: 1000 },
    });
    expect(login.body.user).not.toHaveProperty('password_hash');

    const me = await ada.call('GET', '/portal/api/me');
    expect(me).toMatchObject({ status: 200, body: { id: user.id, name: 'Ada', status: 'active', plan: { name: 'Free' } } });

    // Keys: the secret once, in the create answer.
    const created = await ada.call('POST', '/portal/api/keys', { name: 'laptop' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ user_id: user.id, name: 'laptop', status: 'active', revoked_at: null });
    expect(created.body.key).toMatch(/^ak_[0-9A-Za-z]{40}$/);
    expect(created.body.key.startsWith(created.body.prefix)).toBe(true);
    expect(await p.store.domain.keys.check(created.body.key)).toMatchObject({ ok: true, record: { userId: user.id } });
    p.clock.now = new Date(p.clock.now.getTime() + 1000); // lists are oldest first
    const second = await ada.call('POST', '/portal/api/keys', { name: 'ci', expires_at: new Date(Date.now() + 86_400_000).toISOString() });
    expect(second.status).toBe(201);

    const list = await ada.call('GET', '/portal/api/keys');
    expect(list.status).toBe(200);
    expect(list.body.data.map((k: { name: string }) => k.name)).toEqual(['laptop', 'ci']);
    expect(JSON.stringify(list.body)).not.toContain(created.body.key);
    for (const k of list.body.data)
      expect(Object.keys(k).sort()).toEqual([
        'created_at',
        'expires_at',
        'id',
        'last_used_at',
        'name',
        'prefix',
        'revoked_at',
        'status',
        'user_id',
      ]);
    expect((await ada.call('GET', `/portal/api/keys/${created.body.id}`)).body).toMatchObject({ id: created.body.id, name: 'laptop' });

    const revoked = await ada.call('DELETE', `/portal/api/keys/${created.body.id}`);
    expect(revoked).toMatchObject({ status: 200, body: { id: created.body.id, status: 'revoked' } });
    expect(await p.store.domain.keys.check(created.body.key)).toMatchObject({ ok: false, reason: 'revoked' });
    expect((await ada.call('GET', '/portal/api/keys?active=true')).body.data.map((k: { name: string }) => k.name)).toEqual(['ci']);

    // Usage as metering writes it: two minutes on one day, one on the next (most requests first).
    const t0 = Date.UTC(2025, 2, 10, 12, 0, 0);
    p.clock.now = new Date(t0 + 86_400_000 + 120_000);
    await p.store.domain.usage.applyBatch('b1', [
      { keyId: created.body.id, userId: user.id, at: t0, requests: 5, bytesIn: 100, bytesOut: 1000, errors: 1 },
      { keyId: second.body.id, userId: user.id, at: t0 + 60_000, requests: 2 },
      { keyId: second.body.id, userId: user.id, at: t0 + 86_400_000 + 60_000, requests: 4 },
    ]);
    const usage = await ada.call('GET', '/portal/api/usage');
    expect(usage.status).toBe(200);
    expect(usage.body).toMatchObject({
      month: '2025-03',
      totals: { requests: 11, bytes_in: 100, bytes_out: 1000, errors: 1 },
      quota: { limit: 1000, remaining: 989, resets_at: '2025-04-01T00:00:00.000Z' },
    });
    expect(usage.body.keys).toEqual([
      { key_id: second.body.id, name: 'ci', prefix: second.body.prefix, requests: 6, bytes_in: 0, bytes_out: 0, errors: 0 },
      { key_id: created.body.id, name: 'laptop', prefix: created.body.prefix, requests: 5, bytes_in: 100, bytes_out: 1000, errors: 1 },
    ]);
    expect((await ada.call('GET', '/portal/api/usage?month=2025-02')).body.totals.requests).toBe(0);

    const minutes = await ada.call(
      'GET',
      `/portal/api/usage/minutes?from=${new Date(t0).toISOString()}&to=${new Date(t0 + 3_600_000).toISOString()}`,
    );
    expect(minutes.body.data).toEqual([
      { minute: '2025-03-10T12:00:00.000Z', requests: 5, bytes_in: 100, bytes_out: 1000, errors: 1 },
      { minute: '2025-03-10T12:01:00.000Z', requests: 2, bytes_in: 0, bytes_out: 0, errors: 0 },
    ]);
    const ofKey = await ada.call(
      'GET',
      `/portal/api/usage/minutes?key_id=${second.body.id}&from=${new Date(t0).toISOString()}&to=${new Date(t0 + 3_600_000).toISOString()}`,
    );
    expect(ofKey.body.data.map((m: { requests: number }) => m.requests)).toEqual([2]);

    const days = await ada.call('GET', '/portal/api/usage/days');
    expect(days.body).toMatchObject({ from: '2025-03-01T00:00:00.000Z', to: '2025-03-12T00:00:00.000Z' });
    expect(days.body.data).toEqual([
      { day: '2025-03-10T00:00:00.000Z', requests: 7, bytes_in: 100, bytes_out: 1000, errors: 1 },
      { day: '2025-03-11T00:00:00.000Z', requests: 4, bytes_in: 0, bytes_out: 0, errors: 0 },
    ]);

    const out = await ada.call('POST', '/portal/api/logout');
    expect(out).toMatchObject({ status: 200, body: { logged_out: true } });
    expect(await ada.jar.getCookieString(`${p.url}/portal/api/me`)).toBe('');
    expect((await ada.call('GET', '/portal/api/me')).body.error.code).toBe('UNAUTHENTICATED');
  });

  it('keeps customers to their own keys and usage', async () => {
    const p = await start();
    const ada = await p.customer('ada@example.com');
    const bob = await p.customer('bob@example.com');
    const adaKey = (await ada.call('POST', '/portal/api/keys', { name: 'mine' })).body;

    expect((await bob.call('GET', '/portal/api/keys')).body.data).toEqual([]);
    for (const [method, path] of [
      ['GET', `/portal/api/keys/${adaKey.id}`],
      ['DELETE', `/portal/api/keys/${adaKey.id}`],
      ['POST', `/portal/api/keys/${adaKey.id}/revoke`],
      ['GET', `/portal/api/usage/minutes?key_id=${adaKey.id}`],
    ] as const) {
      const r = await bob.call(method, path);
      expect(r).toMatchObject({
        status: 404,
        body: { error: { code: 'NOT_FOUND', message: `no api key with id ${adaKey.id} among your keys` } },
      });
    }
    expect((await p.store.domain.keys.get(adaKey.id)).status).toBe('active');

    // A customer cannot make a key for someone else, nor set fields that are not theirs to set.
    const forged = await bob.call('POST', '/portal/api/keys', {
      name: 'x',
      user_id: (await p.store.domain.users.findByEmail('ada@example.com'))!.id,
    });
    expect(forged).toMatchObject({
      status: 400,
      body: { error: { code: 'INVALID_INPUT', field: 'user_id', message: 'api key: user_id: is not a field of this request' } },
    });
    const badDate = await bob.call('POST', '/portal/api/keys', { name: 'x', expires_at: 'tomorrow' });
    expect(badDate).toMatchObject({ status: 400, body: { error: { field: 'expires_at' } } });
  });

  it('caps how many working keys a customer has', async () => {
    const p = await start({ app: { portal: { maxKeysPerUser: 2 } } });
    const ada = await p.customer('ada@example.com');
    const first = (await ada.call('POST', '/portal/api/keys', { name: 'a' })).body;
    expect((await ada.call('POST', '/portal/api/keys', { name: 'b' })).status).toBe(201);
    expect(await ada.call('POST', '/portal/api/keys', { name: 'c' })).toMatchObject({
      status: 409,
      body: { error: { code: 'KEY_LIMIT' } },
    });
    await ada.call('POST', `/portal/api/keys/${first.id}/revoke`);
    expect((await ada.call('POST', '/portal/api/keys', { name: 'c' })).status).toBe(201);
  });

  it('sends the portal emails straight to the email provider when there is no outbox', async () => {
    const p = await start({ outbox: false });
    const c = p.client();
    expect((await c.call('POST', '/portal/api/signup', { email: 'direct@example.com', password: PASSWORD })).status).toBe(202);
    const mail = await p.email('direct@example.com', /Confirm your email/);
    expect((await c.call('POST', '/portal/api/verify-email', { token: tokenIn(mail) })).status).toBe(200);
    expect((await c.call('POST', '/portal/api/login', { email: 'direct@example.com', password: PASSWORD })).status).toBe(200);
  });
});
