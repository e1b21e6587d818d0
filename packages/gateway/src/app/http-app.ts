import { describeError, type Health, type HealthReport, type Kernel, type Logger } from '@apigate/kernel';
import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { Store } from '../domain/open-store.js';
import type { ErrorBody } from '../proxy/respond.js';
import { createPortalApi, type PortalOptions } from '../portal/api.js';
import { directMailer, type PortalMailer } from '../portal/mail.js';
import { ADMIN_TOKEN_ENV, createAdminApi } from '../admin/api.js';
import { paymentPipeline } from './payment.js';
import { createPaymentWebhookApp, paymentWebhookRefusal } from '../billing/inbound-webhooks.js';
import { addChallengeRoute } from '../tls/challenges.js';
import { type CustomerBilling, customerBillingFor } from '../billing/customer-billing.js';

export interface HttpAppOptions {
  /** The gateway's own health (rate limits and quotas), shown as `gateway` in /admin/health. */
  gatewayHealth?: () => Health;
  kernel: Kernel;
  store: Store;
  logger: Logger;
  /**
   * Fixed admin API token; when the option is absent, APIGATE_ADMIN_TOKEN is read. Tokens made
   * with `apigate admin token create` work either way. Shorter than 16 characters is refused.
   */
  adminToken?: string | undefined;
  /**
   * The delivery outbox (`startDelivery(...).outbox`): portal emails are queued through it.
   * Without it they go to the selected email provider directly.
   */
  outbox?: PortalMailer | undefined;
  /** Customer billing (portal /billing, /admin/subscriptions); default: over the kernel's payment provider, undefined for none. */
  billing?: CustomerBilling | undefined;
  /** Customer portal tuning: public URL for email links, lifetimes, attempt limits (see PortalOptions). */
  portal?: Omit<PortalOptions, 'store' | 'logger' | 'mailer' | 'cache' | 'oauth'>;
  /**
   * Adds the HTML pages (`@apigate/web`) to the app. Called before the admin API is mounted, so
   * page paths under /admin are not caught by the API's bearer-token check; the pages call the
   * APIs through `app` in-process.
   */
  pages?: (app: Hono) => void;
  /**
   * The address the server binds (serve's `--host`). The dummy payment provider's webhook is
   * served only on a loopback address or with a webhook secret of its own; unknown counts as public.
   */
  bindHost?: string | undefined;
}

/**
 * Capabilities whose outage does not stop the proxy: an error there makes /admin/health
 * `degraded` (200), not `unhealthy` (503), so an orchestrator does not kill a gateway that
 * still serves API calls because, say, the payment provider is down.
 */
export const NON_CRITICAL_CAPABILITIES: ReadonlySet<string> = new Set(['payment']);

/** `unhealthy` only when a critical capability is in error; payment-only errors are `degraded`. */
export function gatewayHealthStatus(report: HealthReport): HealthReport['status'] {
  if (report.status !== 'unhealthy') return report.status;
  const critical = Object.entries(report.providers).some(([cap, p]) => p.status === 'error' && !NON_CRITICAL_CAPABILITIES.has(cap));
  return critical ? 'unhealthy' : 'degraded';
}

/**
 * The gateway's HTTP app. Routes added later (admin API, portal, proxy) go on this app or
 * on sub-apps mounted here, and share its JSON 404 and 500 answers.
 */
/** The `gateway` entry of /admin/health. */
export interface GatewayHealth {
  status: Health['status'];
  detail?: string;
  error?: string;
}

export function createHttpApp(opts: HttpAppOptions): Hono {
  const { kernel, logger } = opts;
  const app = new Hono();

  // The spec's shape, straight from the kernel; 503 lets load balancers take an unhealthy instance out.
  app.get('/admin/health', async (c) => {
    const report: HealthReport & { gateway?: GatewayHealth } = await kernel.health();
    report.status = gatewayHealthStatus(report);
    const h = opts.gatewayHealth?.();
    if (h && h.status !== 'connected') {
      // The gateway's own state, shown only when it is not fine (so a healthy answer keeps the
      // spec's exact shape): rate limits fail open while the cache is down, so the instance
      // still serves (degraded), and says so.
      report.gateway = { status: h.status, ...(h.detail ? { detail: h.detail } : {}), ...(h.error ? { error: h.error } : {}) };
      if (report.status === 'healthy') report.status = 'degraded';
    }
    c.header('Cache-Control', 'no-store');
    return c.json(report, report.status === 'unhealthy' ? 503 : 200);
  });

  opts.pages?.(app);

  // Registered after /admin/health, which stays public: the admin API's token check never sees it.
  const adminToken = 'adminToken' in opts ? opts.adminToken : process.env[ADMIN_TOKEN_ENV]?.trim();
  // Checkout, plan change, cancel and sync over the selected payment provider (portal and admin API).
  const billing = 'billing' in opts ? opts.billing : customerBillingFor(kernel, { store: opts.store, logger });
  app.route('/admin', createAdminApi({ store: opts.store, logger, adminToken, billing, paymentQueue: kernel.tryGet('queue') }));

  const email = kernel.tryGet('email');
  app.route(
    '/portal/api',
    createPortalApi({
      ...opts.portal,
      store: opts.store,
      logger,
      cache: kernel.tryGet('cache'),
      oauth: kernel.tryGet('oauth'),
      mailer: opts.outbox ?? (email ? directMailer(email) : undefined),
      billing,
    }),
  );

  // Payment webhooks: verified and queued here, applied by the payment worker (startPaymentWorker).
  const pay = paymentPipeline(kernel);
  const refusal = pay && paymentWebhookRefusal(kernel, pay.name, opts.bindHost);
  if (refusal) logger.warn({ provider: pay?.name, path: pay?.path }, refusal);
  else if (pay)
    app.route(
      pay.path,
      createPaymentWebhookApp({ providerName: pay.name, payment: pay.payment, queue: pay.queue, store: opts.store, logger }),
    );

  // ACME HTTP-01 answers (from the cache, so any instance can answer); 404 when none is pending.
  addChallengeRoute(app, kernel.tryGet('cache'));

  app.notFound((c) => c.json<ErrorBody>({ error: { code: 'NOT_FOUND', message: `no route for ${c.req.method} ${c.req.path}` } }, 404));

  app.onError((err, c) => {
    if (err instanceof HTTPException && err.status < 500) {
      return c.json<ErrorBody>({ error: { code: 'HTTP_ERROR', message: err.message || 'bad request' } }, err.status);
    }
    // Details go to the log only: a message may carry a value the caller should not see.
    logger.error(
      { method: c.req.method, path: c.req.path, code: (err as { code?: string }).code },
      `request failed: ${describeError(err)}`,
    );
    return c.json<ErrorBody>({ error: { code: 'INTERNAL', message: 'internal server error' } }, 500);
  });

  return app;
}
