import type { Plan } from '@apigate/gateway';
import { type Context, Hono } from 'hono';
import { callApi, errorMessage } from '../call.js';
import type { WebContext } from '../context.js';
import { CSRF_FIELD, csrfToken, csrfValid, FORM_EXPIRED } from '../csrf.js';
import { formFields, seeOther } from '../forms.js';
import { Badge, Card, Csrf, dateText, Flash, limitText, money, render } from '../ui.js';
import { DataTable } from '../ui/table.js';
import { currentCustomer, type Me, noteFlash, portalShell, sessionSecret } from './shell.js';

/** GET /portal/api/billing (snake_case). */
interface Overview {
  provider: string;
  plan: { id: string; name: string } | null;
  subscription: { id: string; status: string; plan_id: string; current_period_end: string | null; cancel_at_period_end: boolean } | null;
  features: { customer_portal: boolean; immediate_cancel: boolean; invoices: boolean };
  /** Newest first; null where the provider has no invoice list, or it failed (`invoices_error` says why). */
  invoices: Invoice[] | null;
  invoices_error?: string;
}

interface Invoice {
  id: string;
  status: string;
  amount_cents: number;
  currency: string;
  created_at: string;
  period_start?: string;
  period_end?: string;
  url?: string;
}

const day = (v: string | undefined) => (v ? v.slice(0, 10) : '');

/** The overview's invoices as a table; only what the billing API answered, nothing worked out here. */
function Invoices({ o }: { o: Overview }) {
  if (!o.features.invoices) {
    return o.features.customer_portal ? <p class="muted">Your invoices are in the billing portal ({o.provider}).</p> : null;
  }
  if (o.invoices === null)
    return <Flash kind="info" text={`Invoices are not available right now: ${o.invoices_error ?? 'try again later'}`} />;
  return (
    <DataTable
      id="invoices"
      caption="Invoices"
      columns={[
        { label: 'Date' },
        { label: 'Period', class: 'hide-sm' },
        { label: 'Amount', class: 'num' },
        { label: 'Status' },
        { label: 'Invoice', action: true },
      ]}
      rows={o.invoices}
      empty="No invoices yet."
      emptyRow
      row={(i) => (
        <tr data-invoice-id={i.id}>
          <td data-label="Date">{dateText(i.created_at)}</td>
          <td class="hide-sm" data-label="Period">
            {i.period_start && i.period_end ? `${day(i.period_start)} – ${day(i.period_end)}` : '—'}
          </td>
          <td class="num" data-label="Amount">
            {money(i.amount_cents, i.currency)}
          </td>
          <td data-label="Status">
            <Badge status={i.status} />
          </td>
          <td>
            {i.url ? (
              <a href={i.url} rel="noopener noreferrer" target="_blank" aria-label={`View invoice ${i.id}`}>
                View
              </a>
            ) : (
              <span class="muted">—</span>
            )}
          </td>
        </tr>
      )}
    />
  );
}

const LIVE = new Set(['active', 'trialing', 'past_due']);

/**
 * The plan page: the current plan and subscription, every plan to compare, and checkout, change,
 * cancel and the provider's billing portal, all through /portal/api/billing.
 */
export function portalBillingPages(w: WebContext): Hono {
  const pages = new Hono();

  pages.get('/portal/plan', (c) => c.redirect('/portal/billing', 301));

  async function page(c: Context, me: Me, extra: { error?: string; status?: number } = {}) {
    const [billing, plans] = await Promise.all([callApi(w.app, c, 'GET', '/portal/api/billing'), w.store.domain.plans.list()]);
    const o = billing.ok ? (billing.body as Overview) : undefined;
    const sub = o?.subscription && LIVE.has(o.subscription.status) ? o.subscription : undefined;
    const csrf = csrfToken(c, sessionSecret(c));
    const checkout = c.req.query('checkout');
    const planCard = (p: Plan) => {
      const current = p.id === me.plan?.id;
      return (
        <section class={`card${current ? ' current' : ''}`} aria-labelledby={`plan-${p.id}`} data-plan={p.name}>
          <h2 id={`plan-${p.id}`}>
            {p.name} {current ? <Badge status="current" /> : null}
          </h2>
          <p class="stat">
            {money(p.priceCents, p.currency)}
            {p.priceCents > 0 ? <span class="muted"> / month</span> : null}
          </p>
          <ul>
            <li>{limitText(p.requestsPerMonth, 'requests a month')}</li>
            <li>{limitText(p.requestsPerMinute, 'requests a minute')}</li>
            {p.trialDays ? <li>{p.trialDays}-day free trial</li> : null}
          </ul>
          {current || !o ? null : sub ? (
            p.priceCents > 0 ? (
              <form method="post" action="/portal/billing/change">
                <Csrf token={csrf} />
                <input type="hidden" name="plan" value={p.id} />
                <button type="submit">Switch to {p.name}</button>
              </form>
            ) : (
              <p class="hint">Cancel the subscription to return to {p.name} when the paid period ends.</p>
            )
          ) : p.priceCents > 0 ? (
            <form method="post" action="/portal/billing/checkout">
              <Csrf token={csrf} />
              <input type="hidden" name="plan" value={p.id} />
              <button type="submit">Upgrade to {p.name}</button>
            </form>
          ) : null}
        </section>
      );
    };
    return render(
      c,
      portalShell(w, c, me),
      'Plan and billing',
      <>
        {noteFlash(c)}
        {checkout === 'success' ? (
          <Flash kind="ok" text="Thank you: the payment went through. Your plan changes as soon as the payment provider confirms it." />
        ) : null}
        {checkout === 'cancel' ? <Flash kind="info" text="The checkout was canceled; nothing changed." /> : null}
        <Flash kind="error" text={extra.error} />
        {!billing.ok ? <Flash kind="info" text={`Online payment is not available: ${errorMessage(billing)}`} /> : null}
        <Card title="Your plan">
          <p class="stat" id="current-plan">
            {me.plan?.name ?? '—'}
          </p>
          {sub ? (
            <p>
              Subscription <Badge status={sub.status} />{' '}
              {sub.cancel_at_period_end ? `ends ${dateText(sub.current_period_end)} UTC` : `renews ${dateText(sub.current_period_end)} UTC`}
            </p>
          ) : (
            <p class="muted">No paid subscription.</p>
          )}
          <div class="row">
            {o?.features.customer_portal ? (
              <form method="post" action="/portal/billing/portal">
                <Csrf token={csrf} />
                <button type="submit" class="secondary">
                  Open the billing portal ({o.provider})
                </button>
              </form>
            ) : null}
            {sub && !sub.cancel_at_period_end ? (
              <form method="post" action="/portal/billing/cancel" data-confirm="Cancel the subscription at the end of the period?">
                <Csrf token={csrf} />
                <button type="submit" class="danger">
                  Cancel subscription
                </button>
              </form>
            ) : null}
          </div>
        </Card>
        {o ? <Invoices o={o} /> : null}
        <h2>Compare plans</h2>
        <div class="plans">{plans.map(planCard)}</div>
      </>,
      { status: extra.status ?? 200 },
    );
  }

  pages.get('/portal/billing', async (c) => {
    const who = await currentCustomer(w, c);
    return 'page' in who ? who.page : page(c, who.me);
  });

  // Each action posts to the billing API; checkout and the portal answer a provider URL to go to.
  for (const action of ['checkout', 'change', 'cancel', 'portal'] as const) {
    pages.post(`/portal/billing/${action}`, async (c) => {
      const who = await currentCustomer(w, c);
      if ('page' in who) return who.page;
      const f = await formFields(c);
      if (!csrfValid(c, sessionSecret(c), f[CSRF_FIELD])) return page(c, who.me, { error: FORM_EXPIRED, status: 403 });
      const a = await callApi(
        w.app,
        c,
        'POST',
        `/portal/api/billing/${action}`,
        action === 'checkout' || action === 'change' ? { plan: f.plan ?? '' } : {},
      );
      if (!a.ok) return page(c, who.me, { error: errorMessage(a), status: a.status });
      if (action === 'checkout' || action === 'portal') return c.redirect(String(a.body.url), 303);
      return seeOther(c, '/portal/billing', action === 'cancel' ? 'plan-canceled' : 'plan-changed');
    });
  }

  return pages;
}
