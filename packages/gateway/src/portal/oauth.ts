import { randomBytes } from 'node:crypto';
import { describeError, type Logger, type OAuthProfile, type OAuthProvider, ProviderError } from '@apigate/kernel';
import { type Context, Hono } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { isDomainError } from '../domain/errors.js';
import type { User } from '../domain/users.js';
import { errorBody } from '../http/request.js';
import { decrypt, encrypt } from '../store/crypto.js';
import type { Store } from '../domain/open-store.js';

/** Holds one sign-in's state, PKCE verifier, nonce and return path between start and callback. */
export const OAUTH_COOKIE = 'apigate_oauth';
const COOKIE_PATH = '/portal/api/oauth';
/** How long a person has to finish logging in at the identity provider. */
const FLOW_TTL_MS = 10 * 60_000;
const KEY_PURPOSE = 'portal oauth cookie v1';
/** Provider mappings of OAuth identities: `oauth:<name>`, entity `user`, local id = user id, external id = the IdP subject. */
export const oauthMappingProvider = (name: string) => `oauth:${name}`;
const ENTITY = 'user';
const HOME = '/portal';

interface Flow {
  provider: string;
  state: string;
  verifier: string;
  nonce: string;
  returnTo: string;
  expiresAt: number;
}

export interface OAuthRoutesOptions {
  store: Store;
  logger: Logger;
  /** The enabled providers by name (the kernel's `oauth` capability); none means the routes answer an empty list and 404. */
  providers: ReadonlyMap<string, OAuthProvider> | undefined;
  /** The portal's public base URL for this request (APIGATE_PUBLIC_URL / portal.public_url / loopback only). */
  publicBase(c: Context): string;
  isHttps(c: Context): boolean;
  /** Sets the normal portal session cookie for the user. */
  startSession(c: Context, user: User): Promise<unknown>;
  now(): Date;
}

/** A failed sign-in: `code` goes to /portal?error=<code> (or the JSON error body). */
class SignInError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: ContentfulStatusCode = 400,
  ) {
    super(message);
  }
}

/**
 * A same-origin relative path to send the person to after signing in, or undefined. Refuses
 * `//host`, `/\host`, absolute URLs and control characters, which browsers would resolve to
 * another site (an open redirect).
 */
export function safeReturnPath(raw: string | undefined): string | undefined {
  if (raw === undefined || raw === '') return HOME;
  if (!raw.startsWith('/') || raw.startsWith('//') || /[\\\u0000-\u001f\u007f]/.test(raw)) return undefined;
  const base = 'http://portal.invalid';
  let url: URL;
  try {
    url = new URL(raw, base);
  } catch {
    return undefined;
  }
  return url.origin === base ? `${url.pathname}${url.search}${url.hash}` : undefined;
}

const token = () => randomBytes(32).toString('base64url');

/**
 * Social sign-in for the customer portal, mounted at /portal/api/oauth: `GET /` lists the
 * providers, `GET /:provider/start` sends the browser to the identity provider, and
 * `GET /:provider/callback` signs the person in (or up) and sets the portal session cookie.
 */
export function createOAuthRoutes(o: OAuthRoutesOptions): Hono {
  const { store } = o;
  const d = store.domain;
  const providers = o.providers ?? new Map<string, OAuthProvider>();
  // Derived from the settings key, so any instance sharing the database can finish a flow another began.
  const key = store.deriveKey(KEY_PURPOSE);
  const context = (provider: string) => `${OAUTH_COOKIE}:${provider}`;

  const provider = (name: string): OAuthProvider => {
    const p = providers.get(name);
    if (!p) throw new SignInError('unknown_provider', `oauth: no sign-in provider named "${name}" is enabled`, 404);
    return p;
  };
  const redirectUri = (c: Context, name: string) => `${o.publicBase(c)}/portal/api/oauth/${encodeURIComponent(name)}/callback`;
  const wantsJson = (c: Context) => {
    const accept = c.req.header('accept') ?? '';
    return accept.includes('application/json') && !accept.includes('text/html');
  };

  function fail(c: Context, err: unknown) {
    const e =
      err instanceof SignInError
        ? err
        : (() => {
            // Only the code and our own line reach the browser; the details go to the log.
            o.logger.warn({ path: c.req.path }, `customer portal: oauth sign-in failed: ${describeError(err)}`);
            return new SignInError('oauth_failed', 'oauth: the sign-in could not be completed; try again', 502);
          })();
    if (wantsJson(c)) return c.json(errorBody(e.code, e.message), e.status);
    return c.redirect(`${HOME}?error=${encodeURIComponent(e.code)}`, 302);
  }

  function readFlow(c: Context, name: string): Flow {
    const raw = getCookie(c, OAUTH_COOKIE);
    // Cleared first: a flow is good for one callback, whatever its outcome.
    deleteCookie(c, OAUTH_COOKIE, { path: COOKIE_PATH, httpOnly: true, secure: o.isHttps(c), sameSite: 'Lax' });
    const mismatch = new SignInError('state_mismatch', 'oauth: this sign-in was not started here or has expired; start again');
    if (!raw) throw mismatch;
    let flow: Flow;
    try {
      flow = JSON.parse(decrypt(key, raw, context(name))) as Flow;
    } catch {
      throw mismatch;
    }
    if (flow.provider !== name || flow.expiresAt < o.now().getTime() || c.req.query('state') !== flow.state) throw mismatch;
    return flow;
  }

  /** The identity's user: the linked one, else the verified-email match (linked now), else a new user. */
  async function userFor(name: string, profile: OAuthProfile): Promise<User> {
    const mappingProvider = oauthMappingProvider(name);
    const linked = await store.mappings.findLocal(mappingProvider, ENTITY, profile.subject);
    if (linked) {
      const user = await d.users.find(linked.localId);
      if (user) return user;
      await store.mappings.delete(mappingProvider, ENTITY, linked.localId); // the user was deleted since
    }
    const email = profile.email?.trim().toLowerCase();
    if (!email) throw new SignInError('email_required', `oauth: ${name} did not share an email address; allow access to it and try again`);
    let user = await d.users.findByEmail(email);
    if (user) {
      if (!profile.emailVerified) {
        throw new SignInError(
          'email_not_verified',
          `oauth: ${email} already has an account and ${name} has not verified the address; log in with your password`,
          409,
        );
      }
      if (!user.emailVerified) {
        // The provider proved the address; a password set by whoever signed up unverified was never proven (it could be a squatter's), so it goes.
        await d.users.setPasswordHash(user.id, null);
        await d.users.update(user.id, { emailVerified: true });
        user = (await d.users.find(user.id)) ?? user;
      }
    } else {
      try {
        user = await d.users.create({ email, name: profile.name?.slice(0, 200) ?? '', emailVerified: profile.emailVerified });
      } catch (err) {
        if (isDomainError(err) && err.code === 'NO_DEFAULT_PLAN')
          throw new SignInError('signup_unavailable', 'oauth: sign up is not open yet: the API provider has not created a plan', 503);
        throw err;
      }
    }
    try {
      await store.mappings.put({ provider: mappingProvider, entityType: ENTITY, localId: user.id, externalId: profile.subject });
    } catch (err) {
      if ((err as { code?: string }).code !== 'MAPPING_CONFLICT') throw err;
      throw new SignInError('account_conflict', `oauth: ${email} is already linked to another ${name} account`, 409);
    }
    return user;
  }

  const routes = new Hono();

  routes.get('/', (c) => c.json({ data: [...providers].map(([name, p]) => ({ name, display_name: p.displayName })) }));

  routes.get('/:provider/start', async (c) => {
    try {
      const name = c.req.param('provider');
      const p = provider(name);
      const returnTo = safeReturnPath(c.req.query('return_to'));
      if (!returnTo) throw new SignInError('invalid_return_to', 'return_to: expected a path on this site such as /portal/keys');
      const flow: Flow = {
        provider: name,
        state: token(),
        verifier: token(),
        nonce: token(),
        returnTo,
        expiresAt: o.now().getTime() + FLOW_TTL_MS,
      };
      const url = await p.authorizationUrl({
        redirectUri: redirectUri(c, name),
        state: flow.state,
        codeVerifier: flow.verifier,
        nonce: flow.nonce,
      });
      setCookie(c, OAUTH_COOKIE, encrypt(key, JSON.stringify(flow), context(name)), {
        httpOnly: true,
        secure: o.isHttps(c),
        sameSite: 'Lax', // Lax: the IdP's redirect back is a top-level GET, which still carries it
        path: COOKIE_PATH,
        maxAge: FLOW_TTL_MS / 1000,
      });
      return c.redirect(url.href, 302);
    } catch (err) {
      return fail(c, err);
    }
  });

  routes.get('/:provider/callback', async (c) => {
    try {
      const name = c.req.param('provider');
      const p = provider(name);
      const flow = readFlow(c, name);
      const uri = redirectUri(c, name);
      let profile: OAuthProfile;
      try {
        // The IdP's query on our registered redirect URI: the request's own host may differ behind a proxy.
        const callbackUrl = new URL(uri);
        callbackUrl.search = new URL(c.req.url).search;
        profile = await p.exchange({
          callbackUrl,
          redirectUri: uri,
          expectedState: flow.state,
          codeVerifier: flow.verifier,
          expectedNonce: flow.nonce,
        });
      } catch (err) {
        if (err instanceof ProviderError && err.code === 'OAUTH_ACCESS_DENIED')
          throw new SignInError('access_denied', `oauth: the sign-in was cancelled at ${p.displayName}`);
        if (err instanceof ProviderError && err.code === 'OAUTH_STATE_MISMATCH')
          throw new SignInError('state_mismatch', 'oauth: this sign-in was not started here; start again');
        throw err;
      }
      const user = await userFor(name, profile);
      if (user.status !== 'active')
        throw new SignInError('account_suspended', 'oauth: this account is suspended; contact the API provider', 403);
      await o.startSession(c, user);
      return c.redirect(flow.returnTo, 302);
    } catch (err) {
      return fail(c, err);
    }
  });

  return routes;
}
