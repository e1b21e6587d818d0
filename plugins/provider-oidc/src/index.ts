import { defineProvider, fields, z } from '@apigate/kernel';
import { clientFields, endpointUrl, OAuthClient, profileFromClaims } from '@apigate/oauth-client';

export const config = z.object({
  issuer: endpointUrl(
    'the issuer URL of the identity provider, e.g. https://login.example.com/realms/acme (discovery at <issuer>/.well-known/openid-configuration)',
  ),
  ...clientFields,
  /** `openid` is always requested; `email` and `profile` give the claims the profile needs. */
  scopes: fields.list().default(['openid', 'email', 'profile']),
  /** The name on the login button; the issuer's host when unset. */
  displayName: z.string().min(1).optional(),
});

export type OidcConfig = z.infer<typeof config>;

/** A generic OpenID Connect provider: endpoints by discovery, profile from the ID token plus userinfo. */
export function createOidcProvider(cfg: OidcConfig): OAuthClient {
  return new OAuthClient({
    provider: 'oidc',
    displayName: cfg.displayName ?? new URL(cfg.issuer).host,
    clientId: cfg.clientId,
    clientSecret: cfg.clientSecret,
    scopes: cfg.scopes,
    timeoutMs: cfg.timeoutMs,
    server: { protocol: 'oidc', issuer: cfg.issuer },
    // Many IdPs keep ID tokens minimal and serve email and name from userinfo: merge both,
    // userinfo last (openid-client has checked it is the same subject).
    profile: async ({ idToken, userInfo }) => profileFromClaims('oidc', { ...idToken, ...(await userInfo()) }),
  });
}

export default defineProvider({
  capability: 'oauth',
  name: 'oidc',
  description: 'Sign in with any OpenID Connect identity provider (discovery, PKCE, nonce, ID token validation)',
  config,
  env: {
    issuer: 'OAUTH_OIDC_ISSUER',
    clientId: 'OAUTH_OIDC_CLIENT_ID',
    clientSecret: 'OAUTH_OIDC_CLIENT_SECRET',
    scopes: 'OAUTH_OIDC_SCOPES',
    displayName: 'OAUTH_OIDC_DISPLAY_NAME',
    timeoutMs: 'OAUTH_OIDC_TIMEOUT_MS',
  },
  secrets: ['clientSecret'],
  create: (cfg) => createOidcProvider(cfg),
});
