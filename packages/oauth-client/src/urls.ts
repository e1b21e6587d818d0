import { z } from '@apigate/kernel';

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/** Plain http is accepted only to this machine: a local stand-in or a test server. */
export function isLoopbackHttp(value: string): boolean {
  const url = new URL(value);
  return url.protocol === 'http:' && LOOPBACK.has(url.hostname);
}

/** An https URL (http only to localhost): credentials and codes travel to it. Kept as written (issuers compare exactly). */
export const endpointUrl = (description: string) =>
  z
    .url({ error: 'expected a URL' })
    .refine((v) => URL.canParse(v) && (new URL(v).protocol === 'https:' || isLoopbackHttp(v)), 'expected an https:// URL')
    .describe(description);

/** `base` + `path` with one slash between them, whether or not `base` ends with one. */
export const joinUrl = (base: string, path: string): string => `${base.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;

/** Where OpenID Connect Discovery 1.0 puts an issuer's metadata (after the issuer's path). */
export const discoveryUrl = (issuer: string): string => joinUrl(issuer, '.well-known/openid-configuration');
