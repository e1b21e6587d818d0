import { createHash, timingSafeEqual } from 'node:crypto';
import { ADMIN_TOKEN_PREFIX } from '@apigate/gateway';
import { describeError } from '@apigate/kernel';
import { type Context, Hono } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { Child } from 'hono/jsx';
import type { WebContext } from '../context.js';
import { CSRF_FIELD, csrfToken, csrfValid, FORM_EXPIRED, isHttps } from '../csrf.js';
import { formFields } from '../forms.js';
import { Card, Csrf, Field, Flash, type FlashKind, type PageShell, render } from '../ui.js';

/** The dashboard session: an admin token made at sign-in, kept in an httpOnly cookie on /admin. */
export const ADMIN_SESSION_COOKIE = 'apigate_admin';
const FLASH_COOKIE = 'apigate_admin_flash';
/** The name of the admin tokens the dashboard makes, so they are told apart in `apigate admin token list`. */
export const DASHBOARD_TOKEN_NAME = 'dashboard session';

export const ADMIN_NAV = [
  { href: '/admin', label: 'Overview' },
  { href: '/admin/ui/users', label: 'Users' },
  { href: '/admin/ui/plans', label: 'Plans' },
  { href: '/admin/ui/keys', label: 'Keys' },
  { href: '/admin/ui/routes', label: 'Routes' },
  { href: '/admin/ui/webhooks', label: 'Webhooks' },
  { href: '/admin/ui/payments', label: 'Payments' },
  { href: '/admin/ui/providers', label: 'Providers' },
  { href: '/admin/ui/settings', label: 'Settings' },
  { href: '/admin/ui/export', label: 'Export' },
];

const sameSecret = (a: string, b: string) =>
  timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());

export interface AdminSession {
  /** The session's admin token: also the bearer for in-process admin API calls. */
  token: string;
  csrf: string;
  shell: PageShell;
}

/** The admin pages' sign-in and session check. */
export class AdminAuth {
  readonly #ttl: number;
  constructor(private readonly w: WebContext) {
    this.#ttl = w.adminSessionTtlMs ?? 12 * 3_600_000;
  }

  /** The admin token typed at sign-in: the fixed one (APIGATE_ADMIN_TOKEN) or a live database token, exactly as the admin API accepts. */
  async tokenValid(token: string): Promise<boolean> {
    if (this.w.adminToken && sameSecret(token, this.w.adminToken)) return true;
    return token.startsWith(ADMIN_TOKEN_PREFIX) && (await this.w.store.domain.adminTokens.verify(token)) !== undefined;
  }

  /** The live dashboard session of this request, or undefined. An expired one is revoked on the way. */
  async session(c: Context): Promise<AdminSession | undefined> {
    const token = getCookie(c, ADMIN_SESSION_COOKIE);
    if (!token || !token.startsWith(ADMIN_TOKEN_PREFIX)) return undefined;
    const t = await this.w.store.domain.adminTokens.verify(token);
    if (!t || t.name !== DASHBOARD_TOKEN_NAME) return undefined;
    if (t.createdAt.getTime() + this.#ttl <= this.w.now().getTime()) {
      await this.w.store.domain.adminTokens.revoke(t.id);
      return undefined;
    }
    const csrf = csrfToken(c, token);
    return {
      token,
      csrf,
      shell: { assets: this.w.assets, area: 'admin', nav: ADMIN_NAV, who: { label: 'admin', logoutAction: '/admin/ui/logout', csrf } },
    };
  }

  async start(c: Context): Promise<void> {
    const { token } = await this.w.store.domain.adminTokens.create({ name: DASHBOARD_TOKEN_NAME });
    setCookie(c, ADMIN_SESSION_COOKIE, token, {
      httpOnly: true,
      secure: isHttps(c),
      sameSite: 'Strict',
      path: '/admin',
      maxAge: Math.floor(this.#ttl / 1000),
    });
  }

  async end(c: Context): Promise<void> {
    const token = getCookie(c, ADMIN_SESSION_COOKIE);
    const t = token?.startsWith(ADMIN_TOKEN_PREFIX) ? await this.w.store.domain.adminTokens.verify(token) : undefined;
    if (t && t.name === DASHBOARD_TOKEN_NAME) await this.w.store.domain.adminTokens.revoke(t.id);
    deleteCookie(c, ADMIN_SESSION_COOKIE, { path: '/admin', secure: isHttps(c), httpOnly: true, sameSite: 'Strict' });
  }
}

/** A one-shot message for the next admin page (after a redirect), kept in a short cookie rather than the URL. */
export function setFlash(c: Context, kind: FlashKind, text: string): void {
  setCookie(c, FLASH_COOKIE, Buffer.from(JSON.stringify({ kind, text: text.slice(0, 500) })).toString('base64url'), {
    httpOnly: true,
    sameSite: 'Strict',
    path: '/admin',
    maxAge: 60,
    secure: isHttps(c),
  });
}
export function takeFlash(c: Context): Child {
  const raw = getCookie(c, FLASH_COOKIE);
  if (!raw) return null;
  deleteCookie(c, FLASH_COOKIE, { path: '/admin' });
  try {
    const f = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as { kind: FlashKind; text: string };
    return <Flash kind={f.kind} text={f.text} />;
  } catch {
    return null;
  }
}

/** A dashboard page in the session's shell, with the last action's flash message on top. */
export function adminPage(c: Context, s: AdminSession, title: string, body: Child, opts?: Parameters<typeof render>[4]) {
  return render(
    c,
    s.shell,
    title,
    <>
      {takeFlash(c)}
      {body}
    </>,
    opts,
  );
}

/**
 * Runs a dashboard action after the CSRF check, then redirects to `back` with what happened as
 * the flash message; a domain error's message (the same one the admin API answers) is shown as is.
 */
export async function act(
  c: Context,
  s: AdminSession,
  back: string,
  fn: (f: Record<string, string>) => Promise<string>,
): Promise<Response> {
  const f = await formFields(c);
  if (!csrfValid(c, s.token, f[CSRF_FIELD])) setFlash(c, 'error', FORM_EXPIRED);
  else {
    try {
      setFlash(c, 'ok', await fn(f));
    } catch (err) {
      setFlash(c, 'error', describeError(err));
    }
  }
  return c.redirect(back, 303);
}

/** Sign-in and sign-out pages. */
export function adminSignInPages(w: WebContext, auth: AdminAuth): Hono {
  const pages = new Hono();
  const shell = (): PageShell => ({ assets: w.assets, area: 'admin', nav: [] });

  const signIn = (c: Context, error?: string, status = 200) =>
    render(
      c,
      shell(),
      'Admin sign in',
      <>
        {takeFlash(c)}
        <Flash kind="error" text={error} />
        <Card>
          <form method="post" action="/admin/ui/login" class="stack" id="admin-login">
            <Csrf token={csrfToken(c, undefined)} />
            <Field
              name="token"
              label="Admin token"
              type="password"
              autocomplete="current-password"
              required
              autofocus
              hint="APIGATE_ADMIN_TOKEN or a token from `apigate admin token create`."
            />
            <button type="submit">Sign in</button>
          </form>
        </Card>
      </>,
      { status, narrow: true },
    );

  pages.get('/admin/ui/login', (c) => signIn(c));
  pages.post('/admin/ui/login', async (c) => {
    const f = await formFields(c);
    if (!csrfValid(c, undefined, f[CSRF_FIELD])) return signIn(c, FORM_EXPIRED, 403);
    if (!(await auth.tokenValid((f.token ?? '').trim()))) return signIn(c, 'That admin token is not valid (unknown or revoked).', 401);
    await auth.start(c);
    return c.redirect('/admin', 303);
  });
  pages.post('/admin/ui/logout', async (c) => {
    const s = await auth.session(c);
    const f = await formFields(c);
    if (s && csrfValid(c, s.token, f[CSRF_FIELD])) await auth.end(c);
    setFlash(c, 'ok', 'Signed out.');
    return c.redirect('/admin/ui/login', 303);
  });
  return pages;
}

/** Wraps a page handler: without a live session, the sign-in page. */
export function withAdmin(auth: AdminAuth, handler: (c: Context, s: AdminSession) => Promise<Response>) {
  return async (c: Context) => {
    const s = await auth.session(c);
    if (!s) return c.redirect('/admin/ui/login', 303);
    return handler(c, s);
  };
}
