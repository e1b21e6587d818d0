import { createKernel, discoverPlugins, type Kernel, silentLogger } from '@apigate/kernel';
import oidc from '@apigate/provider-oidc';
import { browserLogin, type OidcServer, startOidcProvider } from '@apigate/provider-testkit';
import { Cookie, CookieJar } from 'tough-cookie';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword, SESSION_COOKIE } from '../src/index.js';
import { OAUTH_COOKIE, safeReturnPath } from '../src/portal/oauth.js';
import { tempDir } from './helpers.js';
import { FAST_SCRYPT, PASSWORD, type PortalHarness, portalHarness } from './helpers/portal.js';

// The gateway's public URL, registered at the identity provider: the login ends at the IdP's
// redirect there, and the test then calls the real server's callback with the same query.
const PUBLIC_URL = 'https://portal.example.test';
const REDIRECT_URI = `${PUBLIC_URL}/portal/api/oauth/oidc/callback`;

const accounts = {
  alice: { email: 'alice@example.com', email_verified: true, name: 'Alice Example' },
  mallory: { email: 'ada@example.com', email_verified: false, name: 'Not Ada' },
  carol: { email: 'carol@example.com', email_verified: true, name: 'Carol' },
};

let idp: OidcServer;
let kernel: Kernel;
beforeAll(async () => {
  idp = await startOidcProvider({
    accounts,
    clients: [
      {
        client_id: 'apigate-portal',
        client_secret: 'portal-test-client-secret-0001',
        redirect_uris: [REDIRECT_URI],
        grant_types: ['authorization_code'],
        response_types: ['code'],
      },
    ],
  });
  // The real provider plugin through the real kernel, selected by the spec's env vars.
  kernel = await createKernel({
    catalog: await discoverPlugins({ builtins: [oidc] }),
    env: {
      OAUTH_OIDC_ENABLED: 'true',
      OAUTH_OIDC_ISSUER: idp.issuer,
      OAUTH_OIDC_CLIENT_ID: 'apigate-portal',
      OAUTH_OIDC_CLIENT_SECRET: 'portal-test-client-secret-0001',
      OAUTH_OIDC_DISPLAY_NAME: 'Example SSO',
    },
    dataDir: await tempDir(),
    only: ['oauth'],
  });
}, 60_000);
afterAll(async () => {
  await kernel?.close();
  await idp?.close();
});

const start = portalHarness();
const gateway = () => start({ app: { kernel, logger: silentLogger(), portal: { publicUrl: PUBLIC_URL } } });

/** A browser: cookies kept in a jar, redirects not followed. */
function browser(p: PortalHarness) {
  const jar = new CookieJar();
  return {
    jar,
    async get(path: string, headers: Record<string, string> = {}) {
      const url = new URL(path, p.url).href;
      const cookie = await jar.getCookieString(url);
      const res = await fetch(url, { redirect: 'manual', headers: { accept: 'text/html', ...headers, ...(cookie ? { cookie } : {}) } });
      for (const sc of res.headers.getSetCookie()) await jar.setCookie(sc, url);
      return res;
    },
  };
}

/** Starts a sign-in, logs in at the IdP as `login` and returns the IdP's callback query. */
async function loginAtIdp(b: ReturnType<typeof browser>, login: string, returnTo?: string) {
  const started = await b.get(`/portal/api/oauth/oidc/start${returnTo === undefined ? '' : `?return_to=${encodeURIComponent(returnTo)}`}`);
  expect(started.status).toBe(302);
  const callback = await browserLogin(new URL(started.headers.get('location')!), {
    redirectUri: REDIRECT_URI,
    fill: { login, password: 'any-password' },
  });
  return { started, search: callback.search };
}

async function signIn(p: PortalHarness, login: string, returnTo?: string) {
  const b = browser(p);
  const { search } = await loginAtIdp(b, login, returnTo);
  const done = await b.get(`/portal/api/oauth/oidc/callback${search}`);
  const me = await b.get('/portal/api/me', { accept: 'application/json' });
  return { b, done, me: { status: me.status, body: (await me.json()) as Record<string, unknown> } };
}

const errorRedirect = (res: Response) => ({ status: res.status, location: res.headers.get('location') });

describe('portal OAuth sign-in (oidc-provider)', () => {
  it('lists the enabled providers', async () => {
    const p = await gateway();
    const res = await browser(p).get('/portal/api/oauth', { accept: 'application/json' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ data: [{ name: 'oidc', display_name: 'Example SSO' }] });
  });

  it('signs a new person up and in: PKCE and nonce at the IdP, a short-lived flow cookie, a user, a mapping and a session', async () => {
    const p = await gateway();
    const b = browser(p);
    const { started, search } = await loginAtIdp(b, 'alice', '/portal/keys?tab=new');
    const auth = new URL(started.headers.get('location')!);
    expect(auth.origin).toBe(idp.issuer);
    expect(auth.searchParams.get('redirect_uri')).toBe(REDIRECT_URI);
    expect(auth.searchParams.get('code_challenge_method')).toBe('S256');
    expect(auth.searchParams.get('nonce')).toMatch(/^[\w-]{43}$/);
    const flowCookie = Cookie.parse(started.headers.getSetCookie().find((c) => c.startsWith(`${OAUTH_COOKIE}=`))!)!;
    expect(flowCookie).toMatchObject({ httpOnly: true, sameSite: 'lax', path: '/portal/api/oauth', maxAge: 600 });
    // Encrypted: neither the state nor the verifier can be read from it.
    expect(flowCookie.value).not.toContain(auth.searchParams.get('state'));

    const done = await b.get(`/portal/api/oauth/oidc/callback${search}`);
    expect(errorRedirect(done)).toEqual({ status: 302, location: '/portal/keys?tab=new' });
    const set = done.headers.getSetCookie();
    expect(Cookie.parse(set.find((c) => c.startsWith(`${SESSION_COOKIE}=`))!)).toMatchObject({
      httpOnly: true,
      sameSite: 'lax',
      path: '/portal',
    });
    expect(Cookie.parse(set.find((c) => c.startsWith(`${OAUTH_COOKIE}=`))!)).toMatchObject({ maxAge: 0 });

    const me = await b.get('/portal/api/me', { accept: 'application/json' });
    expect(me.status).toBe(200);
    const user = (await me.json()) as { id: string };
    expect(user).toMatchObject({
      email: 'alice@example.com',
      name: 'Alice Example',
      email_verified: true,
      status: 'active',
      plan: { name: 'Free' },
    });
    expect(await p.store.mappings.findLocal('oauth:oidc', 'user', 'alice')).toMatchObject({ localId: user.id });
    expect(await p.store.domain.users.passwordHash(user.id)).toBeNull();
  });

  it('reuses the linked user on the next sign-in, and refuses it once suspended', async () => {
    const p = await gateway();
    const first = await signIn(p, 'alice');
    const second = await signIn(p, 'alice');
    expect(errorRedirect(second.done)).toEqual({ status: 302, location: '/portal' });
    expect(second.me.body.id).toBe(first.me.body.id);
    expect((await p.store.domain.users.list({})).items).toHaveLength(1);

    await p.store.domain.users.update(first.me.body.id as string, { status: 'suspended' });
    const refused = await signIn(p, 'alice');
    expect(errorRedirect(refused.done)).toEqual({ status: 302, location: '/portal?error=account_suspended' });
    expect(refused.me.status).toBe(401);
  });

  it('links an existing user with the same verified email, and refuses an unverified one for an existing address', async () => {
    const p = await gateway();
    // Customers who signed up with a password and confirmed their address.
    const passwordHash = await hashPassword(PASSWORD, FAST_SCRYPT);
    const users = p.store.domain.users;
    const aliceId = (await users.create({ email: 'alice@example.com', name: 'Alice', emailVerified: true, passwordHash })).id;
    await users.create({ email: 'ada@example.com', name: 'Ada', emailVerified: true, passwordHash });
    const linked = await signIn(p, 'alice');
    expect(linked.me.body).toMatchObject({ id: aliceId, email: 'alice@example.com', name: 'Alice' });
    expect(await p.store.mappings.findExternal('oauth:oidc', 'user', aliceId)).toMatchObject({ externalId: 'alice' });
    // The password still works alongside.
    expect((await p.client().call('POST', '/portal/api/login', { email: 'alice@example.com', password: PASSWORD })).status).toBe(200);

    // mallory's IdP account claims ada@example.com without having verified it.
    const conflict = await signIn(p, 'mallory');
    expect(errorRedirect(conflict.done)).toEqual({ status: 302, location: '/portal?error=email_not_verified' });
    expect(conflict.me.status).toBe(401);
    expect(await p.store.mappings.findLocal('oauth:oidc', 'user', 'mallory')).toBeUndefined();

    // An unconfirmed sign-up for carol's address (anyone could have made it): the provider's proof
    // confirms the address and removes the password nobody proved.
    const squatted = await users.create({ email: 'carol@example.com', name: 'Squatter', passwordHash });
    const carol = await signIn(p, 'carol');
    expect(carol.me.body).toMatchObject({ id: squatted.id, email_verified: true });
    expect(await users.passwordHash(squatted.id)).toBeNull();

    // The same refusal as JSON for a client that asks for it.
    const b = browser(p);
    const { search } = await loginAtIdp(b, 'mallory');
    const json = await b.get(`/portal/api/oauth/oidc/callback${search}`, { accept: 'application/json' });
    expect(json.status).toBe(409);
    expect(await json.json()).toMatchObject({ error: { code: 'email_not_verified' } });
  });

  it('refuses a tampered state, a tampered flow cookie and a callback without one', async () => {
    const p = await gateway();
    const b = browser(p);
    const { search } = await loginAtIdp(b, 'alice');
    const forged = new URLSearchParams(search);
    forged.set('state', 'forged-state-value-000000000000');
    const res = await b.get(`/portal/api/oauth/oidc/callback?${forged}`);
    expect(errorRedirect(res)).toEqual({ status: 302, location: '/portal?error=state_mismatch' });
    // The flow cookie was spent on that attempt: the genuine query no longer works either.
    expect(errorRedirect(await b.get(`/portal/api/oauth/oidc/callback${search}`))).toEqual({
      status: 302,
      location: '/portal?error=state_mismatch',
    });

    const c = browser(p);
    const second = await loginAtIdp(c, 'alice');
    const url = `${p.url}/portal/api/oauth/oidc/callback`;
    const value = (await c.jar.getCookies(url)).find((k) => k.key === OAUTH_COOKIE)!.value;
    const flipped = `${value.slice(0, -2)}${value.at(-2) === 'A' ? 'B' : 'A'}${value.at(-1)}`;
    await c.jar.setCookie(`${OAUTH_COOKIE}=${flipped}; Path=/portal/api/oauth`, url);
    expect(errorRedirect(await c.get(`/portal/api/oauth/oidc/callback${second.search}`))).toEqual({
      status: 302,
      location: '/portal?error=state_mismatch',
    });
    expect(await c.jar.getCookieString(`${p.url}/portal/api/me`)).toBe('');
    expect((await p.store.domain.users.list({})).items).toHaveLength(0);
  });

  it('reports a login cancelled at the IdP as access_denied', async () => {
    const p = await gateway();
    const b = browser(p);
    const started = await b.get('/portal/api/oauth/oidc/start');
    const callback = await browserLogin(new URL(started.headers.get('location')!), {
      redirectUri: REDIRECT_URI,
      follow: ({ url, html }) => {
        const cancel = /href="([^"]*\/abort)"/.exec(html)?.[1];
        return cancel ? new URL(cancel, url) : undefined;
      },
    });
    expect(errorRedirect(await b.get(`/portal/api/oauth/oidc/callback${callback.search}`))).toEqual({
      status: 302,
      location: '/portal?error=access_denied',
    });
  });

  it('refuses a return_to off this site (no open redirect) and an unknown provider', async () => {
    const p = await gateway();
    const b = browser(p);
    for (const target of [
      '//evil.example/x',
      'https://evil.example/',
      '/\\evil.example',
      'javascript:alert(1)',
      'portal/keys',
      '/\t/evil.example',
    ]) {
      const res = await b.get(`/portal/api/oauth/oidc/start?return_to=${encodeURIComponent(target)}`);
      expect(errorRedirect(res), target).toEqual({ status: 302, location: '/portal?error=invalid_return_to' });
      expect(res.headers.getSetCookie(), target).toEqual([]);
    }
    const json = await b.get('/portal/api/oauth/oidc/start?return_to=//evil.example', { accept: 'application/json' });
    expect(json.status).toBe(400);
    expect(await json.json()).toMatchObject({ error: { code: 'invalid_return_to' } });
    expect((await b.get('/portal/api/oauth/nope/start', { accept: 'application/json' })).status).toBe(404);

    expect(safeReturnPath('/portal/usage?month=2026-01#top')).toBe('/portal/usage?month=2026-01#top');
    expect(safeReturnPath('/a/../../b')).toBe('/b');
    expect(safeReturnPath(undefined)).toBe('/portal');
  });
});
