import { CSRF_HEADER, MIN_PASSWORD_LENGTH } from '@apigate/gateway';
import { type Context, Hono } from 'hono';
import type { Child } from 'hono/jsx';
import { callApi, errorField, errorMessage } from '../call.js';
import type { WebContext } from '../context.js';
import { CSRF_FIELD, csrfToken, csrfValid, FORM_EXPIRED } from '../csrf.js';
import { formFields, seeOther } from '../forms.js';
import { Card, Csrf, Field, Flash, render } from '../ui.js';
import { noteFlash, portalShell, safeNext, sessionSecret } from './shell.js';

interface FormState {
  values?: Record<string, string>;
  error?: string | undefined;
  field?: string | undefined;
}

const fieldError = (s: FormState, name: string) => (s.field === name ? s.error : undefined);
const topError = (s: FormState) =>
  s.error && !s.field ? s.error : s.error && s.field ? 'Please correct the field marked below.' : undefined;

/** Sign up, confirm the address, sign in (password and OAuth), reset a password, sign out. */
export function portalAuthPages(w: WebContext): Hono {
  const pages = new Hono();
  // Every page here is a narrow one for a visitor who is not signed in.
  const authPage = (c: Context, title: string, body: Child, status = 200) =>
    render(c, portalShell(w, c), title, body, { status, narrow: true });
  // After a confirmation or a new password: the good news and a button to sign in.
  const doneSignIn = (c: Context, title: string, text: string) =>
    authPage(
      c,
      title,
      <>
        <Flash kind="ok" text={text} />
        <p>
          <a class="button" href="/portal/login">
            Sign in
          </a>
        </p>
      </>,
    );

  // The emailed confirmation link points at the JSON API; a browser opening it lands on the page instead.
  pages.get('/portal/api/verify-email', async (c, next) => {
    if (!(c.req.header('accept') ?? '').includes('text/html') || c.req.header(CSRF_HEADER)) return next();
    return c.redirect(`/portal/verify-email?token=${encodeURIComponent(c.req.query('token') ?? '')}`, 303);
  });

  async function loginPage(c: Context, s: FormState = {}, status = 200) {
    const providers = await callApi(w.app, c, 'GET', '/portal/api/oauth');
    const list: { name: string; display_name: string }[] = providers.ok ? (providers.body?.data ?? []) : [];
    const oauthError = c.req.query('error');
    const next = safeNext(c.req.query('next') ?? s.values?.next);
    return authPage(
      c,
      'Sign in',
      <>
        {noteFlash(c)}
        {oauthError ? <Flash kind="error" text={oauthErrorText(oauthError)} /> : null}
        <Flash kind="error" text={topError(s)} />
        {s.field === 'email' && s.error?.includes('confirm the address') ? (
          <Card title="Confirm your address">
            <form method="post" action="/portal/verify-email/resend" class="stack">
              <Csrf token={csrfToken(c, undefined)} />
              <input type="hidden" name="email" value={s.values?.email ?? ''} />
              <button type="submit" class="secondary">
                Send a new confirmation link
              </button>
            </form>
          </Card>
        ) : null}
        <Card>
          <form method="post" action="/portal/login" class="stack" id="login-form">
            <Csrf token={csrfToken(c, undefined)} />
            <input type="hidden" name="next" value={next} />
            <EmailField s={s} />
            <Field
              name="password"
              label="Password"
              type="password"
              autocomplete="current-password"
              required
              error={fieldError(s, 'password')}
            />
            <button type="submit">Sign in</button>
          </form>
          <p>
            <a href="/portal/forgot-password">Forgot your password?</a>
          </p>
        </Card>
        {list.length > 0 ? (
          <Card title="Or sign in with">
            <div class="oauth">
              {list.map((p) => (
                <a
                  class="button secondary"
                  href={`/portal/api/oauth/${encodeURIComponent(p.name)}/start?return_to=${encodeURIComponent(next)}`}
                >
                  Continue with {p.display_name}
                </a>
              ))}
            </div>
          </Card>
        ) : null}
        <p>
          New here? <a href="/portal/signup">Create an account</a>
        </p>
      </>,
      status,
    );
  }

  pages.get('/portal/login', (c) => loginPage(c));
  pages.post('/portal/login', async (c) => {
    const f = await formFields(c);
    if (!csrfValid(c, undefined, f[CSRF_FIELD])) return loginPage(c, { values: f, error: FORM_EXPIRED }, 403);
    const a = await callApi(w.app, c, 'POST', '/portal/api/login', { email: f.email ?? '', password: f.password ?? '' });
    if (a.ok) return seeOther(c, safeNext(f.next));
    return loginPage(c, { values: { email: f.email ?? '', next: f.next ?? '' }, error: errorMessage(a), field: errorField(a) }, a.status);
  });

  function signupPage(c: Context, s: FormState = {}, status = 200) {
    return authPage(
      c,
      'Create an account',
      <>
        <Flash kind="error" text={topError(s)} />
        <Card>
          <form method="post" action="/portal/signup" class="stack" id="signup-form">
            <Csrf token={csrfToken(c, undefined)} />
            <Field name="name" label="Name" autocomplete="name" value={s.values?.name} error={fieldError(s, 'name')} autofocus />
            <EmailField s={s} autofocus={false} />
            <Field
              name="password"
              label="Password"
              type="password"
              autocomplete="new-password"
              required
              minlength={MIN_PASSWORD_LENGTH}
              hint={`At least ${MIN_PASSWORD_LENGTH} characters.`}
              error={fieldError(s, 'password')}
            />
            <button type="submit">Create account</button>
          </form>
        </Card>
        <p>
          Have an account? <a href="/portal/login">Sign in</a>
        </p>
      </>,
      status,
    );
  }

  pages.get('/portal/signup', (c) => signupPage(c));
  pages.post('/portal/signup', async (c) => {
    const f = await formFields(c);
    if (!csrfValid(c, undefined, f[CSRF_FIELD])) return signupPage(c, { values: f, error: FORM_EXPIRED }, 403);
    const a = await callApi(w.app, c, 'POST', '/portal/api/signup', {
      email: f.email ?? '',
      password: f.password ?? '',
      name: f.name ?? '',
    });
    if (!a.ok)
      return signupPage(
        c,
        { values: { email: f.email ?? '', name: f.name ?? '' }, error: errorMessage(a), field: errorField(a) },
        a.status,
      );
    return authPage(
      c,
      'Check your email',
      <>
        <Flash kind="ok" text={a.body?.message} />
        <p>Open the link in the email to confirm the address; then you can sign in.</p>
        <p>
          <a href="/portal/login">Go to sign in</a>
        </p>
      </>,
      202,
    );
  });

  pages.get('/portal/verify-email', async (c) => {
    const a = await callApi(w.app, c, 'POST', '/portal/api/verify-email', { token: c.req.query('token') ?? '' });
    if (a.ok) return doneSignIn(c, 'Address confirmed', `${a.body.email} is confirmed.`);
    return resendPage(c, errorMessage(a), a.status);
  });

  function resendPage(c: Context, error?: string, status = 200, sent?: string) {
    return authPage(
      c,
      'Confirm your address',
      <>
        <Flash kind="error" text={error} />
        <Flash kind="ok" text={sent} />
        <Card title="Send a new confirmation link">
          <form method="post" action="/portal/verify-email/resend" class="stack">
            <Csrf token={csrfToken(c, undefined)} />
            <Field name="email" label="Email" type="email" autocomplete="email" required />
            <button type="submit">Send link</button>
          </form>
        </Card>
      </>,
      status,
    );
  }

  pages.post('/portal/verify-email/resend', async (c) => {
    const f = await formFields(c);
    if (!csrfValid(c, undefined, f[CSRF_FIELD])) return resendPage(c, FORM_EXPIRED, 403);
    const a = await callApi(w.app, c, 'POST', '/portal/api/verify-email/resend', { email: f.email ?? '' });
    return a.ok ? resendPage(c, undefined, 202, a.body?.message) : resendPage(c, errorMessage(a), a.status);
  });

  function forgotPage(c: Context, s: FormState = {}, status = 200, sent?: string) {
    return authPage(
      c,
      'Reset your password',
      <>
        <Flash kind="ok" text={sent} />
        <Flash kind="error" text={topError(s)} />
        <Card>
          <form method="post" action="/portal/forgot-password" class="stack">
            <Csrf token={csrfToken(c, undefined)} />
            <EmailField s={s} />
            <button type="submit">Email me a link</button>
          </form>
        </Card>
        <p>
          <a href="/portal/login">Back to sign in</a>
        </p>
      </>,
      status,
    );
  }

  pages.get('/portal/forgot-password', (c) => forgotPage(c));
  pages.post('/portal/forgot-password', async (c) => {
    const f = await formFields(c);
    if (!csrfValid(c, undefined, f[CSRF_FIELD])) return forgotPage(c, { values: f, error: FORM_EXPIRED }, 403);
    const a = await callApi(w.app, c, 'POST', '/portal/api/password-reset', { email: f.email ?? '' });
    if (!a.ok) return forgotPage(c, { values: f, error: errorMessage(a), field: errorField(a) }, a.status);
    return forgotPage(c, {}, 202, a.body?.message);
  });

  function resetPage(c: Context, token: string, s: FormState = {}, status = 200) {
    return authPage(
      c,
      'Choose a new password',
      <>
        <Flash kind="error" text={s.error} />
        <Card>
          <form method="post" action="/portal/reset-password" class="stack">
            <Csrf token={csrfToken(c, undefined)} />
            <input type="hidden" name="token" value={token} />
            <Field
              name="password"
              label="New password"
              type="password"
              autocomplete="new-password"
              required
              minlength={MIN_PASSWORD_LENGTH}
              hint={`At least ${MIN_PASSWORD_LENGTH} characters. You will be signed out everywhere.`}
              autofocus
            />
            <button type="submit">Set password</button>
          </form>
        </Card>
        {s.field === 'token' ? (
          <p>
            <a href="/portal/forgot-password">Ask for a new link</a>
          </p>
        ) : null}
      </>,
      status,
    );
  }

  pages.get('/portal/reset-password', (c) => resetPage(c, c.req.query('token') ?? ''));
  pages.post('/portal/reset-password', async (c) => {
    const f = await formFields(c);
    const token = f.token ?? '';
    if (!csrfValid(c, undefined, f[CSRF_FIELD])) return resetPage(c, token, { error: FORM_EXPIRED }, 403);
    const a = await callApi(w.app, c, 'POST', '/portal/api/password-reset/confirm', { token, password: f.password ?? '' });
    if (!a.ok) return resetPage(c, token, { error: errorMessage(a), field: errorField(a) }, a.status);
    return doneSignIn(c, 'Password changed', 'Your new password is set; every earlier session was signed out.');
  });

  pages.post('/portal/logout', async (c) => {
    const f = await formFields(c);
    if (!csrfValid(c, sessionSecret(c), f[CSRF_FIELD])) return seeOther(c, '/portal', 'csrf');
    await callApi(w.app, c, 'POST', '/portal/api/logout');
    return seeOther(c, '/portal/login', 'signed-out');
  });

  return pages;
}

/** What each sign-in error code of the portal's OAuth routes means to the person who was signing in. */
const OAUTH_ERROR_TEXT: Record<string, string> = {
  state_mismatch: 'This sign-in was not started in this browser or has expired. Please start again.',
  access_denied: 'The sign-in was cancelled at the provider.',
  email_required: 'The provider did not share your email address. Allow access to it and try again.',
  account_conflict: 'This email address is already linked to another account at that provider.',
  account_suspended: 'This account is suspended. Please contact the API provider.',
  signup_unavailable: 'Sign up is not open yet.',
  unknown_provider: 'That sign-in provider is not enabled.',
};

function oauthErrorText(code: string): string {
  return OAUTH_ERROR_TEXT[code] ?? 'Signing in with the provider did not work. Please try again.';
}

/** The email field every sign-in, sign-up and reset form opens with, refilled and flagged from the last try. */
function EmailField({ s, autofocus = true }: { s: FormState; autofocus?: boolean }) {
  return (
    <Field
      name="email"
      label="Email"
      type="email"
      autocomplete="email"
      required
      value={s.values?.email}
      error={fieldError(s, 'email')}
      autofocus={autofocus}
    />
  );
}
