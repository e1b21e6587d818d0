import { selectedPayment } from '@apigate/gateway';
import type { Hono } from 'hono';
import { overviewPage } from './admin/overview.js';
import { opsPages } from './admin/ops.js';
import { peoplePages } from './admin/people.js';
import { routePages } from './admin/routes.js';
import { AdminAuth, adminSignInPages, withAdmin } from './admin/session.js';
import { loadAssets, serveAssets } from './assets.js';
import type { WebContext, WebOptions } from './context.js';
import { portalAuthPages } from './portal/auth.js';
import { portalBillingPages } from './portal/billing.js';
import { dummyCheckoutPages } from './portal/dummy-checkout.js';
import { portalPages } from './portal/pages.js';

/**
 * Adds the customer portal pages (/portal...) and the admin dashboard (/admin, /admin/ui/...) to
 * the gateway's HTTP app. Pass it as `createHttpApp({ pages: (app) => mountWebPages(app, opts) })`,
 * so the pages are registered before the admin API's bearer-token check.
 */
export function mountWebPages(app: Hono, opts: WebOptions): void {
  const { urls, files } = loadAssets();
  const w: WebContext = { ...opts, app, assets: urls, now: opts.now ?? (() => new Date()) };
  serveAssets(app, files);

  app.route('/', portalAuthPages(w));
  app.route('/', portalPages(w));
  app.route('/', portalBillingPages(w));
  const pay = w.kernel ? selectedPayment(w.kernel) : undefined;
  if (pay?.name === 'dummy') app.route('/', dummyCheckoutPages(w, pay.payment as never, pay.path, app));

  const auth = new AdminAuth(w);
  const overview = withAdmin(auth, (c, s) => overviewPage(w, c, s));
  // GET /admin with a bearer token is an admin API client: left to the API (which answers 404).
  app.get('/admin', (c, next) => (c.req.header('authorization') ? next() : overview(c)));
  app.route('/', adminSignInPages(w, auth));
  app.route('/', peoplePages(w, auth));
  app.route('/', routePages(w, auth));
  app.route('/', opsPages(w, auth));
}
