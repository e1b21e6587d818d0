import { isRetryable, type ProviderError, resolveProviderConfig, settingsFromRecord } from '@apigate/kernel';
import {
  assertValidManifest,
  completeLogin,
  createForTest,
  describeOAuthProvider,
  type OidcServer,
  rejectionOf,
  startOidcProvider,
} from '@apigate/provider-testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pkg from '../package.json' with { type: 'json' };
import provider, { GOOGLE_ISSUER } from '../src/index.js';

// Google's subjects are long numeric strings; Workspace accounts carry an `hd` claim.
const ALICE = '108234567890123456789';
const BOB = '117000000000000000042';
const alice = {
  email: 'alice@example.com',
  email_verified: true,
  name: 'Alice Example',
  picture: 'https://lh3.googleusercontent.com/a/alice=s96-c',
  hd: 'example.com',
};

// oidc-provider set up to behave like accounts.google.com: the ID token itself carries email,
// email_verified, name and picture (conformIdTokenClaims off), and there is no userinfo to fall
// back on, so the profile can only come from the validated ID token.
let idp: OidcServer;
beforeAll(async () => {
  idp = await startOidcProvider({
    accounts: {
      [ALICE]: alice,
      [BOB]: { email: 'bob.unverified@gmail.com', email_verified: false, name: 'Bob' },
    },
    configuration: {
      conformIdTokenClaims: false,
      claims: {
        openid: ['sub', 'hd'],
        email: ['email', 'email_verified'],
        profile: ['name', 'given_name', 'family_name', 'picture', 'locale'],
      },
      features: { userinfo: { enabled: false } },
    },
  });
});
afterAll(() => idp?.close());

const make = async (over: Record<string, string> = {}) => (await createForTest(provider, { ...idp.clientConfig, ...over })).provider;

describeOAuthProvider(provider, {
  name: 'provider-google conformance (oidc-provider behaving like Google)',
  config: () => idp.clientConfig,
  authorize: (authUrl) => idp.loginAs(ALICE)(authUrl),
  protocol: 'oidc',
  scopes: ['email', 'profile'],
  expectedProfile: {
    provider: 'google',
    subject: ALICE,
    email: alice.email,
    emailVerified: true,
    name: alice.name,
    avatarUrl: alice.picture,
  },
  additionalTests: ({ provider: oauth, login }) => {
    it('takes email_verified from the ID token: false stays unverified', async () => {
      const bob = await login(idp.loginAs(BOB));
      await expect(oauth().exchange(bob.input())).resolves.toEqual({
        provider: 'google',
        subject: BOB,
        email: 'bob.unverified@gmail.com',
        emailVerified: false,
        name: 'Bob',
      });
    });
  },
});

describe('provider-google', () => {
  const exchangeAs = async (oauth: Awaited<ReturnType<typeof make>>, account: string) => {
    const login = await completeLogin(oauth, idp.loginAs(account));
    return { authUrl: login.authUrl, result: oauth.exchange(login.input()) };
  };

  it('has a valid manifest', () => {
    assertValidManifest(pkg, provider);
  });

  it('uses https://accounts.google.com unless told otherwise and reads the spec env vars', () => {
    const env = { OAUTH_GOOGLE_CLIENT_ID: '1234-abc.apps.googleusercontent.com', OAUTH_GOOGLE_CLIENT_SECRET: 'GOCSPX-secret-value-1234' };
    const resolved = resolveProviderConfig(provider, env, settingsFromRecord({}));
    expect(resolved.config).toMatchObject({ issuer: GOOGLE_ISSUER, clientId: env.OAUTH_GOOGLE_CLIENT_ID });
    expect(resolved.secretValues).toEqual([env.OAUTH_GOOGLE_CLIENT_SECRET]);
    const fromSetting = resolveProviderConfig(provider, env, settingsFromRecord({ 'oauth.google.issuer': 'http://localhost:9999' }));
    expect(fromSetting.config.issuer).toBe('http://localhost:9999');
    expect(() => resolveProviderConfig(provider, { ...env, OAUTH_GOOGLE_HOSTED_DOMAIN: 'not a domain' }, settingsFromRecord({}))).toThrow();
  });

  it('with a hosted domain: asks Google for it and accepts an account of that domain', async () => {
    const oauth = await make({ hostedDomain: 'example.com' });
    const { authUrl, result } = await exchangeAs(oauth, ALICE);
    expect(authUrl.searchParams.get('hd')).toBe('example.com');
    await expect(result).resolves.toMatchObject({ subject: ALICE, email: alice.email });
    await oauth.close();
  });

  it('with a hosted domain: refuses an account outside it as final, with a stable code', async () => {
    const oauth = await make({ hostedDomain: 'example.com' });
    const err = await rejectionOf((await exchangeAs(oauth, BOB)).result, 'a gmail.com account for an example.com-only login');
    expect(err.message).toContain('not in the Workspace domain example.com');
    expect((err as ProviderError).code).toBe('OAUTH_ACCOUNT_REJECTED');
    expect(isRetryable(err)).toBe(false);
    await oauth.close();
  });
});
