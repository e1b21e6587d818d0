import { isRetryable, type ProviderError, resolveProviderConfig, settingsFromRecord } from '@apigate/kernel';
import {
  assertValidManifest,
  browserLogin,
  completeLogin,
  createForTest,
  describeOAuthProvider,
  freePort,
  OAUTH_TEST_REDIRECT_URI,
  rejectionOf,
  startLogin,
} from '@apigate/provider-testkit';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import pkg from '../package.json' with { type: 'json' };
import provider from '../src/index.js';
import { type FakeGitHub, startFakeGitHub } from './fake-github.js';

let gh: FakeGitHub;
beforeAll(async () => {
  gh = await startFakeGitHub();
  gh.users.set('mona', {
    login: 'mona',
    id: 1_000_001,
    name: null,
    email: 'mona.public@example.com',
    emails: [
      { email: 'mona@example.com', primary: true, verified: false, visibility: 'private' },
      { email: 'mona.old@example.com', primary: false, verified: true, visibility: null },
    ],
  });
});
afterAll(() => gh?.close());
beforeEach(() => {
  gh.signedIn = 'octocat';
  gh.rateLimited = false;
  gh.rateLimitDisabled = false;
});

const settings = (over: Record<string, string> = {}) => ({
  clientId: gh.clientId,
  clientSecret: gh.clientSecret,
  webUrl: gh.webUrl,
  apiUrl: gh.apiUrl,
  ...over,
});
const make = async (over: Record<string, string> = {}) => (await createForTest(provider, settings(over))).provider;
/** The user at GitHub's consent page: authorizes (submits the form) or cancels (follows the link). */
const authorize = (authUrl: URL) => browserLogin(authUrl, { redirectUri: OAUTH_TEST_REDIRECT_URI });
const cancel = (authUrl: URL) =>
  browserLogin(authUrl, {
    redirectUri: OAUTH_TEST_REDIRECT_URI,
    follow: ({ url, html }) => {
      const href = /href="([^"]*\/deny[^"]*)"/.exec(html)?.[1];
      return href ? new URL(href.replaceAll('&amp;', '&'), url) : undefined;
    },
  });
type Oauth = Awaited<ReturnType<typeof make>>;
const loginWith = async (oauth: Oauth, how = authorize) => oauth.exchange((await completeLogin(oauth, how)).input());

describeOAuthProvider(provider, {
  name: 'provider-github conformance (local GitHub stand-in)',
  config: settings,
  authorize,
  protocol: 'oauth2',
  scopes: ['read:user', 'user:email'],
  expectedProfile: {
    provider: 'github',
    subject: '583231',
    email: 'octocat@github.com',
    emailVerified: true,
    name: 'The Octocat',
    avatarUrl: 'https://avatars.githubusercontent.com/u/583231?v=4',
  },
  additionalTests: ({ provider: oauth }) => {
    it('asks for the token as JSON and calls the API as a versioned, identified client', async () => {
      const before = gh.requests.length;
      await loginWith(oauth());
      const seen = gh.requests.slice(before);
      expect(seen.find((r) => r.path === '/login/oauth/access_token')?.accept).toContain('application/json');
      for (const path of ['/api/v3/user', '/api/v3/user/emails']) {
        expect(
          seen.find((r) => r.path === path),
          path,
        ).toMatchObject({ accept: 'application/vnd.github+json', userAgent: 'apigate' });
      }
    });

    it('uses the primary email with its verified flag, and the login when there is no name', async () => {
      gh.signedIn = 'mona';
      await expect(loginWith(oauth())).resolves.toEqual({
        provider: 'github',
        subject: '1000001',
        email: 'mona@example.com',
        emailVerified: false,
        name: 'mona',
        avatarUrl: 'https://avatars.githubusercontent.com/u/1000001?v=4',
      });
    });

    it('turns Cancel on the consent page into OAUTH_ACCESS_DENIED', async () => {
      const err = await rejectionOf(loginWith(oauth(), cancel), 'a login the user cancelled');
      expect(err.message).toContain('access_denied');
      expect((err as ProviderError).code).toBe('OAUTH_ACCESS_DENIED');
      expect(isRetryable(err)).toBe(false);
    });

    it('reports a rate-limited API as retryable', async () => {
      gh.rateLimited = true;
      const err = await rejectionOf(loginWith(oauth()), 'a login while the API rate limit is used up');
      expect(err.message).toContain('rate limit exceeded');
      expect(isRetryable(err)).toBe(true);
    });
  },
});

describe('provider-github', () => {
  it('has a valid manifest', () => {
    assertValidManifest(pkg, provider);
  });

  it('defaults to github.com and api.github.com and reads the spec env vars', () => {
    const env = { OAUTH_GITHUB_CLIENT_ID: 'Iv1.0123456789abcdef', OAUTH_GITHUB_CLIENT_SECRET: 'github-client-secret-value-42' };
    const resolved = resolveProviderConfig(provider, env, settingsFromRecord({}));
    expect(resolved.config).toMatchObject({
      webUrl: 'https://github.com',
      apiUrl: 'https://api.github.com',
      scopes: ['read:user', 'user:email'],
    });
    expect(resolved.secretValues).toEqual([env.OAUTH_GITHUB_CLIENT_SECRET]);
    const ghes = resolveProviderConfig(
      provider,
      env,
      settingsFromRecord({
        'oauth.github.web_url': 'https://github.example.com',
        'oauth.github.api_url': 'https://github.example.com/api/v3',
      }),
    );
    expect(ghes.config).toMatchObject({ webUrl: 'https://github.example.com', apiUrl: 'https://github.example.com/api/v3' });
    expect(() =>
      resolveProviderConfig(provider, { ...env, OAUTH_GITHUB_WEB_URL: 'http://github.example.com' }, settingsFromRecord({})),
    ).toThrow();
  });

  it('builds the authorize URL on the web URL, without a nonce', async () => {
    const oauth = await make();
    const { authUrl: url } = await startLogin(oauth);
    expect(`${url.origin}${url.pathname}`).toBe(`${gh.webUrl}/login/oauth/authorize`);
    expect(url.searchParams.get('client_id')).toBe(gh.clientId);
    expect(url.searchParams.has('nonce')).toBe(false);
    await oauth.close();
  });

  it('fails with the wrong client secret as final, naming GitHub’s error and not the secret', async () => {
    const wrong = 'wrong-github-secret-value-0001';
    const oauth = await make({ clientSecret: wrong });
    const err = await rejectionOf(loginWith(oauth), 'an exchange with the wrong client secret');
    expect(err.message).toContain('incorrect_client_credentials');
    expect(err.message).not.toContain(wrong);
    expect((err as ProviderError).code).toBe('OAUTH_CODE_REJECTED');
    expect(isRetryable(err)).toBe(false);
    await oauth.close();
  });

  it('health: connected through GET /rate_limit, also on a GitHub Enterprise Server without rate limiting', async () => {
    const oauth = await make();
    const before = gh.requests.length;
    await expect(oauth.check(AbortSignal.timeout(10_000))).resolves.toMatchObject({ status: 'connected' });
    expect(gh.requests.slice(before).map((r) => r.path)).toEqual(['/api/v3/rate_limit']);
    gh.rateLimitDisabled = true;
    await expect(oauth.check(AbortSignal.timeout(10_000))).resolves.toMatchObject({ status: 'connected' });
    await oauth.close();
  });

  it('health: an error when the API cannot be reached or is not GitHub', async () => {
    const down = await make({ apiUrl: `http://127.0.0.1:${await freePort()}/api/v3` });
    await expect(down.check(AbortSignal.timeout(10_000))).resolves.toMatchObject({
      status: 'error',
      error: expect.stringContaining('ECONNREFUSED'),
    });
    const wrong = await make({ apiUrl: `${gh.webUrl}/not-the-api` });
    await expect(wrong.check(AbortSignal.timeout(10_000))).resolves.toMatchObject({
      status: 'error',
      error: expect.stringContaining('HTTP 404'),
    });
    await down.close();
    await wrong.close();
  });
});
