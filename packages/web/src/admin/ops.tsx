import { exportUsage, monthOf, PaymentInbox, replayPaymentEvent, usageCsv, WEBHOOK_EVENT_TYPES } from '@apigate/gateway';
import { describeError, maskSecret } from '@apigate/kernel';
import { Hono } from 'hono';
import { callApi, errorMessage } from '../call.js';
import type { SettingKeyInfo, WebContext } from '../context.js';
import { CSRF_FIELD, csrfValid, FORM_EXPIRED } from '../csrf.js';
import { formFields } from '../forms.js';
import { Badge, Card, Csrf, dateText, Field, Flash, render } from '../ui.js';
import { DataTable, PostButton } from '../ui/table.js';
import { type AdminAuth, act, adminPage, setFlash, withAdmin } from './session.js';

/** Webhooks and deliveries, payment events, provider health, settings and usage export. */
export function opsPages(w: WebContext, auth: AdminAuth): Hono {
  const pages = new Hono();
  const d = w.store.domain;
  // Loaded once, on the settings page's first use (see WebOptions.settingKeys); a failed load is tried again next time.
  let keysLoading: Promise<ReadonlyMap<string, SettingKeyInfo>> | undefined;
  const settingKeys = async (): Promise<ReadonlyMap<string, SettingKeyInfo> | undefined> => {
    const given = w.settingKeys;
    if (typeof given !== 'function') return given;
    keysLoading ??= given().catch((err) => {
      keysLoading = undefined;
      throw err;
    });
    return keysLoading;
  };

  pages.get(
    '/admin/ui/webhooks',
    withAdmin(auth, async (c, s) => {
      const [endpoints, deliveries] = await Promise.all([d.webhooks.listEndpoints(), d.webhooks.listDeliveries({ limit: 50 })]);
      const urls = new Map(endpoints.map((e) => [e.id, e.url]));
      return adminPage(
        c,
        s,
        'Webhooks',
        <>
          <DataTable
            id="endpoints"
            caption="Endpoints"
            columns={[{ label: 'URL' }, { label: 'Events' }, { label: 'Status' }, { label: 'Action', action: true }]}
            rows={endpoints}
            empty="No endpoints."
            row={(e) => (
              <tr>
                <td>
                  <code>{e.url}</code>
                </td>
                <td>{e.events.join(', ')}</td>
                <td>
                  <Badge status={e.enabled ? 'active' : 'disabled'} />
                </td>
                <td>
                  <PostButton
                    action={`/admin/ui/webhooks/${e.id}/delete`}
                    csrf={s.csrf}
                    class="danger small"
                    label="Remove"
                    ariaLabel={`Remove ${e.url}`}
                    confirm={`Remove ${e.url}?`}
                  />
                </td>
              </tr>
            )}
          />
          <Card title="Add an endpoint">
            <form method="post" action="/admin/ui/webhooks" class="stack">
              <Csrf token={s.csrf} />
              <Field name="url" label="URL" type="url" required placeholder="https://example.com/hooks" />
              <Field
                name="events"
                label="Events"
                value="*"
                hint={`Comma separated; patterns like usage.* work. Types: ${WEBHOOK_EVENT_TYPES.join(', ')}.`}
              />
              <button type="submit">Add endpoint</button>
            </form>
          </Card>
          <DataTable
            id="deliveries"
            caption="Latest deliveries"
            columns={[
              { label: 'Event' },
              { label: 'Endpoint', class: 'hide-sm' },
              { label: 'Status' },
              { label: 'Attempts', class: 'num' },
              { label: 'Last error', class: 'hide-sm' },
              { label: 'Action', action: true },
            ]}
            rows={deliveries.items}
            empty="No deliveries yet."
            row={(x) => (
              <tr>
                <td>
                  {x.eventType}
                  <br />
                  <span class="muted">{dateText(x.createdAt)}</span>
                </td>
                <td class="hide-sm">
                  <code>{urls.get(x.endpointId) ?? x.endpointId}</code>
                </td>
                <td>
                  <Badge status={x.status} /> {x.responseStatus ? `HTTP ${x.responseStatus}` : ''}
                </td>
                <td class="num">{x.attempts}</td>
                <td class="hide-sm">{x.lastError ?? ''}</td>
                <td>
                  {x.status !== 'succeeded' && w.webhooks ? (
                    <PostButton
                      action={`/admin/ui/webhooks/deliveries/${x.id}/retry`}
                      csrf={s.csrf}
                      class="secondary small"
                      label="Retry"
                    />
                  ) : null}
                </td>
              </tr>
            )}
          />
        </>,
      );
    }),
  );
  pages.post(
    '/admin/ui/webhooks',
    withAdmin(auth, async (c, s) => {
      // The signing secret is shown once, so a success answers with a page instead of redirecting.
      const f = await formFields(c);
      if (!csrfValid(c, s.token, f[CSRF_FIELD])) {
        setFlash(c, 'error', FORM_EXPIRED);
        return c.redirect('/admin/ui/webhooks', 303);
      }
      let shown: { url: string; secret: string };
      try {
        const events = (f.events ?? '*')
          .split(',')
          .map((e) => e.trim())
          .filter(Boolean);
        const { endpoint, secret } = await d.webhooks.createEndpoint({ url: f.url ?? '', events });
        shown = { url: endpoint.url, secret };
      } catch (err) {
        setFlash(c, 'error', describeError(err));
        return c.redirect('/admin/ui/webhooks', 303);
      }
      return render(
        c,
        s.shell,
        'Endpoint added',
        <Card title={shown.url}>
          <p>The signing secret, shown only now (payloads are signed with it, see X-APIGate-Signature):</p>
          <div class="secret">
            <code id="webhook-secret">{shown.secret}</code>
            <button type="button" class="secondary" data-copy="#webhook-secret" id="copy-secret" hidden>
              Copy
            </button>
          </div>
          <output class="hint" id="copy-secret-status" />
          <p>
            <a href="/admin/ui/webhooks">Back to webhooks</a>
          </p>
        </Card>,
        { status: 201 },
      );
    }),
  );
  pages.post(
    '/admin/ui/webhooks/:id/delete',
    withAdmin(auth, (c, s) =>
      act(c, s, '/admin/ui/webhooks', async () => {
        const e = await d.webhooks.getEndpoint(c.req.param('id')!);
        await d.webhooks.deleteEndpoint(e.id);
        return `Removed ${e.url}.`;
      }),
    ),
  );
  pages.post(
    '/admin/ui/webhooks/deliveries/:id/retry',
    withAdmin(auth, (c, s) =>
      act(c, s, '/admin/ui/webhooks', async () => {
        if (!w.webhooks) throw new Error('retry needs the running gateway');
        const x = await w.webhooks.attempt(c.req.param('id')!, { final: false });
        return `Delivered ${x.eventType}: HTTP ${x.responseStatus}.`;
      }),
    ),
  );

  // Payment events: the webhook inbox (as `apigate payments events` reads it); subscriptions from the
  // admin API (/admin/subscriptions), called in-process with this session's token.
  pages.get(
    '/admin/ui/payments',
    withAdmin(auth, async (c, s) => {
      const status = c.req.query('status');
      const inbox = new PaymentInbox(w.store);
      const events = await inbox.list({ limit: 50, ...(status ? { status: status as never } : {}) });
      const subs = await callApi(w.app, c, 'GET', '/admin/subscriptions?limit=50', undefined, { authorization: `Bearer ${s.token}` });
      const subRows = (subs.body?.data ?? []) as Record<string, any>[];
      const users = new Map(
        (await Promise.all([...new Set(subRows.map((x) => String(x.user_id)))].map((id) => d.users.find(id))))
          .filter((u) => u !== undefined)
          .map((u) => [u.id, u]),
      );
      const plans = new Map((await d.plans.list()).map((p) => [p.id, p]));
      return adminPage(
        c,
        s,
        'Payments',
        <>
          <DataTable
            id="payment-events"
            caption={
              <>
                Payment webhook inbox (newest first) <a href="/admin/ui/payments?status=failed">failed only</a>
              </>
            }
            columns={[
              { label: 'Event' },
              { label: 'Status' },
              { label: 'Attempts', class: 'num' },
              { label: 'Last error', class: 'hide-sm' },
              { label: 'Action', action: true },
            ]}
            rows={events.items}
            empty="No payment events."
            row={(e) => (
              <tr>
                <td>
                  {e.type} <span class="muted">({e.provider})</span>
                  <br />
                  <code class="muted">{e.eventId}</code> <span class="muted">{dateText(e.receivedAt)}</span>
                </td>
                <td>
                  <Badge status={e.status} />
                </td>
                <td class="num">{e.attempts}</td>
                <td class="hide-sm">{e.lastError ?? ''}</td>
                <td>
                  {(e.status === 'failed' || e.status === 'queued') && e.hasBody ? (
                    <PostButton
                      action="/admin/ui/payments/replay"
                      csrf={s.csrf}
                      class="secondary small"
                      label="Replay"
                      ariaLabel={`Replay ${e.eventId}`}
                    >
                      <input type="hidden" name="provider" value={e.provider} />
                      <input type="hidden" name="event_id" value={e.eventId} />
                    </PostButton>
                  ) : null}
                </td>
              </tr>
            )}
          />
          <DataTable
            id="subscriptions"
            caption="Subscriptions"
            columns={[{ label: 'User' }, { label: 'Plan' }, { label: 'Status' }, { label: 'Period ends', class: 'hide-sm' }]}
            rows={subRows}
            empty={subs.ok ? 'No subscriptions yet.' : undefined}
            footer={!subs.ok ? <p class="muted">Subscriptions are not available: {errorMessage(subs)}</p> : null}
            row={(x) => (
              <tr>
                <td>{users.get(String(x.user_id))?.email ?? x.user_id}</td>
                <td>{plans.get(String(x.plan_id))?.name ?? x.plan_id}</td>
                <td>
                  <Badge status={String(x.status)} /> {x.cancel_at_period_end ? <span class="muted">cancels at period end</span> : null}
                </td>
                <td class="hide-sm">{dateText(x.current_period_end)}</td>
              </tr>
            )}
          />
        </>,
      );
    }),
  );
  pages.post(
    '/admin/ui/payments/replay',
    withAdmin(auth, (c, s) =>
      act(c, s, '/admin/ui/payments', async (f) => {
        const row = await replayPaymentEvent(
          { inbox: new PaymentInbox(w.store), queue: w.kernel?.tryGet('queue'), now: w.now() },
          f.event_id ?? '',
          f.provider || undefined,
        );
        return `Payment event ${row.eventId} is queued again.`;
      }),
    ),
  );

  pages.get(
    '/admin/ui/providers',
    withAdmin(auth, async (c, s) => {
      const report = w.kernel ? await w.kernel.health() : undefined;
      return adminPage(
        c,
        s,
        'Providers',
        <>
          {report ? (
            <>
              <p>
                Overall: <Badge status={report.status} />
              </p>
              <DataTable
                id="providers"
                columns={[
                  { label: 'Capability' },
                  { label: 'Provider' },
                  { label: 'Status' },
                  { label: 'Latency ms', class: 'num' },
                  { label: 'Error' },
                ]}
                rows={Object.entries(report.providers)}
                row={([cap, p]) => (
                  <tr>
                    <td>{cap}</td>
                    <td>{(p as { provider?: string }).provider ?? '—'}</td>
                    <td>
                      <Badge status={String((p as { status?: string }).status)} />
                    </td>
                    <td class="num">{(p as { latency_ms?: number }).latency_ms?.toFixed(2) ?? ''}</td>
                    <td>{(p as { error?: string }).error ?? ''}</td>
                  </tr>
                )}
              />
            </>
          ) : (
            <Flash kind="info" text="Provider health needs the running kernel." />
          )}
          <p class="hint">The same report as GET /admin/health.</p>
        </>,
      );
    }),
  );

  pages.get(
    '/admin/ui/settings',
    withAdmin(auth, async (c, s) => {
      const entries = w.store.settings.list();
      const known = await settingKeys();
      const keys = known ? [...known.keys()].sort() : [];
      return adminPage(
        c,
        s,
        'Settings',
        <>
          <DataTable
            id="settings"
            columns={[{ label: 'Key' }, { label: 'Value' }, { label: 'Updated', class: 'hide-sm' }]}
            rows={entries}
            empty="No settings stored; everything comes from the environment and defaults."
            row={(e) => (
              <tr>
                <td>
                  <code>{e.key}</code>
                </td>
                <td>
                  {e.secret ? (
                    <>
                      <code>{maskSecret(e.value)}</code> <Badge status="secret" />
                    </>
                  ) : (
                    <code>{e.value}</code>
                  )}
                </td>
                <td class="hide-sm">{dateText(e.updatedAt)}</td>
              </tr>
            )}
          />
          {known ? (
            <Card title="Set or replace a setting">
              <form method="post" action="/admin/ui/settings" class="stack">
                <Csrf token={s.csrf} />
                <div class="field">
                  <label for="f-key">Key</label>
                  <input id="f-key" name="key" list="setting-keys" required autocomplete="off" />
                  <datalist id="setting-keys">
                    {keys.map((k) => (
                      <option value={k} />
                    ))}
                  </datalist>
                </div>
                <Field
                  name="value"
                  label="Value"
                  type="password"
                  autocomplete="off"
                  required
                  hint="Secret values are encrypted at rest and never shown again. Changes to providers apply at the next start."
                />
                <button type="submit">Save</button>
              </form>
            </Card>
          ) : null}
        </>,
      );
    }),
  );
  pages.post(
    '/admin/ui/settings',
    withAdmin(auth, (c, s) =>
      act(c, s, '/admin/ui/settings', async (f) => {
        const key = (f.key ?? '').trim();
        const info = (await settingKeys())?.get(key);
        if (!info) throw new Error(`unknown setting "${key}"; \`apigate settings keys\` lists them`);
        const value = f.value ?? '';
        const wrong = info.validate(value);
        if (wrong) throw new Error(`${key}: ${wrong}`);
        await w.store.settings.set(key, value, { secret: info.secret });
        const shown = info.secret ? maskSecret(value) : value;
        const env = info.envVar && process.env[info.envVar]?.trim() ? ` (note: ${info.envVar} is set and takes precedence)` : '';
        return `Set ${key} = ${shown}${env}.`;
      }),
    ),
  );

  pages.get(
    '/admin/ui/export',
    withAdmin(auth, async (c, s) => {
      const month = monthOf(w.now());
      const storage = w.kernel?.tryGet('storage');
      return adminPage(
        c,
        s,
        'Usage export',
        <>
          <Card title="Download a month as CSV">
            <form method="get" action="/admin/ui/export.csv" class="row">
              <div class="field">
                <label for="f-month">Month</label>
                <input id="f-month" name="month" type="month" value={month} required />
              </div>
              <button type="submit">Download CSV</button>
            </form>
          </Card>
          {storage ? (
            <Card title="Export to storage">
              <p>Writes exports/usage-YYYY-MM.csv through the storage provider, like `apigate usage export`.</p>
              <form method="post" action="/admin/ui/export" class="row">
                <Csrf token={s.csrf} />
                <div class="field">
                  <label for="f-month2">Month</label>
                  <input id="f-month2" name="month" type="month" value={month} required />
                </div>
                <button type="submit" class="secondary">
                  Export
                </button>
              </form>
            </Card>
          ) : null}
        </>,
      );
    }),
  );
  pages.get(
    '/admin/ui/export.csv',
    withAdmin(auth, async (c) => {
      const month = c.req.query('month') || monthOf(w.now());
      try {
        const { csv } = await usageCsv(w.store, month);
        c.header('Content-Disposition', `attachment; filename="usage-${month}.csv"`);
        c.header('Cache-Control', 'no-store');
        return c.body(csv, 200, { 'Content-Type': 'text/csv; charset=utf-8' });
      } catch (err) {
        setFlash(c, 'error', (err as Error).message);
        return c.redirect('/admin/ui/export', 303);
      }
    }),
  );
  pages.post(
    '/admin/ui/export',
    withAdmin(auth, (c, s) =>
      act(c, s, '/admin/ui/export', async (f) => {
        const storage = w.kernel?.tryGet('storage');
        if (!storage) throw new Error('no storage provider is selected');
        const r = await exportUsage(w.store, storage, f.month ?? '');
        return `Wrote ${r.key}: ${r.rows} rows, ${r.bytes} bytes${r.signedUrl ? ` (download link valid ${r.expiresInSeconds} s: ${r.signedUrl})` : ''}.`;
      }),
    ),
  );

  return pages;
}
