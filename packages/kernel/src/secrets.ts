/** Shows enough of a secret to recognise it, never enough to use it. */
export function maskSecret(value: string | undefined | null): string {
  if (!value) return '';
  if (value.length < 16) return '****';
  return `${value.slice(0, 4)}…${value.slice(-4)}`;
}

const URL_CREDENTIALS = /([a-z][a-z0-9+.-]*:\/\/)([^:@/\s]*):([^@/\s]+)@/gi;

/** Replaces every known secret in `text`, and any password inside a URL, with a mask. */
export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text.replace(URL_CREDENTIALS, (_m, scheme: string, user: string) => `${scheme}${user}:****@`);
  for (const s of secrets) {
    if (s && s.length >= 4) out = out.split(s).join(maskSecret(s));
  }
  return out;
}
