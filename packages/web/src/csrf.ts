import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';

/** The hidden form field carrying the CSRF token. */
export const CSRF_FIELD = '_csrf';
/** Before sign-in: a random value in this cookie is the token (double submit). */
export const PRE_SESSION_COOKIE = 'apigate_csrf';

/** What a page says when the form's CSRF token is missing or stale. */
export const FORM_EXPIRED = 'The form expired; please try again.';

/** Whether the browser reached us over HTTPS (directly or through a proxy): cookies are then Secure. */
export const isHttps = (c: Context) =>
  new URL(c.req.url).protocol === 'https:' || c.req.header('x-forwarded-proto')?.split(',')[0]?.trim() === 'https';

/**
 * The CSRF token for forms on this page. Signed in, it is derived from the session secret (one
 * per session, which a cross-site page can neither read nor guess); before that, it is a random
 * value kept in a SameSite=Strict cookie that the form must echo.
 */
export function csrfToken(c: Context, sessionSecret: string | undefined): string {
  if (sessionSecret) return derive(sessionSecret);
  let pre = getCookie(c, PRE_SESSION_COOKIE);
  if (!pre || !/^[A-Za-z0-9_-]{43}$/.test(pre)) {
    pre = randomBytes(32).toString('base64url');
    setCookie(c, PRE_SESSION_COOKIE, pre, { httpOnly: true, sameSite: 'Strict', secure: isHttps(c), path: '/' });
  }
  return pre;
}

/** True when `sent` (the form field) is the token for this session, or for this browser before sign-in. */
export function csrfValid(c: Context, sessionSecret: string | undefined, sent: unknown): boolean {
  if (typeof sent !== 'string' || sent === '') return false;
  const expected = sessionSecret ? derive(sessionSecret) : getCookie(c, PRE_SESSION_COOKIE);
  if (!expected) return false;
  const a = Buffer.from(sent);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

const derive = (secret: string) => createHash('sha256').update(`apigate web csrf v1\0${secret}`).digest('base64url');
