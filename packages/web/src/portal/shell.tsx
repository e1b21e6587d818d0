import { SESSION_COOKIE } from '@apigate/gateway';
import type { Context } from 'hono';
import { getCookie } from 'hono/cookie';
import type { Child } from 'hono/jsx';
import { callApi } from '../call.js';
import type { WebContext } from '../context.js';
import { csrfToken, FORM_EXPIRED } from '../csrf.js';
import { Flash, type FlashKind, type PageShell, render } from '../ui.js';

/** The signed-in customer as GET /portal/api/me answers (snake_case). */
export interface Me {
  id: string;
  email: string;
  name: string;
  status: string;
  email_verified: boolean;
  created_at: string;
  plan: {
    id: string;
    name: string;
    requests_per_minute: number | null;
    requests_per_month: number | null;
    price_cents: number;
    currency: string;
  } | null;
}

export const PORTAL_NAV = [
  { href: '/portal', label: 'Overview' },
  { href: '/portal/keys', label: 'API keys' },
  { href: '/portal/usage', label: 'Usage' },
  { href: '/portal/billing', label: 'Plan' },
  { href: '/portal/account', label: 'Account' },
];

export const sessionSecret = (c: Context) => getCookie(c, SESSION_COOKIE);

/** The shell of a page for a signed-in customer (nav, sign-out with its CSRF token). */
export function portalShell(w: WebContext, c: Context, me?: Me): PageShell {
  return {
    assets: w.assets,
    area: 'portal',
    nav: me ? PORTAL_NAV : [],
    who: me ? { label: me.email, logoutAction: '/portal/logout', csrf: csrfToken(c, sessionSecret(c)) } : undefined,
  };
}

/** Messages for `?note=` after a redirect. */
const NOTES: Record<string, [FlashKind, string]> = {
  'key-revoked': ['ok', 'The key was revoked: calls with it now get 401.'],
  'signed-out': ['ok', 'You are signed out.'],
  'reset-sent': ['ok', 'If the address has an account, a link to choose a new password is on its way.'],
  'plan-changed': ['ok', 'Your plan was changed.'],
  'name-saved': ['ok', 'Your name was saved.'],
  'password-changed': ['ok', 'Your password was changed; every other browser is signed out.'],
  'account-deleted': ['ok', 'Your account and its API keys are deleted.'],
  'plan-canceled': ['ok', 'Your subscription is canceled.'],
  'checkout-done': ['ok', 'Thank you: the payment went through. Your plan changes as soon as the payment provider confirms it.'],
  'checkout-canceled': ['info', 'The checkout was canceled; nothing changed.'],
  csrf: ['error', FORM_EXPIRED],
};
export function noteFlash(c: Context): Child {
  const n = NOTES[c.req.query('note') ?? ''];
  return n ? <Flash kind={n[0]} text={n[1]} /> : null;
}

/**
 * The signed-in customer, or a redirect to the sign-in page (a suspended account gets a page
 * saying so). Asked of the portal API, so the session rules are the API's.
 */
export async function currentCustomer(w: WebContext, c: Context): Promise<{ me: Me } | { page: Response }> {
  const a = await callApi(w.app, c, 'GET', '/portal/api/me');
  if (a.ok) return { me: a.body as Me };
  if (a.status === 403) {
    return {
      page: await render(
        c,
        portalShell(w, c),
        'Account suspended',
        <Flash kind="error" text={a.body?.error?.message ?? 'this account is suspended'} />,
        { status: 403, narrow: true },
      ),
    };
  }
  // Back to the page asked for after signing in (pages only: a form post is not replayed).
  const back = c.req.method !== 'GET' || c.req.path === '/portal' ? '' : `?next=${encodeURIComponent(c.req.path)}`;
  return { page: c.redirect(`/portal/login${back}`, 303) };
}

/** Only same-site paths under /portal, for `?next=` after signing in. */
export const safeNext = (raw: string | undefined) => (raw && /^\/portal(\/[A-Za-z0-9/_-]*)?$/.test(raw) ? raw : '/portal');
