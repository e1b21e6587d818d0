import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { OAUTH_TEST_REDIRECT_URI } from '@apigate/provider-testkit';

export interface GitHubEmail {
  email: string;
  primary: boolean;
  verified: boolean;
  visibility: 'public' | 'private' | null;
}

export interface FakeUser {
  login: string;
  id: number;
  name: string | null;
  /** The public profile email (null unless the user made one public). */
  email: string | null;
  emails: GitHubEmail[];
}

export interface FakeGitHub {
  /** Web base (github.com's role): /login/oauth/authorize and /login/oauth/access_token. */
  webUrl: string;
  /** API base laid out like GitHub Enterprise Server: `<webUrl>/api/v3`. */
  apiUrl: string;
  clientId: string;
  clientSecret: string;
  /** The account signed in to the fake's web session: who authorizes the app. */
  signedIn: string;
  users: Map<string, FakeUser>;
  /** The API answers as GitHub does when the rate limit is used up (403, x-ratelimit-remaining: 0). */
  rateLimited: boolean;
  /** Answer /rate_limit like a GitHub Enterprise Server with rate limiting disabled (404). */
  rateLimitDisabled: boolean;
  /** Every request: method, path and the headers that matter. */
  requests: { method: string; path: string; accept?: string; userAgent?: string }[];
  close(): Promise<void>;
}

interface Grant {
  login: string;
  redirectUri: string;
  challenge: string | null;
  scope: string;
  used: boolean;
}

const avatar = (id: number) => `https://avatars.githubusercontent.com/u/${id}?v=4`;
const html = (res: ServerResponse, status: number, body: string) =>
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' }).end(`<!DOCTYPE html><html><body>${body}</body></html>`);
const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) =>
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers }).end(JSON.stringify(body));
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');

async function readBody(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  // GitHub takes the token request as a form or as JSON.
  if ((req.headers['content-type'] ?? '').includes('json')) return new URLSearchParams(JSON.parse(text) as Record<string, string>);
  return new URLSearchParams(text);
}

/**
 * Stands in for github.com's OAuth web flow and the REST endpoints a login uses, answering as
 * GitHub documents: the authorize page (here a consent form with Authorize and Cancel) redirects
 * with `code` and `state` or with `error=access_denied`; the token endpoint wants `Accept:
 * application/json` (form-encoded otherwise) and reports failures with HTTP 200 and an `error`
 * (`incorrect_client_credentials`, `bad_verification_code`, `redirect_uri_mismatch`); codes are
 * single use. PKCE is S256 only; GitHub does not document its error for a verifier that does not
 * match, so the fake answers as for a bad code. `GET /user`, `GET /user/emails` (needs the
 * `user:email` or `user` scope) and `GET /rate_limit` answer with GitHub's shapes; a bad token
 * gets 401 "Bad credentials".
 */
export async function startFakeGitHub(): Promise<FakeGitHub> {
  const grants = new Map<string, Grant>();
  const tokens = new Map<string, { login: string; scope: string }>();
  const fake: FakeGitHub = {
    webUrl: '',
    apiUrl: '',
    clientId: 'Iv1.apigatefake0001',
    clientSecret: `fake-github-secret-${randomBytes(8).toString('hex')}`,
    signedIn: 'octocat',
    users: new Map([
      [
        'octocat',
        {
          login: 'octocat',
          id: 583231,
          name: 'The Octocat',
          email: null,
          emails: [
            { email: 'octocat@github.com', primary: true, verified: true, visibility: 'private' },
            { email: 'octocat@users.noreply.github.com', primary: false, verified: true, visibility: null },
          ],
        },
      ],
    ]),
    rateLimited: false,
    rateLimitDisabled: false,
    requests: [],
    close: async () => {},
  };
  const registeredCallback = OAUTH_TEST_REDIRECT_URI;

  const authorize = (url: URL, res: ServerResponse, method: string, form: URLSearchParams) => {
    const p = method === 'POST' ? form : url.searchParams;
    if (p.get('client_id') !== fake.clientId) return html(res, 404, '<h1>404</h1>');
    const redirectUri = p.get('redirect_uri') ?? registeredCallback;
    const back = (params: Record<string, string>) => {
      const to = new URL(redirectUri === registeredCallback ? redirectUri : registeredCallback);
      for (const [k, v] of Object.entries(params)) to.searchParams.set(k, v);
      const state = p.get('state');
      if (state !== null) to.searchParams.set('state', state);
      res.writeHead(302, { location: to.href }).end();
    };
    if (redirectUri !== registeredCallback) {
      return back({
        error: 'redirect_uri_mismatch',
        error_description: 'The redirect_uri MUST match the registered callback URL for this application.',
      });
    }
    const challenge = p.get('code_challenge');
    if (challenge && p.get('code_challenge_method') !== 'S256') {
      return back({ error: 'invalid_request', error_description: 'Only the S256 code challenge method is supported.' });
    }
    if (url.pathname.endsWith('/deny')) {
      return back({
        error: 'access_denied',
        error_description: 'The user has denied your application access.',
        error_uri: 'https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#access-denied',
      });
    }
    if (method === 'POST' && form.get('authorize') === '1') {
      const code = randomBytes(10).toString('hex');
      grants.set(code, { login: fake.signedIn, redirectUri, challenge, scope: p.get('scope') ?? '', used: false });
      return back({ code });
    }
    // The consent page: the signed-in user sees the app and its scopes, then authorizes or cancels.
    const hidden = [...p].map(([k, v]) => `<input type="hidden" name="${esc(k)}" value="${esc(v)}">`).join('');
    return html(
      res,
      200,
      `<h1>Authorize APIGate test app</h1><p>Signed in as ${esc(fake.signedIn)}</p>
       <form action="/login/oauth/authorize" method="post">${hidden}<input type="hidden" name="authorize" value="1"><button type="submit">Authorize</button></form>
       <a href="/login/oauth/authorize/deny?${esc(p.toString())}">Cancel</a>`,
    );
  };

  const accessToken = (req: IncomingMessage, res: ServerResponse, form: URLSearchParams) => {
    const answer = (body: Record<string, string>) => {
      if ((req.headers.accept ?? '').includes('application/json')) return json(res, 200, body);
      res.writeHead(200, { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' }).end(new URLSearchParams(body).toString());
    };
    const error = (error: string, error_description: string) =>
      answer({
        error,
        error_description,
        error_uri: `https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#${error.replaceAll('_', '-')}`,
      });
    if (form.get('client_id') !== fake.clientId || form.get('client_secret') !== fake.clientSecret) {
      return error('incorrect_client_credentials', 'The client_id and/or client_secret passed are incorrect.');
    }
    const grant = grants.get(form.get('code') ?? '');
    const verifier = form.get('code_verifier');
    const pkceOk =
      !grant?.challenge || (verifier !== null && createHash('sha256').update(verifier).digest('base64url') === grant.challenge);
    if (!grant || grant.used || !pkceOk) return error('bad_verification_code', 'The code passed is incorrect or expired.');
    grant.used = true;
    if (form.has('redirect_uri') && form.get('redirect_uri') !== grant.redirectUri) {
      return error('redirect_uri_mismatch', 'The redirect_uri MUST match the registered callback URL for this application.');
    }
    const token = `gho_${randomBytes(18).toString('base64url')}`;
    // GitHub lists granted scopes comma-separated.
    const scope = grant.scope.split(/[ ,]+/).filter(Boolean).join(',');
    tokens.set(token, { login: grant.login, scope });
    answer({ access_token: token, token_type: 'bearer', scope });
  };

  const api = (req: IncomingMessage, res: ServerResponse, path: string) => {
    const limits = {
      'x-ratelimit-limit': '5000',
      'x-ratelimit-remaining': fake.rateLimited ? '0' : '4999',
      'x-ratelimit-resource': 'core',
    };
    if (path === '/rate_limit') {
      if (fake.rateLimitDisabled)
        return json(res, 404, { message: 'Rate limiting is not enabled.', documentation_url: 'https://docs.github.com/rest' });
      const core = { limit: 60, remaining: 60, reset: Math.floor(Date.now() / 1000) + 3600, used: 0, resource: 'core' };
      return json(res, 200, { resources: { core }, rate: core });
    }
    const auth = /^(?:Bearer|token) (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const session = auth ? tokens.get(auth) : undefined;
    const user = session ? fake.users.get(session.login) : undefined;
    if (!session || !user)
      return json(res, 401, { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest', status: '401' });
    if (fake.rateLimited) {
      return json(
        res,
        403,
        { message: `API rate limit exceeded for user ID ${user.id}.`, documentation_url: 'https://docs.github.com/rest' },
        limits,
      );
    }
    const scopes = session.scope.split(',');
    if (path === '/user') {
      return json(
        res,
        200,
        {
          login: user.login,
          id: user.id,
          node_id: `U_${user.id}`,
          avatar_url: avatar(user.id),
          type: 'User',
          site_admin: false,
          name: user.name,
          email: user.email,
        },
        limits,
      );
    }
    if (path === '/user/emails') {
      if (!scopes.includes('user:email') && !scopes.includes('user'))
        return json(res, 404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' });
      return json(res, 200, user.emails, limits);
    }
    json(res, 404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' });
  };

  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', fake.webUrl);
    fake.requests.push({
      method: req.method ?? '',
      path: url.pathname,
      ...(req.headers.accept ? { accept: req.headers.accept } : {}),
      ...(req.headers['user-agent'] ? { userAgent: req.headers['user-agent'] } : {}),
    });
    const form = req.method === 'POST' ? await readBody(req) : new URLSearchParams();
    if (url.pathname.startsWith('/login/oauth/authorize')) return authorize(url, res, req.method ?? 'GET', form);
    if (url.pathname === '/login/oauth/access_token' && req.method === 'POST') return accessToken(req, res, form);
    if (url.pathname.startsWith('/api/v3/') && req.method === 'GET') return api(req, res, url.pathname.slice('/api/v3'.length));
    html(res, 404, '<h1>404</h1>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.webUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  fake.apiUrl = `${fake.webUrl}/api/v3`;
  fake.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return fake;
}
