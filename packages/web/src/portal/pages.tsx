import { type Context, Hono } from 'hono';
import { callApi, errorField, errorMessage } from '../call.js';
import type { WebContext } from '../context.js';
import { CSRF_FIELD, csrfToken, csrfValid, FORM_EXPIRED } from '../csrf.js';
import { formFields, seeOther } from '../forms.js';
import { Badge, Card, Chart, Csrf, dateText, dayText, Field, Flash, fmt, limitText, minuteText, money, render, Stat } from '../ui.js';
import { DataTable, NumCell, PostButton } from '../ui/table.js';
import { currentCustomer, type Me, noteFlash, portalShell, sessionSecret } from './shell.js';
import { daysChart, minutesChart } from './usage-view.js';

interface KeyRow {
  id: string;
  name: string;
  prefix: string;
  status: string;
  created_at: string;
  last_used_at: string | null;
  expires_at: string | null;
}

interface UsageAnswer {
  month: string;
  totals: { requests: number; errors: number; bytes_in: number; bytes_out: number };
  keys: { key_id: string; name: string | null; prefix: string | null; requests: number; errors: number }[];
  quota: { limit: number | null; remaining: number | null; resets_at: string };
}

/** The signed-in customer's pages: overview, keys, usage, account. (The plan page is in plan.tsx.) */
export function portalPages(w: WebContext): Hono {
  const pages = new Hono();

  async function withCustomer(c: Context, page: (me: Me) => Promise<Response>): Promise<Response> {
    const who = await currentCustomer(w, c);
    return 'page' in who ? who.page : page(who.me);
  }

  function quotaCard(u: UsageAnswer) {
    const limit = u.quota.limit;
    const pct = limit ? Math.min(100, Math.round((u.totals.requests / limit) * 100)) : 0;
    return (
      <Card title={`This month (${u.month})`}>
        <p class="stat" id="month-requests">
          {fmt(u.totals.requests)} <span class="muted">of {limit === null ? 'unlimited' : fmt(limit)} requests</span>
        </p>
        {limit !== null ? (
          <meter class="meter" min={0} max={limit} value={Math.min(u.totals.requests, limit)} aria-label={`Monthly quota used: ${pct}%`} />
        ) : null}
        <p class="hint">
          {u.quota.remaining === null ? 'No monthly quota.' : `${fmt(u.quota.remaining)} left; resets ${dateText(u.quota.resets_at)} UTC.`}{' '}
          {fmt(u.totals.errors)} errors.
        </p>
      </Card>
    );
  }

  pages.get('/portal', async (c) => {
    // A failed social sign-in comes back here with ?error=; show it on the sign-in page.
    const oauthError = c.req.query('error');
    const who = await currentCustomer(w, c);
    if ('page' in who) return oauthError ? c.redirect(`/portal/login?error=${encodeURIComponent(oauthError)}`, 303) : who.page;
    const me = who.me;
    const [usage, keys] = await Promise.all([
      callApi(w.app, c, 'GET', '/portal/api/usage'),
      callApi(w.app, c, 'GET', '/portal/api/keys?active=true'),
    ]);
    const u = usage.body as UsageAnswer;
    return render(
      c,
      portalShell(w, c, me),
      `Welcome${me.name ? `, ${me.name}` : ''}`,
      <>
        {noteFlash(c)}
        <div class="grid three">
          <Stat label="Plan" value={me.plan?.name ?? '—'} />
          <Stat label="Requests this month" value={fmt(u.totals.requests)} />
          <Stat label="Working keys" value={String((keys.body?.data ?? []).length)} />
        </div>
        {quotaCard(u)}
        <p class="row">
          <a class="button" href="/portal/keys">
            Manage API keys
          </a>
          <a class="button secondary" href="/portal/usage">
            See usage
          </a>
          <a class="button secondary" href="/portal/billing">
            Change plan
          </a>
        </p>
      </>,
    );
  });

  async function keysPage(c: Context, me: Me, extra: { created?: { key: string; name: string }; error?: string; status?: number } = {}) {
    const a = await callApi(w.app, c, 'GET', '/portal/api/keys?limit=100');
    const keys = (a.body?.data ?? []) as KeyRow[];
    const csrf = csrfToken(c, sessionSecret(c));
    return render(
      c,
      portalShell(w, c, me),
      'API keys',
      <>
        {noteFlash(c)}
        <Flash kind="error" text={extra.error} />
        {extra.created ? (
          <section class="card" aria-labelledby="new-key-title">
            <h2 id="new-key-title">Your new key{extra.created.name ? ` "${extra.created.name}"` : ''}</h2>
            <p>Copy it now: it is shown only once. Send it as the X-API-Key header (or Authorization: Bearer).</p>
            <div class="secret">
              <code id="new-key">{extra.created.key}</code>
              <button type="button" class="secondary" data-copy="#new-key" id="copy-key" hidden>
                Copy
              </button>
            </div>
            <output class="hint" id="copy-key-status" />
          </section>
        ) : null}
        <Card title="Create a key">
          <form method="post" action="/portal/keys" class="row" id="create-key">
            <Csrf token={csrf} />
            <div class="field" style="flex:1 1 14rem">
              <label for="f-name">Name</label>
              <input id="f-name" name="name" maxlength={100} placeholder="e.g. production server" />
            </div>
            <button type="submit">Create key</button>
          </form>
        </Card>
        <DataTable
          caption="Your keys"
          columns={[
            { label: 'Name' },
            { label: 'Key' },
            { label: 'Status' },
            { label: 'Created', class: 'hide-sm' },
            { label: 'Last used', class: 'hide-sm' },
            { label: 'Action', action: true },
          ]}
          rows={keys}
          empty="No keys yet."
          emptyRow
          row={(k) => (
            <tr data-key-id={k.id}>
              <td>{k.name || <span class="muted">unnamed</span>}</td>
              <td>
                <code>{k.prefix}…</code>
              </td>
              <td>
                <Badge status={k.status} />
              </td>
              <td class="hide-sm" data-label="Created">
                {dateText(k.created_at)}
              </td>
              <td class="hide-sm" data-label="Last used">
                {dateText(k.last_used_at)}
              </td>
              <td>
                {k.status === 'active' ? (
                  <PostButton
                    action={`/portal/keys/${encodeURIComponent(k.id)}/revoke`}
                    csrf={csrf}
                    class="danger small"
                    label="Revoke"
                    ariaLabel={`Revoke ${k.name || k.prefix}`}
                    confirm={`Revoke ${k.name || k.prefix}? Calls with it will fail.`}
                  />
                ) : null}
              </td>
            </tr>
          )}
        />
      </>,
      { status: extra.status ?? (extra.created ? 201 : 200) },
    );
  }

  pages.get('/portal/keys', (c) => withCustomer(c, (me) => keysPage(c, me)));
  pages.post('/portal/keys', (c) =>
    withCustomer(c, async (me) => {
      const f = await formFields(c);
      if (!csrfValid(c, sessionSecret(c), f[CSRF_FIELD])) return keysPage(c, me, { error: FORM_EXPIRED, status: 403 });
      const name = (f.name ?? '').trim();
      const a = await callApi(w.app, c, 'POST', '/portal/api/keys', name ? { name } : {});
      if (!a.ok) return keysPage(c, me, { error: errorMessage(a), status: a.status });
      return keysPage(c, me, { created: { key: a.body.key, name } });
    }),
  );
  pages.post('/portal/keys/:id/revoke', (c) =>
    withCustomer(c, async (me) => {
      const f = await formFields(c);
      if (!csrfValid(c, sessionSecret(c), f[CSRF_FIELD])) return keysPage(c, me, { error: FORM_EXPIRED, status: 403 });
      const a = await callApi(w.app, c, 'POST', `/portal/api/keys/${encodeURIComponent(c.req.param('id'))}/revoke`);
      if (!a.ok) return keysPage(c, me, { error: errorMessage(a), status: a.status });
      return seeOther(c, '/portal/keys', 'key-revoked');
    }),
  );

  pages.get('/portal/usage', (c) =>
    withCustomer(c, async (me) => {
      const keyId = c.req.query('key') || undefined;
      const [usage, days, keyMinutes] = await Promise.all([
        callApi(w.app, c, 'GET', '/portal/api/usage'),
        callApi(w.app, c, 'GET', '/portal/api/usage/days'),
        keyId
          ? callApi(
              w.app,
              c,
              'GET',
              `/portal/api/usage/minutes?${new URLSearchParams({ key_id: keyId, from: new Date(w.now().getTime() - 86_400_000).toISOString(), to: w.now().toISOString() })}`,
            )
          : undefined,
      ]);
      const u = usage.body as UsageAnswer;
      const d = days.body as { from: string; to: string; data: { day: string; requests: number; errors: number }[] };
      const keyName = u.keys.find((k) => k.key_id === keyId);
      return render(
        c,
        portalShell(w, c, me),
        'Usage',
        <>
          {quotaCard(u)}
          <Chart id="usage-days" caption={`Requests per day, ${u.month} (UTC)`} spec={daysChart(d.from, d.to, d.data)} xLabel={dayText} />
          <Card title="Per key this month">
            <DataTable
              card={false}
              columns={[
                { label: 'Key' },
                { label: 'Requests', class: 'num' },
                { label: 'Errors', class: 'num' },
                { label: 'Detail', action: true },
              ]}
              rows={u.keys}
              empty="No calls this month yet."
              emptyRow
              row={(k) => (
                <tr>
                  <td>
                    {k.name || 'unnamed'} <code>{k.prefix ?? k.key_id}</code>
                  </td>
                  <NumCell label="Requests" value={k.requests} />
                  <NumCell label="Errors" value={k.errors} />
                  <td>
                    <a href={`/portal/usage?key=${encodeURIComponent(k.key_id)}`}>Last 24 hours</a>
                  </td>
                </tr>
              )}
            />
          </Card>
          {keyMinutes ? (
            keyMinutes.ok ? (
              <Chart
                id="usage-key"
                caption={`Requests per minute, last 24 hours: ${keyName?.name || keyName?.prefix || keyId}`}
                spec={minutesChart(keyMinutes.body.data, keyMinutes.body)}
                xLabel={minuteText}
              />
            ) : (
              <Flash kind="error" text={errorMessage(keyMinutes)} />
            )
          ) : null}
        </>,
        { charts: true },
      );
    }),
  );

  /** The account page: profile with the name form, password change, account deletion; `extra` re-shows a refused form. */
  async function accountPage(
    c: Context,
    me: Me,
    extra: { form?: 'name' | 'password' | 'delete'; error?: string; field?: string | undefined; status?: number } = {},
  ) {
    const csrf = csrfToken(c, sessionSecret(c));
    const account = await callApi(w.app, c, 'GET', '/portal/api/account');
    const hasPassword = account.body?.has_password !== false;
    const err = (form: 'name' | 'password' | 'delete', field: string) =>
      extra.form === form && extra.field === field ? extra.error : undefined;
    const formError = (form: 'name' | 'password' | 'delete') => (extra.form === form && !extra.field ? extra.error : undefined);
    return render(
      c,
      portalShell(w, c, me),
      'Account',
      <>
        {noteFlash(c)}
        <Card title="Profile">
          <dl>
            <dt>Name</dt>
            <dd>{me.name || '—'}</dd>
            <dt>Email</dt>
            <dd>
              {me.email} {me.email_verified ? <Badge status="verified" /> : <Badge status="pending" />}
            </dd>
            <dt>Status</dt>
            <dd>
              <Badge status={me.status} />
            </dd>
            <dt>Plan</dt>
            <dd>
              {me.plan
                ? `${me.plan.name}: ${limitText(me.plan.requests_per_month, 'requests a month')}, ${money(me.plan.price_cents, me.plan.currency)}`
                : '—'}
            </dd>
            <dt>Member since</dt>
            <dd>{dateText(me.created_at)}</dd>
          </dl>
          <Flash kind="error" text={formError('name')} />
          <form method="post" action="/portal/account/name" class="row" id="name-form">
            <Csrf token={csrf} />
            <Field name="name" label="Display name" value={me.name} autocomplete="name" error={err('name', 'name')} />
            <button type="submit" class="secondary">
              Save name
            </button>
          </form>
          <p class="hint">The email address is the one you sign in with and cannot be changed here.</p>
        </Card>
        <Card title="Password">
          {hasPassword ? (
            <>
              <Flash kind="error" text={formError('password')} />
              <form method="post" action="/portal/account/change-password" class="stack" id="password-form" style="max-width:30rem">
                <Csrf token={csrf} />
                <Field
                  name="current_password"
                  label="Current password"
                  type="password"
                  autocomplete="current-password"
                  required
                  error={err('password', 'current_password')}
                />
                <Field
                  name="new_password"
                  label="New password"
                  type="password"
                  autocomplete="new-password"
                  required
                  minlength={8}
                  hint="At least 8 characters. Every other signed-in browser is signed out."
                  error={err('password', 'new_password')}
                />
                <button type="submit">Change password</button>
              </form>
              <p class="hint">Forgot it? We can email you a link to choose a new one instead.</p>
            </>
          ) : (
            <p>This account signs in through a provider and has no password. We can email you a link to choose one.</p>
          )}
          <form method="post" action="/portal/account/password" class="row">
            <Csrf token={csrf} />
            <button type="submit" class="secondary">
              Email me a password link
            </button>
          </form>
        </Card>
        <Card title="Delete account">
          <p>Deletes the account, its API keys (calls with them get 401 at once) and its sessions. Cancel a paid plan first.</p>
          <Flash kind="error" text={formError('delete')} />
          <form
            method="post"
            action="/portal/account/delete"
            class="stack"
            id="delete-form"
            style="max-width:30rem"
            data-confirm="Delete your account and all its API keys? This cannot be undone."
          >
            <Csrf token={csrf} />
            {hasPassword ? (
              <Field
                name="password"
                label="Password to confirm"
                type="password"
                autocomplete="current-password"
                required
                error={err('delete', 'password')}
              />
            ) : (
              <Field
                name="email"
                label="Your email address, to confirm"
                type="email"
                autocomplete="off"
                required
                error={err('delete', 'email')}
              />
            )}
            <button type="submit" class="danger">
              Delete my account
            </button>
          </form>
        </Card>
      </>,
      { status: extra.status ?? 200 },
    );
  }

  pages.get('/portal/account', (c) => withCustomer(c, (me) => accountPage(c, me)));

  /** A posted account form: CSRF check, the API call, then the page again (with the refusal) or `done`. */
  const accountForm =
    (
      form: 'name' | 'password' | 'delete',
      method: string,
      path: string,
      fields: (f: Record<string, string>) => object,
      done: (c: Context) => Response,
    ) =>
    (c: Context) =>
      withCustomer(c, async (me) => {
        const f = await formFields(c);
        if (!csrfValid(c, sessionSecret(c), f[CSRF_FIELD])) return seeOther(c, '/portal/account', 'csrf');
        const a = await callApi(w.app, c, method, path, fields(f));
        return a.ok ? done(c) : accountPage(c, me, { form, error: errorMessage(a), field: errorField(a), status: a.status });
      });

  pages.post(
    '/portal/account/name',
    accountForm(
      'name',
      'PATCH',
      '/portal/api/account',
      (f) => ({ name: f.name ?? '' }),
      (c) => seeOther(c, '/portal/account', 'name-saved'),
    ),
  );
  pages.post(
    '/portal/account/change-password',
    accountForm(
      'password',
      'POST',
      '/portal/api/account/password',
      (f) => ({ current_password: f.current_password ?? '', new_password: f.new_password ?? '' }),
      (c) => seeOther(c, '/portal/account', 'password-changed'),
    ),
  );
  pages.post(
    '/portal/account/delete',
    accountForm(
      'delete',
      'POST',
      '/portal/api/account/delete',
      (f) => (f.email !== undefined ? { email: f.email } : { password: f.password ?? '' }),
      (c) => seeOther(c, '/portal/login', 'account-deleted'),
    ),
  );
  pages.post('/portal/account/password', (c) =>
    withCustomer(c, async (me) => {
      const f = await formFields(c);
      if (!csrfValid(c, sessionSecret(c), f[CSRF_FIELD])) return seeOther(c, '/portal/account', 'csrf');
      const a = await callApi(w.app, c, 'POST', '/portal/api/password-reset', { email: me.email });
      return a.ok ? seeOther(c, '/portal/account', 'reset-sent') : seeOther(c, '/portal/account', 'csrf');
    }),
  );

  return pages;
}
