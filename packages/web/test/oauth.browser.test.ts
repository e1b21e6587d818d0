import oidc from '@apigate/provider-oidc';
import { freePort, type OidcServer, startOidcProvider } from '@apigate/provider-testkit';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launch, shoot } from './browser.js';
import { type Site, startSite } from './harness.js';

// The portal's "Continue with <provider>" sign-in, driven in Chromium against a real OpenID
// Connect server (oidc-provider's development login and consent pages), end to end.
const CLIENT_ID = 'apigate-portal';
const CLIENT_SECRET = 'portal-browser-test-client-secret-01';
const accounts = { alice: { email: 'alice@example.com', email_verified: true, name: 'Alice Example' } };

let site: Site;
let idp: OidcServer;
let browser: Browser;
let callbackPath = '';

beforeAll(async () => {
  // The port is chosen first: the IdP registers the portal's callback URL on it.
  const port = await freePort();
  callbackPath = '/portal/api/oauth/oidc/callback';
  idp = await startOidcProvider({
    accounts,
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        redirect_uris: [`http://127.0.0.1:${port}${callbackPath}`],
        grant_types: ['authorization_code'],
        response_types: ['code'],
      },
    ],
  });
  [site, browser] = await Promise.all([
    startSite({
      port,
      plugins: {
        builtins: [oidc],
        env: {
          OAUTH_OIDC_ENABLED: 'true',
          OAUTH_OIDC_ISSUER: idp.issuer,
          OAUTH_OIDC_CLIENT_ID: CLIENT_ID,
          OAUTH_OIDC_CLIENT_SECRET: CLIENT_SECRET,
          OAUTH_OIDC_DISPLAY_NAME: 'Example SSO',
        },
        only: ['oauth'],
      },
    }),
    launch(),
  ]);
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await site?.close();
  await idp?.close();
});

/** A new person at a new browser: no cookies at the portal or the IdP. */
async function newVisitor(): Promise<Page> {
  const context = await browser.newContext({ baseURL: site.url, viewport: { width: 1280, height: 800 } });
  // The IdP's development pages import a web font; there is no network here.
  await context.route(/fonts\.googleapis\.com/, (r) => r.abort());
  return context.newPage();
}

/** On the IdP's pages: types the login (any password is accepted for a known login) and consents. */
async function loginAndConsentAtIdp(page: Page, login: string, screenshots?: string): Promise<void> {
  await page.waitForURL((u) => u.origin === idp.issuer);
  expect(await page.locator('h1').textContent()).toBe('Sign-in');
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill('any-password');
  if (screenshots) await shoot(page, `${screenshots}-idp-login`);
  await page.getByRole('button', { name: 'Sign-in' }).click();
  await page.waitForURL((u) => u.origin === idp.issuer && !!u.pathname.match(/^\/interaction\//));
  await expect.poll(() => page.locator('h1').textContent()).toBe('Authorize');
  if (screenshots) await shoot(page, `${screenshots}-idp-consent`);
}

/** From the portal's sign-in page, the provider's button, the IdP, and back. */
async function signInWithIdp(page: Page, login: string, screenshots?: string): Promise<void> {
  await page.goto('/portal/login');
  await page.getByRole('link', { name: 'Continue with Example SSO' }).click();
  await loginAndConsentAtIdp(page, login, screenshots);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForURL((u) => u.origin === site.url && u.pathname === '/portal');
}

describe('portal sign-in with an OpenID Connect provider, in Chromium', () => {
  let firstCallback = '';
  let aliceId = '';

  it('shows the provider on the sign-in page, logs in and consents at the IdP, and comes back signed in as a new customer', async () => {
    const page = await newVisitor();
    page.on('request', (r) => {
      if (r.isNavigationRequest() && r.url().startsWith(`${site.url}${callbackPath}`)) firstCallback = r.url();
    });
    await page.goto('/portal');
    expect(new URL(page.url()).pathname).toBe('/portal/login');
    const button = page.getByRole('link', { name: 'Continue with Example SSO' });
    expect(await button.isVisible()).toBe(true);
    expect(await page.getByText('Or sign in with').isVisible()).toBe(true);
    await shoot(page, 'portal-login-oauth');

    await signInWithIdp(page, 'alice', 'oauth');
    // The IdP sent the browser back to the registered callback with a code and the flow's state.
    const cb = new URL(firstCallback);
    expect(cb.searchParams.get('code')).toBeTruthy();
    expect(cb.searchParams.get('state')).toBeTruthy();
    expect(await page.locator('h1').textContent()).toBe('Welcome, Alice Example');
    await shoot(page, 'oauth-signed-in');

    await page.getByRole('link', { name: 'Account', exact: true }).click();
    await page.waitForURL((u) => u.pathname === '/portal/account');
    expect(await page.locator('dl').textContent()).toContain('alice@example.com');
    await shoot(page, 'oauth-account');

    const user = await site.store.domain.users.findByEmail('alice@example.com');
    expect(user).toMatchObject({ name: 'Alice Example', emailVerified: true, status: 'active' });
    aliceId = user!.id;
    expect(await site.store.mappings.findLocal('oauth:oidc', 'user', 'alice')).toMatchObject({ localId: aliceId });
  });

  it('links a second sign-in, from another browser, to the same customer', async () => {
    const page = await newVisitor();
    await signInWithIdp(page, 'alice');
    expect(await page.locator('h1').textContent()).toBe('Welcome, Alice Example');
    await page.goto('/portal/account');
    expect(await page.locator('dl').textContent()).toContain('alice@example.com');
    const all = (await site.store.domain.users.list({})).items;
    expect(all.map((u) => u.id)).toEqual([aliceId]);
  });

  it('shows a clear error, not a 500, for a tampered state and for a replayed callback', async () => {
    const page = await newVisitor();
    // Consent with the browser's own cookies (page.request shares them), but stop at the IdP's
    // redirect back and keep the callback URL instead of opening it. (Playwright cannot intercept
    // a request a redirect made, so the form's POST and the IdP's resume step are sent from here.)
    await page.goto('/portal/login');
    await page.getByRole('link', { name: 'Continue with Example SSO' }).click();
    await loginAndConsentAtIdp(page, 'alice');
    let next = new URL((await page.locator('form').getAttribute('action'))!, page.url()).href;
    let step = await page.request.post(next, { form: { prompt: 'consent' }, maxRedirects: 0 });
    while (step.status() >= 300 && step.status() < 400) {
      next = new URL(step.headers().location!, next).href;
      if (new URL(next).pathname === callbackPath) break;
      step = await page.request.get(next, { maxRedirects: 0 });
    }
    const captured = next;
    expect(new URL(captured).pathname).toBe(callbackPath);

    const tampered = new URL(captured);
    tampered.searchParams.set('state', 'tampered-state-value-0000000000000');
    const res = await page.goto(tampered.href);
    expect(res?.status()).toBe(200);
    expect(new URL(page.url()).pathname).toBe('/portal/login');
    expect(await page.locator('.flash.error').first().textContent()).toContain('was not started in this browser or has expired');
    await shoot(page, 'oauth-state-mismatch');
    // Still signed out: the page offers the sign-in form and the provider again.
    expect(await page.getByRole('button', { name: 'Sign in' }).isVisible()).toBe(true);

    // The flow cookie was spent on that attempt: the genuine callback, replayed, is refused the same way.
    const replay = await page.goto(captured);
    expect(replay?.status()).toBe(200);
    expect(new URL(page.url()).pathname).toBe('/portal/login');
    expect(await page.locator('.flash.error').first().textContent()).toContain('was not started in this browser or has expired');

    // Another browser replaying the first sign-in's callback (a leaked URL) gets no session either.
    const other = await newVisitor();
    const stolen = await other.goto(firstCallback);
    expect(stolen?.status()).toBe(200);
    expect(new URL(other.url()).pathname).toBe('/portal/login');
    expect(await other.locator('.flash.error').first().textContent()).toContain('was not started in this browser or has expired');
    expect((await site.store.domain.users.list({})).items).toHaveLength(1);
  });
});
