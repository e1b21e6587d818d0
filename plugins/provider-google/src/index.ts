import { defineProvider, z } from '@apigate/kernel';
import { clientFields, endpointUrl, failureError, OAUTH_ERROR_CODES, OAuthClient, profileFromClaims } from '@apigate/oauth-client';

export const GOOGLE_ISSUER = 'https://accounts.google.com';

export const config = z.object({
  ...clientFields,
  /** Google's issuer; another one only for a local stand-in in tests. */
  issuer: endpointUrl('the OpenID Connect issuer, https://accounts.google.com').default(GOOGLE_ISSUER),
  hostedDomain: z
    .string()
    .regex(/^[a-z0-9.-]+\.[a-z]{2,}$/i, 'expected a domain such as example.com')
    .optional()
    .describe('a Google Workspace domain: only its accounts may sign in'),
});

export type GoogleConfig = z.infer<typeof config>;

/**
 * Google as the OpenID Connect provider it is: endpoints from its discovery document, PKCE,
 * nonce and a validated ID token, whose claims (email, email_verified, name, picture) make
 * the profile without another request.
 */
export function createGoogleProvider(cfg: GoogleConfig): OAuthClient {
  return new OAuthClient({
    provider: 'google',
    displayName: 'Google',
    clientId: cfg.clientId,
    clientSecret: cfg.clientSecret,
    scopes: ['openid', 'email', 'profile'],
    timeoutMs: cfg.timeoutMs,
    server: { protocol: 'oidc', issuer: cfg.issuer },
    // `hd` only preselects the domain on Google's page; the ID token's hd claim is what counts.
    ...(cfg.hostedDomain ? { authorizationParams: { hd: cfg.hostedDomain } } : {}),
    profile: async ({ idToken }) => {
      const claims: Record<string, unknown> = idToken ?? {};
      if (cfg.hostedDomain && String(claims.hd ?? '').toLowerCase() !== cfg.hostedDomain.toLowerCase()) {
        throw failureError({
          message: `the Google account is not in the Workspace domain ${cfg.hostedDomain}`,
          code: OAUTH_ERROR_CODES.accountRejected,
          retryable: false,
        });
      }
      return profileFromClaims('google', claims);
    },
  });
}

export default defineProvider({
  capability: 'oauth',
  name: 'google',
  description: 'Sign in with Google (OpenID Connect: PKCE, nonce, ID token validation)',
  config,
  env: {
    clientId: 'OAUTH_GOOGLE_CLIENT_ID',
    clientSecret: 'OAUTH_GOOGLE_CLIENT_SECRET',
    issuer: 'OAUTH_GOOGLE_ISSUER',
    hostedDomain: 'OAUTH_GOOGLE_HOSTED_DOMAIN',
    timeoutMs: 'OAUTH_GOOGLE_TIMEOUT_MS',
  },
  secrets: ['clientSecret'],
  create: (cfg) => createGoogleProvider(cfg),
});
