import { HTTP_METHODS } from '@apigate/gateway';
import { Hono } from 'hono';
import type { WebContext } from '../context.js';
import { Badge, Card, Csrf, Field } from '../ui.js';
import { DataTable, PostButton } from '../ui/table.js';
import { type AdminAuth, act, adminPage, withAdmin } from './session.js';

/** Routes: list, add, enable/disable, remove, and a "try it" call from the browser. */
export function routePages(w: WebContext, auth: AdminAuth): Hono {
  const pages = new Hono();
  const d = w.store.domain;

  pages.get(
    '/admin/ui/routes',
    withAdmin(auth, async (c, s) => {
      const routes = await d.routes.list();
      return adminPage(
        c,
        s,
        'Routes',
        <>
          <DataTable
            id="routes"
            columns={[
              { label: 'Path prefix' },
              { label: 'Upstream' },
              { label: 'Methods', class: 'hide-sm' },
              { label: 'Status' },
              { label: 'Actions', action: true },
            ]}
            rows={routes}
            empty="No routes yet: add one below."
            row={(r) => (
              <tr>
                <td>
                  <code>{r.pathPrefix}</code>
                  {r.stripPrefix ? <span class="muted"> (prefix stripped)</span> : null}
                </td>
                <td>
                  <code>{r.upstreamUrl}</code>
                </td>
                <td class="hide-sm">{r.methods.length ? r.methods.join(', ') : 'any'}</td>
                <td>
                  <Badge status={r.enabled ? 'active' : 'disabled'} />
                </td>
                <td class="row">
                  <PostButton
                    action={`/admin/ui/routes/${r.id}/${r.enabled ? 'disable' : 'enable'}`}
                    csrf={s.csrf}
                    class="secondary small"
                    label={r.enabled ? 'Disable' : 'Enable'}
                    ariaLabel={`${r.enabled ? 'Disable' : 'Enable'} ${r.pathPrefix}`}
                  />
                  <PostButton
                    action={`/admin/ui/routes/${r.id}/delete`}
                    csrf={s.csrf}
                    class="danger small"
                    label="Remove"
                    ariaLabel={`Remove ${r.pathPrefix}`}
                    confirm={`Remove the route ${r.pathPrefix}?`}
                  />
                </td>
              </tr>
            )}
          />
          <div class="grid two">
            <Card title="Add a route">
              <form method="post" action="/admin/ui/routes" class="stack">
                <Csrf token={s.csrf} />
                <Field name="path_prefix" label="Path prefix" required placeholder="/weather" />
                <Field name="upstream_url" label="Upstream URL" type="url" required placeholder="http://127.0.0.1:3000" />
                <div class="row">
                  <input type="checkbox" id="f-strip" name="strip_prefix" value="true" />
                  <label for="f-strip">Strip the prefix before forwarding</label>
                </div>
                <button type="submit">Add route</button>
              </form>
            </Card>
            <Card title="Try it">
              <form id="try-it" class="stack">
                <div class="field">
                  <label for="t-method">Method</label>
                  <select id="t-method" name="method">
                    {HTTP_METHODS.map((m) => (
                      <option>{m}</option>
                    ))}
                  </select>
                </div>
                <Field
                  name="path"
                  label="Path"
                  required
                  placeholder={routes[0] ? `${routes[0].pathPrefix === '/' ? '' : routes[0].pathPrefix}/` : '/weather/today'}
                />
                <Field
                  name="key"
                  label="API key"
                  type="password"
                  autocomplete="off"
                  hint="An ak_ key of a customer: the call goes through the gateway like theirs and is metered."
                />
                <button type="submit">Send</button>
              </form>
              <pre class="out" id="try-it-out" tabindex={-1} aria-live="polite">
                The answer shows here (needs JavaScript).
              </pre>
            </Card>
          </div>
        </>,
      );
    }),
  );
  pages.post(
    '/admin/ui/routes',
    withAdmin(auth, (c, s) =>
      act(c, s, '/admin/ui/routes', async (f) => {
        const r = await d.routes.create({
          pathPrefix: f.path_prefix ?? '',
          upstreamUrl: f.upstream_url ?? '',
          stripPrefix: f.strip_prefix === 'true',
        });
        return `Added ${r.pathPrefix} -> ${r.upstreamUrl}.`;
      }),
    ),
  );
  for (const [action, enabled] of [
    ['enable', true],
    ['disable', false],
  ] as const) {
    pages.post(
      `/admin/ui/routes/:id/${action}`,
      withAdmin(auth, (c, s) =>
        act(c, s, '/admin/ui/routes', async () => `${(await d.routes.update(c.req.param('id')!, { enabled })).pathPrefix} is ${action}d.`),
      ),
    );
  }
  pages.post(
    '/admin/ui/routes/:id/delete',
    withAdmin(auth, (c, s) =>
      act(c, s, '/admin/ui/routes', async () => {
        const r = await d.routes.get(c.req.param('id')!);
        await d.routes.delete(r.id);
        return `Removed ${r.pathPrefix}.`;
      }),
    ),
  );
  return pages;
}
