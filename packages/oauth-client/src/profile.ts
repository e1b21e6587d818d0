import type { OAuthProfile } from '@apigate/kernel';

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined);

/** Some IdPs send booleans as strings ("true"); anything else is not verified. */
export const isTrue = (v: unknown): boolean => v === true || v === 'true';

const httpUrl = (v: unknown): string | undefined => {
  const s = str(v);
  return s && URL.canParse(s) && /^https?:$/.test(new URL(s).protocol) ? s : undefined;
};

/**
 * The normalised profile from OpenID Connect standard claims (ID token, userinfo or both merged):
 * `sub`, `email`, `email_verified`, `name` (else given + family name, else preferred_username)
 * and `picture` (http(s) only).
 */
export function profileFromClaims(provider: string, claims: Record<string, unknown>): OAuthProfile {
  const subject = str(claims.sub);
  if (!subject) throw new Error('the identity provider sent no subject (sub claim)');
  const email = str(claims.email);
  const name =
    str(claims.name) ?? (str([claims.given_name, claims.family_name].filter((p) => str(p)).join(' ')) || str(claims.preferred_username));
  const avatarUrl = httpUrl(claims.picture);
  return {
    provider,
    subject,
    ...(email ? { email } : {}),
    emailVerified: email !== undefined && isTrue(claims.email_verified),
    ...(name ? { name } : {}),
    ...(avatarUrl ? { avatarUrl } : {}),
  };
}
