import { type Health, InvalidInputError, type OAuthProfile, type OAuthProvider, type ProviderError } from '@apigate/kernel';
import * as oidc from 'openid-client';
import { clean, explain, type Failure, OAUTH_ERROR_CODES, providerError } from './errors.js';
import { type CheckOptions, checkEndpoint } from './http.js';
import { discoveryUrl, isLoopbackHttp } from './urls.js';

export interface ProfileContext {
  accessToken: string;
  /** Claims of the validated ID token (OpenID Connect only). */
  idToken?: oidc.IDToken;
  /** The userinfo endpoint's claims for the ID token's subject; undefined when the server has none. */
  userInfo(): Promise<oidc.UserInfoResponse | undefined>;
  /** Aborts after the provider's timeout, for the extra requests a profile needs. */
  signal: AbortSignal;
  timeoutMs: number;
}

export interface OAuthClientOptions {
  /** The provider name: `profile.provider` and the prefix of errors (`oauth/<provider>`). */
  provider: string;
  displayName: string;
  clientId: string;
  clientSecret: string;
  scopes: readonly string[];
  timeoutMs: number;
  /**
   * `oidc`: endpoints from the issuer's discovery document, a nonce in every login and a
   * validated ID token. `oauth2`: fixed endpoints, no ID token (GitHub).
   */
  server:
    | { protocol: 'oidc'; issuer: string }
    | { protocol: 'oauth2'; issuer: string; authorizationEndpoint: string; tokenEndpoint: string };
  /** Extra authorization request parameters (e.g. Google's `hd`). */
  authorizationParams?: Record<string, string>;
  /** Sees every HTTP answer before openid-client reads it (GitHub's 200-with-error token answers). */
  fetch?: oidc.CustomFetch;
  /**
   * One GET that shows the provider is reachable (an API status URL). Default for `oidc`: the
   * discovery document, which must name the configured issuer.
   */
  health?: { url: string; where: string; expect?: CheckOptions['expect'] };
  /** Builds the normalised profile once the code has been exchanged (and the ID token validated). */
  profile(ctx: ProfileContext): Promise<OAuthProfile>;
}

const VERIFIER_RE = /^[A-Za-z0-9\-._~]{43,128}$/;

function assertToken(value: unknown, name: string): void {
  if (typeof value !== 'string' || value.length === 0 || value.length > 1024) {
    throw new InvalidInputError(`${name} must be a non-empty string of at most 1024 characters`);
  }
}

/** The redirect URI as the IdP must see it: absolute http(s), no query or fragment (openid-client derives it from the callback). */
function assertRedirectUri(value: unknown): URL {
  const url = typeof value === 'string' && URL.canParse(value) ? new URL(value) : undefined;
  if (!url || !['http:', 'https:'].includes(url.protocol) || url.search || url.hash) {
    throw new InvalidInputError('redirectUri must be an absolute http(s) URL without query or fragment');
  }
  return url;
}

/** RFC 7636: the verifier is 43 to 128 unreserved characters. */
function assertVerifier(value: unknown): void {
  if (typeof value !== 'string' || !VERIFIER_RE.test(value)) {
    throw new InvalidInputError('codeVerifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636)');
  }
}

/** Client authentication the server supports: Basic unless it lists only client_secret_post (RFC 8414 defaults to Basic). */
function clientAuth(secret: string): oidc.ClientAuth {
  const basic = oidc.ClientSecretBasic(secret);
  const post = oidc.ClientSecretPost(secret);
  return (as, client, body, headers) => {
    const methods = as.token_endpoint_auth_methods_supported;
    const useBasic = !methods || methods.includes('client_secret_basic');
    return (useBasic ? basic : post)(as, client, body, headers);
  };
}

/**
 * One OAuthProvider over openid-client. Endpoints are discovered on first use and kept; a failed
 * discovery is retried by the next call. Errors are ProviderErrors with the client secret masked,
 * a stable `code` for login failures (OAUTH_ERROR_CODES) and `retryable` only where a retry helps.
 */
export class OAuthClient implements OAuthProvider {
  readonly displayName: string;
  private configuration: Promise<oidc.Configuration> | undefined;
  private readonly secrets: string[];
  private readonly where: string;

  constructor(private readonly o: OAuthClientOptions) {
    this.displayName = o.displayName;
    this.secrets = [o.clientSecret];
    this.where = `the identity provider at ${new URL(o.server.issuer).host}`;
  }

  private fail(failure: Failure, operation: string): ProviderError {
    return providerError(failure, { provider: this.o.provider, secrets: this.secrets }, operation);
  }

  private config(): Promise<oidc.Configuration> {
    this.configuration ??= this.load().catch((err: unknown) => {
      this.configuration = undefined;
      throw err;
    });
    return this.configuration;
  }

  private async load(): Promise<oidc.Configuration> {
    const { server } = this.o;
    const insecure = isLoopbackHttp(server.issuer);
    const timeout = this.o.timeoutMs / 1000;
    const auth = clientAuth(this.o.clientSecret);
    if (server.protocol === 'oidc') {
      return oidc.discovery(new URL(server.issuer), this.o.clientId, this.o.clientSecret, auth, {
        timeout,
        ...(insecure ? { execute: [oidc.allowInsecureRequests] } : {}),
        ...(this.o.fetch ? { [oidc.customFetch]: this.o.fetch } : {}),
      });
    }
    const config = new oidc.Configuration(
      {
        issuer: server.issuer,
        authorization_endpoint: server.authorizationEndpoint,
        token_endpoint: server.tokenEndpoint,
        token_endpoint_auth_methods_supported: ['client_secret_post'],
        code_challenge_methods_supported: ['S256'],
      },
      this.o.clientId,
      this.o.clientSecret,
      auth,
    );
    config.timeout = timeout;
    if (this.o.fetch) config[oidc.customFetch] = this.o.fetch;
    if (insecure) oidc.allowInsecureRequests(config);
    return config;
  }

  async authorizationUrl(i: { redirectUri: string; state: string; codeVerifier: string; nonce: string }): Promise<URL> {
    assertRedirectUri(i.redirectUri);
    assertToken(i.state, 'state');
    assertToken(i.nonce, 'nonce');
    assertVerifier(i.codeVerifier);
    try {
      const config = await this.config();
      const oidcScopes = this.o.server.protocol === 'oidc' ? ['openid'] : [];
      return oidc.buildAuthorizationUrl(config, {
        redirect_uri: i.redirectUri,
        scope: [...new Set([...oidcScopes, ...this.o.scopes])].join(' '),
        state: i.state,
        code_challenge: await oidc.calculatePKCECodeChallenge(i.codeVerifier),
        code_challenge_method: 'S256',
        ...(this.o.server.protocol === 'oidc' ? { nonce: i.nonce } : {}),
        ...this.o.authorizationParams,
      });
    } catch (err) {
      throw this.fail(explain(err, { where: this.where, timeoutMs: this.o.timeoutMs }), 'authorizationUrl');
    }
  }

  /** The checks that need no server, with messages that say which one failed. openid-client repeats them. */
  private checkCallback(callbackUrl: URL, expectedState: string): void {
    const params = callbackUrl.searchParams;
    const state = params.get('state');
    if (state === null) {
      throw this.fail(
        { message: 'the callback has no state parameter', code: OAUTH_ERROR_CODES.stateMismatch, retryable: false },
        'exchange',
      );
    }
    if (state !== expectedState) {
      throw this.fail(
        {
          message: "the callback's state does not match this login (stale or forged callback)",
          code: OAUTH_ERROR_CODES.stateMismatch,
          retryable: false,
        },
        'exchange',
      );
    }
    const error = params.get('error');
    if (error !== null) {
      throw this.fail(
        {
          message: `the identity provider returned ${clean(error, 80)}${params.get('error_description') ? ` (${clean(params.get('error_description')!)})` : ''}`,
          code: error === 'access_denied' ? OAUTH_ERROR_CODES.accessDenied : OAUTH_ERROR_CODES.authorizationError,
          retryable: false,
        },
        'exchange',
      );
    }
    if (!params.get('code')) {
      throw this.fail(
        { message: 'the callback has neither a code nor an error', code: OAUTH_ERROR_CODES.invalidCallback, retryable: false },
        'exchange',
      );
    }
  }

  async exchange(i: {
    callbackUrl: URL;
    redirectUri: string;
    expectedState: string;
    codeVerifier: string;
    expectedNonce: string;
  }): Promise<OAuthProfile> {
    if (!(i.callbackUrl instanceof URL)) throw new InvalidInputError('callbackUrl must be a URL');
    const redirect = assertRedirectUri(i.redirectUri);
    assertToken(i.expectedState, 'expectedState');
    assertToken(i.expectedNonce, 'expectedNonce');
    assertVerifier(i.codeVerifier);
    this.checkCallback(i.callbackUrl, i.expectedState);
    const ctx = { where: this.where, timeoutMs: this.o.timeoutMs };
    try {
      const config = await this.config();
      // openid-client sends the callback URL without its query as redirect_uri: make it the
      // registered one, whatever host or scheme the gateway saw the callback on.
      redirect.search = i.callbackUrl.search;
      const oidcChecks = this.o.server.protocol === 'oidc' ? { expectedNonce: i.expectedNonce, idTokenExpected: true } : {};
      const tokens = await oidc.authorizationCodeGrant(config, redirect, {
        pkceCodeVerifier: i.codeVerifier,
        expectedState: i.expectedState,
        ...oidcChecks,
      });
      const idToken = tokens.claims();
      return await this.o.profile({
        accessToken: tokens.access_token,
        ...(idToken ? { idToken } : {}),
        userInfo: async () =>
          config.serverMetadata().userinfo_endpoint
            ? oidc.fetchUserInfo(config, tokens.access_token, idToken?.sub ?? oidc.skipSubjectCheck)
            : undefined,
        signal: AbortSignal.timeout(this.o.timeoutMs),
        timeoutMs: this.o.timeoutMs,
      });
    } catch (err) {
      throw this.fail(explain(err, ctx), 'exchange');
    }
  }

  /** The discovery document, which must name the configured issuer (as openid-client will insist). */
  private discoveryHealth(issuer: string): NonNullable<OAuthClientOptions['health']> {
    const where = 'the discovery document';
    return {
      url: discoveryUrl(issuer),
      where,
      expect: ({ status, body }) => {
        if (status !== 200) return `${where} answered HTTP ${status}`;
        const named = (body as { issuer?: unknown } | undefined)?.issuer;
        if (typeof named !== 'string' || !URL.canParse(named)) return `${where} names no issuer`;
        return new URL(named).href === new URL(issuer).href ? undefined : `${where} names issuer ${clean(named)}, not ${issuer}`;
      },
    };
  }

  async check(signal: AbortSignal): Promise<Health> {
    const health = this.o.health ?? this.discoveryHealth(this.o.server.issuer);
    return checkEndpoint(health.url, {
      signal: AbortSignal.any([signal, AbortSignal.timeout(this.o.timeoutMs)]),
      where: health.where,
      timeoutMs: this.o.timeoutMs,
      ...(health.expect ? { expect: health.expect } : {}),
    });
  }

  /** Nothing held open; the kernel refuses calls after close(). */
  async close(): Promise<void> {}
}
