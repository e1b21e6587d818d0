import type { Hono as HonoApp } from 'hono';
import { Hono } from 'hono';
import type { WebContext } from '../context.js';
import { CSRF_FIELD, csrfToken, csrfValid } from '../csrf.js';
import { formFields } from '../forms.js';
import { Card, Csrf, Flash, money, render } from '../ui.js';

/** Where the dummy payment provider's pages are served; the dummy provider's default checkout_base_url points here on localhost:8080; elsewhere set it to `<public URL>/portal/dummy-checkout`. */
export const DUMMY_CHECKOUT_PATH = '/portal/dummy-checkout';

/** The parts of the dummy payment provider these pages use (it is in-memory: only its own process can show a session). */
interface DummyPages {
  getCheckoutSession(id: string): {
    sessionId: string;
    planId: string;
    amountCents: number;
    currency: string;
    interval: string;
    successUrl: string;
    cancelUrl: string;
  };
  completeCheckout(id: string): { webhook: { rawBody: Uint8Array; headers: Record<string, string> } };
}

/**
 * The dummy provider's checkout and billing portal pages, for development and the browser tests:
 * "Pay" completes the session at the provider and delivers its signed webhook to this gateway's
 * own POST /webhooks/dummy, exactly as a hosted provider would, then returns to the success URL.
 */
export function dummyCheckoutPages(w: WebContext, payment: DummyPages, webhookPath: string, app: HonoApp): Hono {
  const pages = new Hono();
  const shell = { assets: w.assets, area: 'portal' as const, nav: [] };

  pages.get(`${DUMMY_CHECKOUT_PATH}/portal`, (c) =>
    render(
      c,
      shell,
      'Dummy billing portal',
      <Card>
        <p>The dummy payment provider keeps no invoices or cards; a real provider's portal would show them here.</p>
        <p>
          <a class="button" href={safeReturn(c.req.query('return_url'), c.req.url)}>
            Back to the API portal
          </a>
        </p>
      </Card>,
      { narrow: true },
    ),
  );

  pages.get(`${DUMMY_CHECKOUT_PATH}/:session`, async (c) => {
    let s: ReturnType<DummyPages['getCheckoutSession']>;
    try {
      s = payment.getCheckoutSession(c.req.param('session'));
    } catch {
      return render(
        c,
        shell,
        'Checkout',
        <Flash kind="error" text="This checkout session does not exist (the dummy provider forgets them on restart)." />,
        { status: 404, narrow: true },
      );
    }
    const plan = await w.store.domain.plans.find(s.planId);
    const csrf = csrfToken(c, undefined);
    return render(
      c,
      shell,
      'Dummy checkout',
      <Card>
        <p>
          Plan <strong id="checkout-plan">{plan?.name ?? s.planId}</strong>: {money(s.amountCents, s.currency)} per {s.interval}.
        </p>
        <p class="muted">Test mode: nothing is charged.</p>
        <div class="row">
          <form method="post" action={`${DUMMY_CHECKOUT_PATH}/${encodeURIComponent(s.sessionId)}/pay`}>
            <Csrf token={csrf} />
            <button type="submit" id="pay">
              Pay {money(s.amountCents, s.currency)}
            </button>
          </form>
          <a class="button secondary" href={s.cancelUrl}>
            Cancel
          </a>
        </div>
      </Card>,
      { narrow: true },
    );
  });

  pages.post(`${DUMMY_CHECKOUT_PATH}/:session/pay`, async (c) => {
    const f = await formFields(c);
    if (!csrfValid(c, undefined, f[CSRF_FIELD])) return c.text('the form expired; go back and try again', 403);
    let session: ReturnType<DummyPages['getCheckoutSession']>;
    let done: ReturnType<DummyPages['completeCheckout']>;
    try {
      session = payment.getCheckoutSession(c.req.param('session'));
      done = payment.completeCheckout(session.sessionId);
    } catch {
      return c.text('this checkout session does not exist', 404);
    }
    const res = await app.fetch(
      new Request(new URL(webhookPath, c.req.url), {
        method: 'POST',
        headers: done.webhook.headers,
        body: new Uint8Array(done.webhook.rawBody),
      }),
      c.env,
    );
    if (!res.ok) {
      w.logger.error({ status: res.status }, 'dummy checkout: the gateway refused the checkout webhook');
      return c.text(`the gateway refused the payment webhook (HTTP ${res.status})`, 502);
    }
    return c.redirect(session.successUrl, 303);
  });

  return pages;
}

/** Only a URL on this site. */
function safeReturn(raw: string | undefined, here: string): string {
  try {
    const u = new URL(raw ?? '/portal', here);
    return u.origin === new URL(here).origin ? `${u.pathname}${u.search}` : '/portal';
  } catch {
    return '/portal';
  }
}
