import { createHash, randomBytes } from 'node:crypto';
import type { OAuthProfile, OAuthProvider } from '@apigate/kernel';
import { describe, expect, it } from 'vitest';
import { expectFinalRejection, instancePerTest, lifecycleTests } from './expectations.js';
import { type DefinitionOf, describeSuite, resolveSuite, type SuiteSetup } from './suite.js';

import { OAUTH_TEST_REDIRECT_URI } from './oauth-idp.js';

export { expectFinalRejection, rejectionOf } from './expectations.js';
export * from './oauth-idp.js';

export type OAuthExchangeInput = Parameters<OAuthProvider['exchange']>[0];

/** One login the suite started and completed at the identity provider. */
export interface CompletedLogin {
  state: string;
  codeVerifier: string;
  nonce: string;
  /** What `authorizationUrl` returned. */
  authUrl: URL;
  /** Where the identity provider sent the browser back. */
  callbackUrl: URL;
  /** The exchange input for this login; `over` replaces any part of it. */
  input(over?: Partial<OAuthExchangeInput>): OAuthExchangeInput;
}

export interface OAuthSuiteContext {
  /** The instance made by `create` for the current test. */
  provider(): OAuthProvider;
  /**
   * Starts a login with fresh state, verifier and nonce, and completes it through `authorize`
   * (or another user's, or one that cancels: `as`).
   */
  login(as?: (authUrl: URL) => Promise<URL>): Promise<CompletedLogin>;
  redirectUri: string;
}

export interface OAuthSuiteOptions {
  name?: string;
  /** Timeout of each test in ms (default 30 s). */
  timeout?: number;
  /** Called before each test; the suite closes the instance after it. */
  create: () => OAuthProvider | Promise<OAuthProvider>;
  /**
   * Plays the user at the identity provider: opens `authUrl`, logs in as the test user and
   * consents, and returns the URL the identity provider redirected the browser to (the callback
   * with `code` and `state`; not followed). `browserLogin` does this for HTML login pages.
   */
  authorize: (authUrl: URL) => Promise<URL>;
  /** `oidc` (an ID token bound to a nonce) or `oauth2` (no ID token, no nonce: GitHub). */
  protocol: 'oidc' | 'oauth2';
  /** The redirect URI registered for the test client (default `OAUTH_TEST_REDIRECT_URI`). */
  redirectUri?: string;
  /** Scopes the authorization URL must request (`openid` is always expected with `oidc`). */
  scopes?: string[];
  /** What the test user's profile must contain (compared with `toMatchObject`). */
  expectedProfile: Partial<OAuthProfile>;
  additionalTests?: (ctx: OAuthSuiteContext) => void;
}

/** What `describeOAuthProvider(definition, setup)` takes besides the setup every suite takes. */
export interface OAuthSuiteSetup
  extends SuiteSetup,
    Pick<OAuthSuiteOptions, 'authorize' | 'protocol' | 'redirectUri' | 'scopes' | 'expectedProfile' | 'additionalTests'> {}

const TEST_TIMEOUT = 30_000;
const random = (bytes: number): string => randomBytes(bytes).toString('base64url');
const s256 = (verifier: string): string => createHash('sha256').update(verifier).digest('base64url');

/** Asks `provider` for an authorization URL with a fresh random state, PKCE verifier and nonce. */
export async function startLogin(provider: OAuthProvider, redirectUri = OAUTH_TEST_REDIRECT_URI) {
  const login = { state: random(16), codeVerifier: random(32), nonce: random(16) };
  return { ...login, authUrl: await provider.authorizationUrl({ redirectUri, ...login }) };
}

/**
 * A whole login up to the callback: `startLogin`, then `authorize` at the identity provider.
 * `input()` is the matching exchange input; exchange it (or a tampered copy) yourself.
 */
export async function completeLogin(
  provider: OAuthProvider,
  authorize: (authUrl: URL) => Promise<URL>,
  redirectUri = OAUTH_TEST_REDIRECT_URI,
): Promise<CompletedLogin> {
  const started = await startLogin(provider, redirectUri);
  const callbackUrl = await authorize(started.authUrl);
  expect(callbackUrl.searchParams.get('state'), 'state in the callback the identity provider sent').toBe(started.state);
  return {
    ...started,
    callbackUrl,
    input: (over = {}) => ({
      callbackUrl,
      redirectUri,
      expectedState: started.state,
      codeVerifier: started.codeVerifier,
      expectedNonce: started.nonce,
      ...over,
    }),
  };
}

/**
 * Conformance suite for OAuth providers: the authorization URL (state, PKCE S256, nonce,
 * redirect URI, scopes), a full login against the real or stand-in identity provider, and the
 * callbacks that must fail: wrong or missing state, replayed, invalid or unverifiable codes,
 * a wrong nonce (OIDC) and an error redirect from the identity provider.
 */
export function describeOAuthProvider(definition: DefinitionOf<'oauth'>, setup: OAuthSuiteSetup): void;
/** @deprecated The 1.0 form: pass the definition and its config instead, `describeOAuthProvider(definition, { config, ... })`. */
export function describeOAuthProvider(opts: OAuthSuiteOptions): void;
export function describeOAuthProvider(first: DefinitionOf<'oauth'> | OAuthSuiteOptions, setup?: OAuthSuiteSetup): void {
  const suite = resolveSuite('oauth', 'oauth provider conformance', first, setup);
  const opts = suite.opts;
  const redirectUri = opts.redirectUri ?? OAUTH_TEST_REDIRECT_URI;
  describeSuite(suite, TEST_TIMEOUT, () => {
    const provider = instancePerTest('oauth', opts.create);

    const start = () => startLogin(provider(), redirectUri);
    const login = (as = opts.authorize) => completeLogin(provider(), as, redirectUri);
    /** A copy of the callback URL with some parameters changed (undefined removes one). */
    const tamper = (url: URL, changes: Record<string, string | undefined>): URL => {
      const copy = new URL(url);
      for (const [k, v] of Object.entries(changes)) {
        if (v === undefined) copy.searchParams.delete(k);
        else copy.searchParams.set(k, v);
      }
      return copy;
    };

    describe('authorizationUrl', () => {
      it('carries the client, redirect URI, state, PKCE S256 challenge and scopes', async () => {
        const { authUrl, state, codeVerifier, nonce } = await start();
        expect(['http:', 'https:']).toContain(authUrl.protocol);
        const p = authUrl.searchParams;
        expect(p.get('response_type')).toBe('code');
        expect(p.get('client_id'), 'client_id').toBeTruthy();
        expect(p.get('redirect_uri')).toBe(redirectUri);
        expect(p.get('state')).toBe(state);
        expect(p.get('code_challenge_method')).toBe('S256');
        expect(p.get('code_challenge'), 'code_challenge = BASE64URL(SHA256(verifier))').toBe(s256(codeVerifier));
        expect(p.getAll('code_verifier'), 'the verifier must never leave the server').toEqual([]);
        const scopes = (p.get('scope') ?? '').split(' ').filter(Boolean);
        for (const s of [...(opts.protocol === 'oidc' ? ['openid'] : []), ...(opts.scopes ?? [])]) expect(scopes).toContain(s);
        if (opts.protocol === 'oidc') expect(p.get('nonce')).toBe(nonce);
      });

      it('makes a different challenge for a different verifier', async () => {
        const a = await start();
        const b = await start();
        expect(a.authUrl.searchParams.get('code_challenge')).not.toBe(b.authUrl.searchParams.get('code_challenge'));
        expect(a.authUrl.searchParams.get('state')).not.toBe(b.authUrl.searchParams.get('state'));
      });
    });

    describe('exchange', () => {
      it('returns the normalised profile of the user who logged in', async () => {
        const l = await login();
        const profile = await provider().exchange(l.input());
        expect(typeof profile.provider).toBe('string');
        expect(profile.subject, 'subject').toMatch(/\S/);
        expect(typeof profile.emailVerified).toBe('boolean');
        if (profile.email !== undefined) expect(profile.email).toContain('@');
        if (profile.avatarUrl !== undefined) expect(URL.canParse(profile.avatarUrl), `avatarUrl ${profile.avatarUrl}`).toBe(true);
        expect(profile).toMatchObject(opts.expectedProfile);
      });

      it('returns the same subject for the same user on the next login', async () => {
        const first = await provider().exchange((await login()).input());
        const second = await provider().exchange((await login()).input());
        expect(second.subject).toBe(first.subject);
      });

      it("rejects a callback whose state is not this login's, without retry", async () => {
        const l = await login();
        const err = await expectFinalRejection(provider().exchange(l.input({ expectedState: random(16) })), 'a callback for another state');
        expect(err.message).toMatch(/state/i);
      });

      it('rejects a callback without state, without retry', async () => {
        const l = await login();
        const err = await expectFinalRejection(
          provider().exchange(l.input({ callbackUrl: tamper(l.callbackUrl, { state: undefined }) })),
          'a callback without state',
        );
        expect(err.message).toMatch(/state/i);
      });

      it('rejects a replayed code, without retry', async () => {
        const l = await login();
        await provider().exchange(l.input());
        await expectFinalRejection(provider().exchange(l.input()), 'the same code a second time');
      });

      it('rejects an invalid code, without retry', async () => {
        const l = await login();
        const callbackUrl = tamper(l.callbackUrl, { code: `conformance-invalid-${random(12)}` });
        await expectFinalRejection(provider().exchange(l.input({ callbackUrl })), 'an invalid code');
      });

      it('rejects a code exchanged with another PKCE verifier, without retry', async () => {
        const l = await login();
        await expectFinalRejection(provider().exchange(l.input({ codeVerifier: random(32) })), 'a code with the wrong verifier');
      });

      if (opts.protocol === 'oidc') {
        it('rejects an ID token bound to another nonce, without retry', async () => {
          const l = await login();
          const err = await expectFinalRejection(
            provider().exchange(l.input({ expectedNonce: random(16) })),
            'an ID token for another nonce',
          );
          expect(err.message).toMatch(/nonce/i);
        });
      }

      it('turns an error redirect from the identity provider into a clear final error', async () => {
        // What the IdP sends when the user declines (RFC 6749 4.1.2.1): same state, no code.
        const l = await login();
        const callbackUrl = tamper(l.callbackUrl, {
          code: undefined,
          error: 'access_denied',
          error_description: 'The user declined the request',
        });
        const err = await expectFinalRejection(provider().exchange(l.input({ callbackUrl })), 'an access_denied callback');
        expect(err.message).toContain('access_denied');
      });
    });

    describe('lifecycle', () => {
      lifecycleTests(provider);
    });

    opts.additionalTests?.({ provider, login, redirectUri });
  });
}
