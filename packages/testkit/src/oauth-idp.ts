import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Test identity providers for OAuth suites: an HTTP "browser" that completes a login the way a
 * person would (follow redirects, keep cookies, fill and submit the page's form), and a real
 * OpenID Connect server (the `oidc-provider` package, an optional peer dependency) started in
 * process on a free port.
 */

/** The redirect URI the OAuth suite logs in with unless told otherwise: register it for the test client. */
export const OAUTH_TEST_REDIRECT_URI = 'https://apigate.example.com/portal/oauth/callback';

interface Cookie {
  value: string;
  path: string;
}

/** Reads a tag's attributes: name="value", name='value', name=value and bare names. */
function attributes(tag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of tag.matchAll(/([^\s"'<>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g)) {
    out[m[1]!.toLowerCase()] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return out;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'", apos: "'" };
const decodeEntities = (s: string): string =>
  s.replace(/&(#x[0-9a-f]+|#\d+|[a-z0-9]+);/gi, (m, e: string) =>
    e.startsWith('#x') || e.startsWith('#X')
      ? String.fromCodePoint(Number.parseInt(e.slice(2), 16))
      : e.startsWith('#') && e !== '#39'
        ? String.fromCodePoint(Number(e.slice(1)))
        : (ENTITIES[e.toLowerCase()] ?? m),
  );

/** The first form of a page: where it posts and the fields it would send as it stands. */
function firstForm(html: string): { action: string; method: string; fields: URLSearchParams } | undefined {
  const open = /<form\b[^>]*>/i.exec(html);
  if (!open) return undefined;
  const end = html.indexOf('</form>', open.index);
  const body = html.slice(open.index, end === -1 ? undefined : end);
  const attrs = attributes(open[0].slice(5, -1));
  const fields = new URLSearchParams();
  for (const input of body.matchAll(/<input\b[^>]*>/gi)) {
    const a = attributes(input[0].slice(6, -1));
    if (!a.name || ['submit', 'button', 'image', 'file'].includes(a.type ?? '')) continue;
    if ((a.type === 'checkbox' || a.type === 'radio') && !('checked' in a)) continue;
    fields.append(a.name, a.value ?? '');
  }
  return { action: attrs.action ?? '', method: (attrs.method ?? 'get').toUpperCase(), fields };
}

export interface BrowserLoginOptions {
  /** Where the IdP sends the browser back; the login ends at the first redirect there (not followed). */
  redirectUri: string;
  /** Values typed into every form that has these fields (e.g. `{ login: 'alice', password: 'x' }`). */
  fill?: Record<string, string>;
  /** Gives up after this many requests (default 20). */
  maxSteps?: number;
  /** Sees each HTML page first; a URL returned is opened instead of submitting the form (a cancel link, say). */
  follow?: (page: { url: URL; html: string }) => URL | undefined;
}

/**
 * Completes a login at an identity provider over plain HTTP, as a browser would: follows
 * redirects with a cookie jar (paths respected), and on each HTML page submits its first form
 * with `fill` applied. Returns the callback URL the IdP redirected to, with its code and state.
 */
export async function browserLogin(authUrl: URL, o: BrowserLoginOptions): Promise<URL> {
  const target = new URL(o.redirectUri);
  const atTarget = (u: URL) => u.origin === target.origin && u.pathname === target.pathname;
  const jar = new Map<string, Map<string, Cookie>>();
  let url = authUrl;
  let method = 'GET';
  let body: URLSearchParams | undefined;
  const trail: string[] = [];
  for (let step = 0; step < (o.maxSteps ?? 20); step++) {
    if (atTarget(url)) return url;
    trail.push(`${method} ${url.pathname}`);
    const cookies = [...(jar.get(url.host) ?? new Map<string, Cookie>())]
      .filter(([, c]) => url.pathname.startsWith(c.path))
      .map(([name, c]) => `${name}=${c.value}`);
    const res = await fetch(url, {
      method,
      redirect: 'manual',
      headers: {
        accept: 'text/html,application/json',
        ...(cookies.length ? { cookie: cookies.join('; ') } : {}),
        ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      ...(body ? { body: body.toString() } : {}),
    });
    const hostJar = jar.get(url.host) ?? new Map<string, Cookie>();
    jar.set(url.host, hostJar);
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const a = Object.fromEntries(attrs.map((s) => s.trim().split('=')).map(([k, v]) => [k!.toLowerCase(), v ?? '']));
      const expired = a['max-age'] === '0' || (a.expires !== undefined && Date.parse(a.expires) <= Date.now());
      if (expired) hostJar.delete(name);
      else hostJar.set(name, { value: pair!.slice(eq + 1).trim(), path: a.path || '/' });
    }
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      await res.body?.cancel();
      url = new URL(location, url);
      method = 'GET';
      body = undefined;
      continue;
    }
    const text = await res.text();
    const elsewhere = res.ok ? o.follow?.({ url, html: text }) : undefined;
    if (elsewhere) {
      url = elsewhere;
      method = 'GET';
      body = undefined;
      continue;
    }
    const form = res.ok ? firstForm(text) : undefined;
    if (!form) {
      throw new Error(
        `login stopped at ${method} ${url.href}: HTTP ${res.status} without a redirect or a form (${trail.join(' -> ')}): ${text.slice(0, 300)}`,
      );
    }
    for (const [k, v] of Object.entries(o.fill ?? {})) if (form.fields.has(k)) form.fields.set(k, v);
    const next = new URL(form.action || url.href, url);
    if (form.method === 'GET') {
      next.search = form.fields.toString();
      body = undefined;
    } else body = form.fields;
    url = next;
    method = form.method;
  }
  throw new Error(`login did not reach ${o.redirectUri} within ${o.maxSteps ?? 20} requests (${trail.join(' -> ')})`);
}

export interface OidcServerOptions {
  /**
   * Registered clients, in oidc-provider's client metadata (client_id, client_secret,
   * redirect_uris...). Default: one confidential client for `OAUTH_TEST_REDIRECT_URI` (see `client`).
   */
  clients?: Record<string, unknown>[];
  /** Accounts by login: their claims (`sub` defaults to the login). Log in with `browserLogin(..., { fill: { login } })`. */
  accounts: Record<string, Record<string, unknown>>;
  /**
   * More oidc-provider configuration, over the defaults (`features` merged): devInteractions on,
   * `claims` for the standard `email` and `profile` scopes, a fresh RS256 key and cookie keys.
   */
  configuration?: Record<string, unknown>;
}

export interface OidcServer {
  /** `http://127.0.0.1:<port>`: discovery at `${issuer}/.well-known/openid-configuration`. */
  issuer: string;
  /** The default client's credentials (when `clients` was not given). */
  client: { clientId: string; clientSecret: string; redirectUri: string };
  /** `{ issuer, clientId, clientSecret }` of the default client: config for an OIDC provider under test. */
  clientConfig: { issuer: string; clientId: string; clientSecret: string };
  /** An `authorize` for the OAuth suite: logs in as `login` and consents on the development pages. */
  loginAs(login: string): (authUrl: URL) => Promise<URL>;
  /** The oidc-provider instance, for tests that need its events or models. */
  provider: unknown;
  close(): Promise<void>;
}

/**
 * Starts a real OpenID Connect server (oidc-provider) on 127.0.0.1 and a free port, with the
 * given clients and accounts. Its development login and consent pages accept any password for a
 * known login, so `browserLogin` can complete a login as the user would.
 */
export async function startOidcProvider(o: OidcServerOptions): Promise<OidcServer> {
  let Provider: new (issuer: string, configuration: Record<string, unknown>) => { callback(): (req: unknown, res: unknown) => void };
  try {
    ({ default: Provider } = (await import('oidc-provider')) as unknown as { default: typeof Provider });
  } catch (err) {
    throw new Error('startOidcProvider needs the oidc-provider package: npm install -D oidc-provider', { cause: err });
  }
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = {
    clientId: 'apigate-test',
    clientSecret: `test-secret-${randomBytes(12).toString('hex')}`,
    redirectUri: OAUTH_TEST_REDIRECT_URI,
  };
  const clients = o.clients ?? [
    {
      client_id: client.clientId,
      client_secret: client.clientSecret,
      redirect_uris: [client.redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
    },
  ];
  const jwk = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const provider = new Provider(issuer, {
    clients,
    jwks: { keys: [{ ...jwk, kid: `test-${randomBytes(4).toString('hex')}`, alg: 'RS256', use: 'sig' }] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'given_name', 'family_name', 'preferred_username', 'picture'],
    },
    async findAccount(_ctx: unknown, id: string) {
      const claims = o.accounts[id];
      return claims ? { accountId: id, claims: async () => ({ sub: id, ...claims }) } : undefined;
    },
    ...o.configuration,
    features: { devInteractions: { enabled: true }, ...(o.configuration?.features as object | undefined) },
  });
  server.on('request', provider.callback());
  return {
    issuer,
    client,
    clientConfig: { issuer, clientId: client.clientId, clientSecret: client.clientSecret },
    loginAs: (login) => (authUrl) => browserLogin(authUrl, { redirectUri: client.redirectUri, fill: { login, password: 'any-password' } }),
    provider,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
