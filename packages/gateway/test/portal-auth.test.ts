import { createKernel, discoverPlugins, silentLogger } from '@apigate/kernel';
import { Cookie } from 'tough-cookie';
import { describe, expect, it } from 'vitest';
import { createHttpApp, openStore, SESSION_COOKIE, schema } from '../src/index.js';
import { checkPublicUrlValue } from '../src/portal/api.js';
import { sha256Hex } from '../src/domain/ids.js';
import { KEY_A, tempDir } from './helpers.js';
import { call } from './helpers/http.js';
import { PASSWORD, portalHarness } from './helpers/portal.js';

const start = portalHarness();

const sessionCookie = (headers: Headers) => {
  const raw = headers.getSetCookie().find((c) => c.startsWith(`${SESSION_COOKIE}=`));
  expect(raw, 'a session cookie is set').toBeDefined();
  return Cookie.parse(raw!)!;
};

describe('portal log in', () => {
  it('answers a wrong password and an unknown address alike, sets no cookie, and logs out', async () => {
    const p = await start();
    await p.customer('ada@example.com');
    const c = p.client();
    const wrong = await c.call('POST', '/portal/api/login', { email: 'ada@example.com', password: 'not the password' });
    const unknown = await c.call('POST', '/portal/api/login', { email: 'nobody@example.com', password: 'not the password' });
    for (const r of [wrong, unknown]) {
      expect(r).toMatchObject({
        status: 401,
        body: { error: { code: 'INVALID_CREDENTIALS', message: 'log in: the email address or the password is not right' } },
      });
      expect(r.headers.getSetCookie()).toEqual([]);
    }
    expect(await c.jar.getCookieString(`${p.url}/portal/api/me`)).toBe('');
    expect((await c.call('GET', '/portal/api/me')).status).toBe(401);
  });

  it('sets an httpOnly, SameSite=Lax session cookie scoped to /portal, Secure behind https, and stores only its hash', async () => {
    const p = await start();
    const ada = await p.customer('ada@example.com');

    const plain = await ada.call('POST', '/portal/api/login', { email: 'ada@example.com', password: PASSWORD });
    const cookie = sessionCookie(plain.headers);
    expect(cookie).toMatchObject({
      key: SESSION_COOKIE,
      httpOnly: true,
      sameSite: 'lax',
      path: '/portal',
      maxAge: 7 * 24 * 3600,
      secure: false,
    });
    expect(cookie.value).toMatch(/^[0-9A-Za-z]{43}$/);
    expect(plain.body.session_expires_at).toBe(new Date(p.clock.now.getTime() + 7 * 24 * 3_600_000).toISOString());
    const rows = p.store.db.select().from(schema.portalSessions).all();
    expect(rows.map((r) => r.hash)).toContain(sha256Hex(cookie.value));
    expect(JSON.stringify(rows)).not.toContain(cookie.value);
    // The cookie is not sent to the proxied API paths.
    expect(await ada.jar.getCookieString(`${p.url}/v1/anything`)).toBe('');

    const tls = await ada.call(
      'POST',
      '/portal/api/login',
      { email: 'ada@example.com', password: PASSWORD },
      { headers: { 'x-forwarded-proto': 'https' } },
    );
    expect(sessionCookie(tls.headers)).toMatchObject({ secure: true, httpOnly: true, sameSite: 'lax' });

    // Logging out clears the cookie (Max-Age=0) and deletes the session row.
    const before = p.store.db.select().from(schema.portalSessions).all().length;
    const out = await ada.call('POST', '/portal/api/logout', undefined, { headers: { 'x-forwarded-proto': 'https' } });
    expect(sessionCookie(out.headers)).toMatchObject({ maxAge: 0, secure: true, path: '/portal' });
    expect(p.store.db.select().from(schema.portalSessions).all()).toHaveLength(before - 1);
  });

  it('ends a session at its expiry', async () => {
    const p = await start({ app: { portal: { sessionTtlMs: 60 * 60_000 } } });
    const ada = await p.customer('ada@example.com');
    expect((await ada.call('GET', '/portal/api/me')).status).toBe(200);
    p.clock.now = new Date(p.clock.now.getTime() + 60 * 60_000);
    // The browser would drop the cookie by itself; a client that keeps sending it is refused.
    const jarless = await fetch(`${p.url}/portal/api/me`, { headers: { cookie: await ada.jar.getCookieString(`${p.url}/portal/api/me`) } });
    expect(jarless.status).toBe(401);
    expect(((await jarless.json()) as any).error.code).toBe('UNAUTHENTICATED');
  });

  it('refuses a suspended customer at log in and on a session they already had', async () => {
    const p = await start();
    const ada = await p.customer('ada@example.com');
    const user = (await p.store.domain.users.findByEmail('ada@example.com'))!;
    await p.store.domain.users.suspend(user.id);

    const me = await ada.call('GET', '/portal/api/me');
    expect(me).toMatchObject({ status: 403, body: { error: { code: 'ACCOUNT_SUSPENDED' } } });
    expect((await ada.call('POST', '/portal/api/keys', { name: 'x' })).status).toBe(403);
    const login = await p.client().call('POST', '/portal/api/login', { email: 'ada@example.com', password: PASSWORD });
    expect(login).toMatchObject({
      status: 403,
      body: { error: { code: 'ACCOUNT_SUSPENDED', message: 'log in: this account is suspended; contact the API provider' } },
    });
    expect(login.headers.getSetCookie()).toEqual([]);
    // Without the password, a suspended account looks like any other wrong log in.
    expect((await p.client().call('POST', '/portal/api/login', { email: 'ada@example.com', password: 'guess-guess' })).status).toBe(401);

    await p.store.domain.users.activate(user.id);
    expect((await ada.call('GET', '/portal/api/me')).status).toBe(200);
  });

  it('slows guessing: attempts per address and per client through the cache, reset after the window', async () => {
    const window = 60_000;
    const p = await start({
      app: { portal: { limits: { loginPerEmail: { limit: 3, windowMs: window }, loginPerIp: { limit: 5, windowMs: window } } } },
    });
    await p.customer('ada@example.com'); // one attempt (the customer's log in) from this address and client
    const c = p.client();
    const login = (email: string, password: string) => c.call('POST', '/portal/api/login', { email, password });

    expect((await login('ada@example.com', 'wrong-1')).status).toBe(401);
    expect((await login('ada@example.com', 'wrong-2')).status).toBe(401);
    const blocked = await login('ada@example.com', PASSWORD); // the right password, but too late
    expect(blocked).toMatchObject({ status: 429, body: { error: { code: 'TOO_MANY_ATTEMPTS' } } });
    const retry = Number(blocked.headers.get('retry-after'));
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(retry).toBeLessThanOrEqual(60);
    expect(blocked.body.error.message).toBe(`too many attempts; try again in ${retry} seconds`);

    // The counts live in the cache capability, under hashed addresses.
    const cache = p.kernel.get('cache');
    const win = Math.floor(p.clock.now.getTime() / window);
    expect(await cache.has(`portal:loginPerEmail:e:${sha256Hex('ada@example.com').slice(0, 32)}:${win}`)).toBe(true);
    expect(await cache.has(`portal:loginPerIp:ip:127.0.0.1:${win}`)).toBe(true);

    // Another address from the same client: allowed until the client's own limit (5) is used up.
    expect((await login('bob@example.com', 'wrong')).status).toBe(401);
    expect((await login('carol@example.com', 'wrong')).status).toBe(429);

    p.clock.now = new Date((win + 1) * window);
    expect((await login('ada@example.com', PASSWORD)).status).toBe(200);
  });

  it('still limits attempts, per instance, without a cache provider', async () => {
    const p = await start({
      env: { CACHE_PROVIDER: 'none' },
      app: { portal: { limits: { loginPerEmail: { limit: 2, windowMs: 60_000 } } } },
    });
    expect(p.kernel.tryGet('cache')).toBeUndefined();
    const c = p.client();
    expect((await c.call('POST', '/portal/api/login', { email: 'ada@example.com', password: 'wrong-1' })).status).toBe(401);
    expect((await c.call('POST', '/portal/api/login', { email: 'ada@example.com', password: 'wrong-2' })).status).toBe(401);
    expect((await c.call('POST', '/portal/api/login', { email: 'ada@example.com', password: 'wrong-3' })).status).toBe(429);
  });

  it('limits reset and verification emails per address', async () => {
    const p = await start({ app: { portal: { limits: { emailPerAddress: { limit: 2, windowMs: 3_600_000 } } } } });
    await p.customer('ada@example.com'); // the sign up counted once
    const c = p.client();
    expect((await c.call('POST', '/portal/api/password-reset', { email: 'ada@example.com' })).status).toBe(202);
    const third = await c.call('POST', '/portal/api/password-reset', { email: 'ada@example.com' });
    expect(third.status).toBe(429);
    expect((await c.call('POST', '/portal/api/verify-email/resend', { email: 'ada@example.com' })).status).toBe(429);
    expect((await c.call('POST', '/portal/api/password-reset', { email: 'bob@example.com' })).status).toBe(202);
  });
});

describe('portal requests', () => {
  it('requires the X-Requested-With header on state-changing requests', async () => {
    const p = await start();
    const ada = await p.customer('ada@example.com');
    const forged = await ada.call('POST', '/portal/api/keys', { name: 'forged' }, { csrf: false });
    expect(forged).toMatchObject({
      status: 403,
      body: {
        error: {
          code: 'CSRF_HEADER_REQUIRED',
          message: 'send the header X-Requested-With (e.g. X-Requested-With: XMLHttpRequest) with every POST to the portal API',
        },
      },
    });
    expect((await ada.call('GET', '/portal/api/keys')).body.data).toEqual([]);
    expect((await ada.call('POST', '/portal/api/logout', undefined, { csrf: false })).status).toBe(403);
    expect((await ada.call('GET', '/portal/api/me', undefined, { csrf: false })).status).toBe(200);
    // No CORS preflight is granted, so a browser on another site cannot add the header.
    const preflight = await fetch(`${p.url}/portal/api/keys`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://evil.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'x-requested-with',
      },
    });
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
    expect(preflight.headers.get('access-control-allow-headers')).toBeNull();
  });

  it('names the field at fault in JSON errors', async () => {
    const p = await start();
    const c = p.client();
    const cases: [unknown, string, string][] = [
      [{ email: 'ada@example.com', password: 'short' }, 'password', 'sign up: password: at least 8 characters'],
      [{ email: 'not-an-email', password: PASSWORD }, 'email', 'sign up: email: expected an email address such as ada@example.com'],
      [{ password: PASSWORD }, 'email', 'sign up: email: expected an email address'],
      [{ email: 'ada@example.com', password: PASSWORD, plan_id: 'plan_x' }, 'plan_id', 'sign up: plan_id: is not a field of this request'],
    ];
    for (const [body, field, message] of cases) {
      expect(await c.call('POST', '/portal/api/signup', body)).toMatchObject({
        status: 400,
        body: { error: { code: 'INVALID_INPUT', field, message } },
      });
    }
    const notJson = await fetch(`${p.url}/portal/api/login`, {
      method: 'POST',
      headers: { 'x-requested-with': 'x', 'content-type': 'text/plain' },
      body: 'email=a',
    });
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as any).error.message).toMatch(/^request body: expected a JSON object/);
    expect(await c.call('POST', '/portal/api/verify-email', { token: 'x' })).toMatchObject({
      status: 400,
      body: { error: { field: 'token' } },
    });
    expect(await c.call('GET', '/portal/api/usage?month=2025-13')).toMatchObject({ status: 401 });
    const ada = await p.customer('ada@example.com');
    expect(await ada.call('GET', '/portal/api/usage?month=2025-13')).toMatchObject({ status: 400, body: { error: { field: 'month' } } });
    expect(await ada.call('GET', '/portal/api/usage/minutes?from=yesterday')).toMatchObject({
      status: 400,
      body: { error: { field: 'from' } },
    });
  });
});

describe('portal sign up', () => {
  it('answers an address that has an account like a new one, and tells its owner by email instead', async () => {
    const p = await start();
    await p.customer('ada@example.com', 'Ada');
    const again = await p.client().call('POST', '/portal/api/signup', { email: 'ada@example.com', password: 'another password' });
    expect(again).toMatchObject({
      status: 202,
      body: { status: 'verification_sent', message: 'check ada@example.com for a link to confirm the address, then log in' },
    });
    const notice = await p.email('ada@example.com', /^You already have an account$/);
    expect(notice.text).toContain('Hello Ada,');
    expect(notice.text).not.toMatch(/token=/);
    // The password did not change.
    expect((await p.client().call('POST', '/portal/api/login', { email: 'ada@example.com', password: 'another password' })).status).toBe(
      401,
    );
    expect((await p.client().call('POST', '/portal/api/login', { email: 'ada@example.com', password: PASSWORD })).status).toBe(200);
  });

  it('sends a fresh link to an address that signed up but never confirmed', async () => {
    const p = await start();
    const c = p.client();
    await c.call('POST', '/portal/api/signup', { email: 'ada@example.com', password: PASSWORD });
    await c.call('POST', '/portal/api/signup', { email: 'ada@example.com', password: PASSWORD });
    const second = await p.email('ada@example.com', /^Confirm your email address$/, 2);
    expect((await fetch(second.text!.match(/http\S+/)![0])).status).toBe(200);
  });

  it('is closed while there is no plan, and without an email provider', async () => {
    const noPlan = await start({ plan: false });
    expect(await noPlan.client().call('POST', '/portal/api/signup', { email: 'ada@example.com', password: PASSWORD })).toMatchObject({
      status: 503,
      body: { error: { code: 'SIGNUP_UNAVAILABLE', message: 'sign up is not open yet: the API provider has not created a plan' } },
    });
    expect(await noPlan.store.domain.users.findByEmail('ada@example.com')).toBeUndefined();

    const noEmail = await start({ outbox: false, env: { EMAIL_PROVIDER: 'none' } });
    for (const [path, body] of [
      ['/portal/api/signup', { email: 'ada@example.com', password: PASSWORD }],
      ['/portal/api/password-reset', { email: 'ada@example.com' }],
    ] as const) {
      expect(await noEmail.client().call('POST', path, body)).toMatchObject({
        status: 503,
        body: {
          error: { code: 'EMAIL_UNAVAILABLE', message: 'the portal cannot send email: no email provider is selected (set EMAIL_PROVIDER)' },
        },
      });
    }
  });
});

describe('portal email links', () => {
  it('never builds a link from a public Host header: they need APIGATE_PUBLIC_URL or portal.public_url', async () => {
    const p = await start();
    const headers = { host: 'evil.example', 'content-type': 'application/json', 'x-requested-with': 'x' };
    const forged = await call(`${p.url}/portal/api/password-reset`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ email: 'ada@example.com' }),
    });
    expect(forged.status).toBe(503);
    expect(JSON.parse(forged.body.toString()).error).toEqual({
      code: 'PUBLIC_URL_REQUIRED',
      message:
        "the portal cannot send links: set APIGATE_PUBLIC_URL (or the setting portal.public_url) to the gateway's public URL, e.g. https://api.example.com",
    });

    await p.customer('ada@example.com');
    await p.store.settings.set('portal.public_url', 'https://api.example.com/', { secret: false });
    const viaSetting = await call(`${p.url}/portal/api/password-reset`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ email: 'ada@example.com' }),
    });
    expect(viaSetting.status).toBe(202);
    expect((await p.email('ada@example.com', /^Reset your password$/)).text).toMatch(
      /https:\/\/api\.example\.com\/portal\/reset-password\?token=[0-9A-Za-z]{43}\n/,
    );
  });

  it('takes APIGATE_PUBLIC_URL and refuses one that is not an http(s) URL at start', async () => {
    const p = await start({ app: { portal: { env: { APIGATE_PUBLIC_URL: 'https://gw.example.com/base/' } } } });
    await p.client().call('POST', '/portal/api/signup', { email: 'ada@example.com', password: PASSWORD });
    expect((await p.email('ada@example.com', /Confirm/)).text).toContain('https://gw.example.com/base/portal/api/verify-email?token=');

    const dataDir = await tempDir();
    const store = await openStore({ dataDir, secretKey: KEY_A });
    const kernel = await createKernel({ catalog: await discoverPlugins({ builtins: [] }), env: {}, dataDir, only: [] });
    try {
      expect(() =>
        createHttpApp({ kernel, store, logger: silentLogger(), portal: { env: { APIGATE_PUBLIC_URL: 'gw.example.com' } } }),
      ).toThrow(
        /^APIGATE_PUBLIC_URL: expected the gateway's public http\(s\) URL such as https:\/\/api\.example\.com, got "gw\.example\.com"$/,
      );
      expect(checkPublicUrlValue('https://api.example.com')).toBeUndefined();
      expect(checkPublicUrlValue('ftp://api.example.com')).toBe(
        "expected the gateway's public http(s) URL such as https://api.example.com",
      );
    } finally {
      await kernel.close();
      await store.close();
    }
  });
});
