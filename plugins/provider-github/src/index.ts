import { defineProvider, fields, type OAuthProfile, z } from '@apigate/kernel';
import {
  type CustomFetch,
  clientFields,
  endpointUrl,
  failureError,
  type GetJsonOptions,
  getJson,
  joinUrl,
  OAuthClient,
} from '@apigate/oauth-client';

export const config = z.object({
  ...clientFields,
  /** github.com, or a GitHub Enterprise Server such as https://github.example.com. */
  webUrl: endpointUrl('the GitHub web URL, https://github.com or your GitHub Enterprise Server').default('https://github.com'),
  /** api.github.com, or `<server>/api/v3` for GitHub Enterprise Server. */
  apiUrl: endpointUrl('the GitHub REST API URL, https://api.github.com or https://<server>/api/v3').default('https://api.github.com'),
  /** `read:user` for the profile, `user:email` for the private primary email. */
  scopes: fields.list().default(['read:user', 'user:email']),
});

export type GitHubConfig = z.infer<typeof config>;

interface GitHubUser {
  id: number;
  login: string;
  name: string | null;
  email: string | null;
  avatar_url: string | null;
}

interface GitHubEmail {
  email: string;
  primary: boolean;
  verified: boolean;
}

const API_HEADERS = { accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28', 'user-agent': 'apigate' };

/** GitHub answers a used-up rate limit with 403 and x-ratelimit-remaining: 0 (or 429): worth retrying later. */
const rateLimited = (res: Response): boolean =>
  res.status === 429 || (res.status === 403 && res.headers.get('x-ratelimit-remaining') === '0');

function asUser(body: unknown, where: string): GitHubUser {
  const u = body as Partial<GitHubUser> | undefined;
  if (typeof u?.id !== 'number' || typeof u.login !== 'string')
    throw failureError({ message: `${where} answered GET /user without an id and login`, retryable: false });
  return { id: u.id, login: u.login, name: u.name ?? null, email: u.email ?? null, avatar_url: u.avatar_url ?? null };
}

/**
 * The profile: the numeric user id as the subject (logins can be renamed), the name (else the
 * login), the avatar, and the primary email with its verified flag from GET /user/emails. Without
 * access to that list (a token without `user:email`) the public profile email is used, unverified.
 */
async function githubProfile(cfg: GitHubConfig, accessToken: string, o: Omit<GetJsonOptions, 'where'>): Promise<OAuthProfile> {
  const where = new URL(cfg.apiUrl).host;
  const opts: GetJsonOptions = {
    ...o,
    where,
    headers: { ...API_HEADERS, authorization: `Bearer ${accessToken}` },
    retryableAnswer: rateLimited,
  };
  const user = asUser(await getJson(joinUrl(cfg.apiUrl, 'user'), opts), where);
  let emails: GitHubEmail[] = [];
  try {
    const body = await getJson(joinUrl(cfg.apiUrl, 'user/emails'), opts);
    if (Array.isArray(body)) emails = body.filter((e): e is GitHubEmail => typeof e?.email === 'string');
  } catch (err) {
    const status = (err as { failure?: { status?: number } }).failure?.status;
    if (status !== 403 && status !== 404) throw err;
  }
  const primary = emails.find((e) => e.primary);
  const email = primary?.email ?? user.email ?? undefined;
  const name = user.name?.trim() || user.login;
  return {
    provider: 'github',
    subject: String(user.id),
    ...(email ? { email } : {}),
    emailVerified: primary !== undefined && primary.verified === true,
    name,
    ...(user.avatar_url ? { avatarUrl: user.avatar_url } : {}),
  };
}

/**
 * GitHub's token endpoint reports failures with HTTP 200 and an `error` member; give them the
 * 400 status OAuth 2 (RFC 6749 5.2) uses, so they read as the refusals they are.
 */
function tokenErrorsAs400(tokenEndpoint: string): CustomFetch {
  return async (url, options) => {
    const res = await fetch(url, options as RequestInit);
    if (url !== tokenEndpoint || res.status !== 200) return res;
    const body = (await res
      .clone()
      .json()
      .catch(() => undefined)) as { error?: unknown } | undefined;
    if (typeof body?.error !== 'string') return res;
    return new Response(JSON.stringify(body), { status: 400, headers: { 'content-type': 'application/json' } });
  };
}

/** GitHub's OAuth 2 web flow (no OpenID Connect): state and PKCE S256, profile from the REST API. */
export function createGitHubProvider(cfg: GitHubConfig): OAuthClient {
  const tokenEndpoint = joinUrl(cfg.webUrl, 'login/oauth/access_token');
  const apiHost = new URL(cfg.apiUrl).host;
  return new OAuthClient({
    provider: 'github',
    displayName: 'GitHub',
    clientId: cfg.clientId,
    clientSecret: cfg.clientSecret,
    scopes: cfg.scopes,
    timeoutMs: cfg.timeoutMs,
    server: { protocol: 'oauth2', issuer: cfg.webUrl, authorizationEndpoint: joinUrl(cfg.webUrl, 'login/oauth/authorize'), tokenEndpoint },
    fetch: tokenErrorsAs400(tokenEndpoint),
    // GET /rate_limit does not count against the rate limit. A GitHub Enterprise Server with rate
    // limiting off answers it 404 "Rate limiting is not enabled.", which is a working API too.
    health: {
      url: joinUrl(cfg.apiUrl, 'rate_limit'),
      where: apiHost,
      expect: ({ status, body }) => {
        const message = (body as { message?: unknown } | undefined)?.message;
        if (status === 200 || (status === 404 && typeof message === 'string' && /rate limiting is not enabled/i.test(message)))
          return undefined;
        return `${apiHost} answered GET /rate_limit with HTTP ${status}`;
      },
    },
    profile: ({ accessToken, signal, timeoutMs }) => githubProfile(cfg, accessToken, { signal, timeoutMs }),
  });
}

export default defineProvider({
  capability: 'oauth',
  name: 'github',
  description: 'Sign in with GitHub (OAuth 2 with state and PKCE; GitHub Enterprise Server too)',
  config,
  env: {
    clientId: 'OAUTH_GITHUB_CLIENT_ID',
    clientSecret: 'OAUTH_GITHUB_CLIENT_SECRET',
    webUrl: 'OAUTH_GITHUB_WEB_URL',
    apiUrl: 'OAUTH_GITHUB_API_URL',
    scopes: 'OAUTH_GITHUB_SCOPES',
    timeoutMs: 'OAUTH_GITHUB_TIMEOUT_MS',
  },
  secrets: ['clientSecret'],
  create: (cfg) => createGitHubProvider(cfg),
});
