import type { User } from '@apigate/gateway';
import { Hono } from 'hono';
import type { WebContext } from '../context.js';
import { Badge, Card, Csrf, dateText, Field, limitText, money } from '../ui.js';
import { DataTable, PostButton } from '../ui/table.js';
import { type AdminAuth, act, adminPage, withAdmin } from './session.js';

/** A form number: '' is "not given", 'unlimited' (or none) is null. */
const limitField = (v: string | undefined) =>
  v === undefined || v.trim() === '' ? undefined : /^(unlimited|none)$/i.test(v.trim()) ? null : Number(v);

/** Users (search, suspend, change plan), plans and keys, over the domain the admin API uses. */
export function peoplePages(w: WebContext, auth: AdminAuth): Hono {
  const pages = new Hono();
  const d = w.store.domain;

  pages.get(
    '/admin/ui/users',
    withAdmin(auth, async (c, s) => {
      const q = (c.req.query('q') ?? '').trim().toLowerCase();
      const status = c.req.query('status');
      const plans = new Map((await d.plans.list()).map((p) => [p.id, p]));
      // Search reads the users page by page (at most 2000) and keeps those whose email or name contains the text.
      let found: User[] = [];
      let cursor: string | undefined;
      for (let i = 0; i < 20; i++) {
        const page = await d.users.list({
          limit: 100,
          ...(cursor ? { cursor } : {}),
          ...(status === 'active' || status === 'suspended' ? { status } : {}),
        });
        found.push(...page.items.filter((u) => !q || u.email.includes(q) || u.name.toLowerCase().includes(q)));
        cursor = page.cursor;
        if (!cursor || found.length >= 200) break;
      }
      found = found.slice(0, 200);
      return adminPage(
        c,
        s,
        'Users',
        <>
          <Card>
            <form method="get" action="/admin/ui/users" class="row">
              <div class="field" style="flex:1 1 14rem">
                <label for="f-q">Search email or name</label>
                <input id="f-q" name="q" type="search" value={q} />
              </div>
              <div class="field">
                <label for="f-status">Status</label>
                <select id="f-status" name="status">
                  <option value="">any</option>
                  <option value="active" selected={status === 'active'}>
                    active
                  </option>
                  <option value="suspended" selected={status === 'suspended'}>
                    suspended
                  </option>
                </select>
              </div>
              <button type="submit">Search</button>
            </form>
          </Card>
          <DataTable
            id="users"
            columns={[
              { label: 'Email' },
              { label: 'Status' },
              { label: 'Plan' },
              { label: 'Created', class: 'hide-sm' },
              { label: 'Actions', action: true },
            ]}
            rows={found}
            empty="No users match."
            row={(u) => (
              <tr data-user={u.email}>
                <td>
                  {u.email}
                  <br />
                  <span class="muted">{u.name}</span>
                </td>
                <td>
                  <Badge status={u.status} />
                </td>
                <td>
                  <form method="post" action={`/admin/ui/users/${u.id}/plan`} class="row">
                    <Csrf token={s.csrf} />
                    <label class="muted" for={`plan-${u.id}`} style="position:absolute;left:-999px">
                      Plan of {u.email}
                    </label>
                    <select id={`plan-${u.id}`} name="plan_id">
                      {[...plans.values()].map((p) => (
                        <option value={p.id} selected={p.id === u.planId}>
                          {p.name}
                        </option>
                      ))}
                    </select>
                    <button type="submit" class="secondary small">
                      Set plan
                    </button>
                  </form>
                </td>
                <td class="hide-sm">{dateText(u.createdAt)}</td>
                <td>
                  <PostButton
                    action={`/admin/ui/users/${u.id}/${u.status === 'active' ? 'suspend' : 'activate'}`}
                    csrf={s.csrf}
                    class={u.status === 'active' ? 'danger small' : 'secondary small'}
                    label={u.status === 'active' ? 'Suspend' : 'Activate'}
                    ariaLabel={`${u.status === 'active' ? 'Suspend' : 'Activate'} ${u.email}`}
                  />
                </td>
              </tr>
            )}
          />
        </>,
      );
    }),
  );
  const back = (c: { req: { header(n: string): string | undefined } }, fallback: string) => {
    const ref = c.req.header('referer');
    try {
      const u = ref ? new URL(ref) : undefined;
      return u?.pathname.startsWith('/admin') ? `${u.pathname}${u.search}` : fallback;
    } catch {
      return fallback;
    }
  };
  pages.post(
    '/admin/ui/users/:id/suspend',
    withAdmin(auth, (c, s) =>
      act(
        c,
        s,
        back(c, '/admin/ui/users'),
        async () => `Suspended ${(await d.users.suspend(c.req.param('id')!)).email}: their keys now get 403.`,
      ),
    ),
  );
  pages.post(
    '/admin/ui/users/:id/activate',
    withAdmin(auth, (c, s) =>
      act(c, s, back(c, '/admin/ui/users'), async () => `Activated ${(await d.users.activate(c.req.param('id')!)).email}.`),
    ),
  );
  pages.post(
    '/admin/ui/users/:id/plan',
    withAdmin(auth, (c, s) =>
      act(c, s, back(c, '/admin/ui/users'), async (f) => {
        const u = await d.users.update(c.req.param('id')!, { planId: f.plan_id ?? '' });
        return `${u.email} is now on ${(await d.plans.get(u.planId)).name}.`;
      }),
    ),
  );

  pages.get(
    '/admin/ui/plans',
    withAdmin(auth, async (c, s) => {
      const plans = await d.plans.list();
      return adminPage(
        c,
        s,
        'Plans',
        <>
          <DataTable
            id="plans"
            columns={[
              { label: 'Name' },
              { label: 'Per minute' },
              { label: 'Per month' },
              { label: 'Price' },
              { label: 'Default', action: true },
            ]}
            rows={plans}
            row={(p) => (
              <tr>
                <td>{p.name}</td>
                <td>{limitText(p.requestsPerMinute, '')}</td>
                <td>{limitText(p.requestsPerMonth, '')}</td>
                <td>{money(p.priceCents, p.currency)}</td>
                <td>
                  {p.isDefault ? (
                    <Badge status="default" />
                  ) : (
                    <PostButton
                      action={`/admin/ui/plans/${p.id}/default`}
                      csrf={s.csrf}
                      class="secondary small"
                      label="Make default"
                      ariaLabel={`Make ${p.name} the default plan`}
                    />
                  )}
                </td>
              </tr>
            )}
          />
          <Card title="Create a plan">
            <form method="post" action="/admin/ui/plans" class="stack">
              <Csrf token={s.csrf} />
              <Field name="name" label="Name" required />
              <div class="grid three">
                <Field
                  name="requests_per_minute"
                  label="Requests per minute"
                  inputmode="numeric"
                  hint="Empty or 'unlimited' for no limit."
                />
                <Field name="requests_per_month" label="Requests per month" inputmode="numeric" hint="Empty or 'unlimited' for no quota." />
                <Field name="price_cents" label="Price per month (cents)" inputmode="numeric" value="0" />
              </div>
              <button type="submit">Create plan</button>
            </form>
          </Card>
        </>,
      );
    }),
  );
  pages.post(
    '/admin/ui/plans',
    withAdmin(auth, (c, s) =>
      act(c, s, '/admin/ui/plans', async (f) => {
        const rpm = limitField(f.requests_per_minute);
        const monthly = limitField(f.requests_per_month);
        const p = await d.plans.create({
          name: f.name ?? '',
          ...(rpm !== undefined ? { requestsPerMinute: rpm } : {}),
          ...(monthly !== undefined ? { requestsPerMonth: monthly } : {}),
          ...(f.price_cents?.trim() ? { priceCents: Number(f.price_cents) } : {}),
        } as never);
        return `Created plan ${p.name}.`;
      }),
    ),
  );
  pages.post(
    '/admin/ui/plans/:id/default',
    withAdmin(auth, (c, s) =>
      act(
        c,
        s,
        '/admin/ui/plans',
        async () => `${(await d.plans.setDefault(c.req.param('id')!)).name} is the default plan for new sign-ups.`,
      ),
    ),
  );

  pages.get(
    '/admin/ui/keys',
    withAdmin(auth, async (c, s) => {
      const userQ = (c.req.query('user') ?? '').trim();
      let userId: string | undefined;
      let error: string | undefined;
      if (userQ) {
        try {
          userId = (await d.users.resolve(userQ)).id;
        } catch (err) {
          error = (err as Error).message;
        }
      }
      const page = error
        ? { items: [], cursor: undefined }
        : await d.keys.list({
            limit: 100,
            ...(userId ? { userId } : {}),
            ...(c.req.query('cursor') ? { cursor: c.req.query('cursor')! } : {}),
          });
      const owners = new Map(
        (await Promise.all([...new Set(page.items.map((k) => k.userId))].map((id) => d.users.find(id))))
          .filter((u) => u !== undefined)
          .map((u) => [u.id, u]),
      );
      return adminPage(
        c,
        s,
        'API keys',
        <>
          <Card>
            <form method="get" action="/admin/ui/keys" class="row">
              <div class="field" style="flex:1 1 14rem">
                <label for="f-user">User (email or id)</label>
                <input id="f-user" name="user" value={userQ} aria-invalid={error ? 'true' : undefined} />
              </div>
              <button type="submit">Filter</button>
            </form>
            {error ? <p class="error-text">{error}</p> : null}
          </Card>
          <DataTable
            id="keys"
            columns={[
              { label: 'Key' },
              { label: 'User' },
              { label: 'Status' },
              { label: 'Last used', class: 'hide-sm' },
              { label: 'Action', action: true },
            ]}
            rows={page.items}
            row={(k) => (
              <tr>
                <td>
                  <code>{k.prefix}…</code> {k.name}
                </td>
                <td>{owners.get(k.userId)?.email ?? k.userId}</td>
                <td>
                  <Badge status={k.status} />
                </td>
                <td class="hide-sm">{dateText(k.lastUsedAt)}</td>
                <td>
                  {k.status === 'active' ? (
                    <PostButton
                      action={`/admin/ui/keys/${k.id}/revoke`}
                      csrf={s.csrf}
                      class="danger small"
                      label="Revoke"
                      ariaLabel={`Revoke ${k.prefix}`}
                      confirm={`Revoke ${k.prefix}?`}
                    />
                  ) : null}
                </td>
              </tr>
            )}
            footer={
              page.cursor ? (
                <p>
                  <a href={`/admin/ui/keys?cursor=${encodeURIComponent(page.cursor)}${userQ ? `&user=${encodeURIComponent(userQ)}` : ''}`}>
                    Next page
                  </a>
                </p>
              ) : null
            }
          />
        </>,
      );
    }),
  );
  pages.post(
    '/admin/ui/keys/:id/revoke',
    withAdmin(auth, (c, s) =>
      act(
        c,
        s,
        back(c, '/admin/ui/keys'),
        async () => `Revoked ${(await d.keys.revoke(c.req.param('id')!)).prefix}: calls with it now get 401.`,
      ),
    ),
  );

  return pages;
}
