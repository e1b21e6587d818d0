import type { Context, Hono } from 'hono';

/** The API's answer: status, the JSON body (snake_case, as on the wire) and its headers. */
export interface ApiAnswer<T = any> {
  status: number;
  ok: boolean;
  body: T;
  headers: Headers;
}

/** An API error body's message, for showing on the page. */
export const errorMessage = (a: ApiAnswer): string => a.body?.error?.message ?? `the request failed (HTTP ${a.status})`;
export const errorField = (a: ApiAnswer): string | undefined => a.body?.error?.field;

/**
 * Calls the gateway's own JSON API in-process, as the browser's request: same URL origin, the
 * same cookies, the client's connection (so attempt limits count the real address), plus the
 * CSRF header the API asks of scripts (the page has checked its own form token first).
 * Cookies the API sets (session sign-in and sign-out) are passed on to the page's answer.
 */
export async function callApi(
  app: Hono,
  c: Context,
  method: string,
  path: string,
  body?: unknown,
  extra: Record<string, string> = {},
): Promise<ApiAnswer> {
  const headers = new Headers({ accept: 'application/json', 'x-requested-with': 'apigate-web', ...extra });
  for (const h of ['cookie', 'user-agent', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host']) {
    const v = c.req.header(h);
    if (v) headers.set(h, v);
  }
  const init: RequestInit = { method, headers };
  if (body !== undefined) {
    headers.set('content-type', 'application/json');
    init.body = JSON.stringify(body);
  }
  const res = await app.fetch(new Request(new URL(path, c.req.url), init), c.env);
  for (const cookie of res.headers.getSetCookie()) c.header('Set-Cookie', cookie, { append: true });
  const text = await res.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = { error: { code: 'NOT_JSON', message: text.slice(0, 200) } };
  }
  return { status: res.status, ok: res.ok, body: parsed, headers: res.headers };
}
