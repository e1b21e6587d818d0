/** Shows enough of a secret to recognise it, never enough to use it. */
export function maskSecret(value: string | undefined | null): string {
  if (!value) return '';
  if (value.length < 16) return '****';
  return `${value.slice(0, 4)}…${value.slice(-4)}`;
}

/**
 * Query parameters whose value is a credential wherever they appear in a URL (signed S3 links,
 * `?token=` webhooks, `?password=` connection strings). Compared case-insensitively.
 */
export const SECRET_QUERY_PARAMS: readonly string[] = [
  'password',
  'passwd',
  'pwd',
  'pass',
  'secret',
  'client_secret',
  'token',
  'access_token',
  'refresh_token',
  'id_token',
  'auth',
  'key',
  'apikey',
  'api_key',
  'api-key',
  'sig',
  'signature',
  'x-amz-signature',
  'x-amz-credential',
  'x-amz-security-token',
];

/** `scheme://user:password@` anywhere in a text. */
const URL_CREDENTIALS = /([a-z][a-z0-9+.-]*:\/\/)([^:@/\s]*):([^@/\s]+)@/gi;
const SECRET_PARAM = new RegExp(`([?&](?:${SECRET_QUERY_PARAMS.map((p) => p.replace(/[-]/g, '\\-')).join('|')})=)([^&#\\s"'<>]+)`, 'gi');
const URL_SHAPE = /^[a-z][a-z0-9+.-]*:\/\/\S+$/i;

/** A value written as `scheme://...`: treated as a URL field wherever it is configured. */
export function looksLikeUrl(value: unknown): value is string {
  return typeof value === 'string' && URL_SHAPE.test(value.trim());
}

/**
 * Masks the credentials inside URLs in `text`: the password of a `user:password@` part and the
 * values of known secret query parameters (`redis://user:****@host`, `...?token=****`).
 * Everything else, host included, stays readable.
 */
export function maskUrlCredentials(text: string): string {
  return text
    .replace(URL_CREDENTIALS, (_m, scheme: string, user: string) => `${scheme}${user}:****@`)
    .replace(SECRET_PARAM, (_m, name: string) => `${name}****`);
}

/** The credentials a URL carries (password, secret query values), raw and percent-decoded, so errors quoting them are masked. */
export function urlCredentials(value: string): string[] {
  if (!looksLikeUrl(value)) return [];
  const out = new Set<string>();
  const add = (v: string) => {
    if (!v) return;
    out.add(v);
    try {
      out.add(decodeURIComponent(v));
    } catch {
      // not percent-encoded: the raw form is enough
    }
  };
  for (const m of value.matchAll(URL_CREDENTIALS)) add(m[3]!);
  for (const m of value.matchAll(SECRET_PARAM)) add(m[2]!);
  return [...out];
}

/** Whether a URL value carries a credential, so it is stored encrypted like a secret. */
export function hasUrlCredentials(value: string): boolean {
  return urlCredentials(value).length > 0;
}

/**
 * How a configured value is shown (CLI, logs, health): a secret field masked as a whole (a Slack
 * webhook URL is a credential from end to end), any other value with its URL credentials masked.
 */
export function maskConfigValue(value: string, secret: boolean): string {
  return secret ? maskSecret(value) : maskUrlCredentials(value);
}

// Process-wide, under a global symbol, so a plugin that brings its own copy of the kernel shares it.
const REGISTRY = Symbol.for('apigate.known-secrets');
const MIN_SECRET_LENGTH = 4;

function registry(): Set<string> {
  const g = globalThis as { [REGISTRY]?: Set<string> };
  g[REGISTRY] ??= new Set<string>();
  return g[REGISTRY];
}

/**
 * Adds secret values (resolved secret fields, URL credentials) to the ones `redact`, `describeError`
 * and the logger mask everywhere in this process. The kernel registers every provider's secrets
 * when it creates the provider.
 */
export function registerSecrets(values: Iterable<string>): void {
  const r = registry();
  for (const v of values) if (typeof v === 'string' && v.length >= MIN_SECRET_LENGTH) r.add(v);
}

/** The secrets registered in this process (for tests and diagnostics; never print them). */
export function registeredSecretCount(): number {
  return registry().size;
}

/**
 * Replaces every known secret in `text` (the given ones and the registered ones) with a mask,
 * then masks the credentials inside any URL. Longer secrets first, so a whole secret URL is
 * masked before a part of it.
 */
export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text;
  const all = new Set<string>(secrets);
  for (const s of registry()) all.add(s);
  for (const s of [...all].sort((a, b) => b.length - a.length)) {
    if (s && s.length >= MIN_SECRET_LENGTH && out.includes(s)) out = out.split(s).join(maskSecret(s));
  }
  return maskUrlCredentials(out);
}
