import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isRetryable, ProviderError, resolveProviderConfig, settingsFromRecord } from '@apigate/kernel';
import {
  assertValidManifest,
  browserLogin,
  completeLogin,
  createForTest,
  describeOAuthProvider,
  freePort,
  type OidcServer,
  rejectionOf,
  startLogin,
  startOidcProvider,
} from '@apigate/provider-testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pkg from '../package.json' with { type: 'json' };
import provider from '../src/index.js';

const alice = { email: 'alice@example.com', email_verified: true, name: 'Alice Example', picture: 'https://img.example.com/alice.png' };

// A real OpenID Connect server (oidc-provider) with its default, minimal ID tokens: email and
// name come only from userinfo, so the profile proves both are read.
let idp: OidcServer;
beforeAll(async () => {
  idp = await startOidcProvider({
    accounts: { alice, bob: { email: 'bob@example.com', email_verified: false, given_name: 'Bob', family_name: 'Builder' } },
  });
});
afterAll(() => idp?.close());

const make = async (over: Record<string, string> = {}) => (await createForTest(provider, { ...idp.clientConfig, ...over })).provider;

describeOAuthProvider(provider, {
  name: 'provider-oidc conformance (oidc-provider)',
  config: () => idp.clientConfig,
  authorize: (authUrl) => idp.loginAs('alice')(authUrl),
  protocol: 'oidc',
  scopes: ['email', 'profile'],
  expectedProfile: {
    provider: 'oidc',
    subject: 'alice',
    email: alice.email,
    emailVerified: true,
    name: alice.name,
    avatarUrl: alice.picture,
  },
  additionalTests: ({ provider: oauth, login, redirectUri }) => {
    it('reports email_verified false as unverified and builds the name from given and family name', async () => {
      const bob = await login(idp.loginAs('bob'));
      await expect(oauth().exchange(bob.input())).resolves.toEqual({
        provider: 'oidc',
        subject: 'bob',
        email: 'bob@example.com',
        emailVerified: false,
        name: 'Bob Builder',
      });
    });

    it('turns a login the user cancelled at the identity provider into OAUTH_ACCESS_DENIED', async () => {
      // The development login page's cancel link makes oidc-provider redirect with error=access_denied.
      const cancelled = await login((authUrl) =>
        browserLogin(authUrl, {
          redirectUri,
          follow: ({ url, html }) => {
            const cancel = /href="([^"]*\/abort)"/.exec(html)?.[1];
            return cancel ? new URL(cancel, url) : undefined;
          },
        }),
      );
      expect(cancelled.callbackUrl.searchParams.get('error')).toBe('access_denied');
      const err = await rejectionOf(oauth().exchange(cancelled.input()), 'a cancelled login');
      expect(err).toBeInstanceOf(ProviderError);
      expect((err as ProviderError).code).toBe('OAUTH_ACCESS_DENIED');
      expect(isRetryable(err)).toBe(false);
    });

    it('refuses input the contract forbids before calling the identity provider', async () => {
      const base = { redirectUri, state: 's'.repeat(22), codeVerifier: 'c'.repeat(43), nonce: 'n'.repeat(22) };
      await expect(oauth().authorizationUrl({ ...base, codeVerifier: 'short' })).rejects.toThrow(/codeVerifier/);
      await expect(oauth().authorizationUrl({ ...base, state: '' })).rejects.toThrow(/state/);
      await expect(oauth().authorizationUrl({ ...base, redirectUri: '/relative' })).rejects.toThrow(/redirectUri/);
      await expect(oauth().authorizationUrl({ ...base, redirectUri: `${redirectUri}?next=/x` })).rejects.toThrow(/query/);
    });
  },
});

describe('provider-oidc', () => {
  it('has a valid manifest', () => {
    assertValidManifest(pkg, provider);
  });

  it('reads the spec env vars, keeps the client secret secret and rejects a plain-http issuer', () => {
    const env = {
      OAUTH_OIDC_ISSUER: 'https://login.example.com/realms/acme',
      OAUTH_OIDC_CLIENT_ID: 'gateway',
      OAUTH_OIDC_CLIENT_SECRET: 'top-secret-value-123',
    };
    const resolved = resolveProviderConfig(provider, env, settingsFromRecord({}));
    expect(resolved.config).toMatchObject({ issuer: env.OAUTH_OIDC_ISSUER, clientId: 'gateway', scopes: ['openid', 'email', 'profile'] });
    expect(resolved.secretValues).toEqual(['top-secret-value-123']);
    expect(() =>
      resolveProviderConfig(provider, { ...env, OAUTH_OIDC_ISSUER: 'http://login.example.com' }, settingsFromRecord({})),
    ).toThrow();
    const missing = (() => {
      try {
        resolveProviderConfig(provider, { OAUTH_OIDC_ISSUER: env.OAUTH_OIDC_ISSUER }, settingsFromRecord({}));
      } catch (errors) {
        return (errors as Error[]).map((e) => e.message);
      }
      return [];
    })();
    expect(missing).toEqual([
      expect.stringContaining('OAUTH_OIDC_CLIENT_ID (setting oauth.oidc.client_id): is required'),
      expect.stringContaining('OAUTH_OIDC_CLIENT_SECRET (setting oauth.oidc.client_secret): is required'),
    ]);
  });

  it('fails a code exchange with the wrong client secret as final, without showing the secret', async () => {
    const wrongSecret = 'wrong-client-secret-value-0987';
    const oauth = await make({ clientSecret: wrongSecret });
    const login = await completeLogin(oauth, idp.loginAs('alice'));
    const err = await rejectionOf(oauth.exchange(login.input()), 'an exchange with the wrong client secret');
    expect(err.message).toMatch(/invalid_client/);
    expect(err.message).not.toContain(wrongSecret);
    expect((err as ProviderError).code).toBe('OAUTH_CODE_REJECTED');
    expect(isRetryable(err)).toBe(false);
    await oauth.close();
  });

  it('reports an unreachable issuer: check() is an error, a login start fails retryable', async () => {
    const oauth = await make({ issuer: `http://127.0.0.1:${await freePort()}`, timeoutMs: '2000' });
    const health = await oauth.check(AbortSignal.timeout(10_000));
    expect(health.status).toBe('error');
    expect(health.error).toMatch(/ECONNREFUSED/);
    const err = await rejectionOf(startLogin(oauth), 'a login start while the issuer is down');
    expect(err.message).toMatch(/cannot reach/);
    expect(isRetryable(err)).toBe(true);
    await oauth.close();
  });

  it('reports a discovery document that names another issuer as an error', async () => {
    // A server whose discovery document belongs to someone else (a mistyped issuer URL behind a proxy, say).
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ issuer: 'https://elsewhere.example.com' }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const oauth = await make({ issuer: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
      const health = await oauth.check(AbortSignal.timeout(10_000));
      expect(health).toMatchObject({ status: 'error', error: expect.stringContaining('names issuer https://elsewhere.example.com') });
      await oauth.close();
    } finally {
      server.close();
    }
  });
});
