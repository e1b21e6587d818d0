import type { ProviderInstance } from './common.js';

export interface OAuthProfile {
  provider: string;
  subject: string;
  email?: string;
  emailVerified: boolean;
  name?: string;
  avatarUrl?: string;
}

export interface OAuthProvider extends ProviderInstance {
  readonly displayName: string;
  authorizationUrl(i: { redirectUri: string; state: string; codeVerifier: string; nonce: string }): Promise<URL>;
  exchange(i: {
    callbackUrl: URL;
    redirectUri: string;
    expectedState: string;
    codeVerifier: string;
    expectedNonce: string;
  }): Promise<OAuthProfile>;
}
