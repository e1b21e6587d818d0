import type { IncomingMessage, ServerResponse } from 'node:http';
import { describeError, type Kernel, type Logger, type ReconfigureReport } from '@apigate/kernel';
import type { Hono } from 'hono';
import { type CustomerBilling, customerBillingFor } from '../billing/customer-billing.js';
import { startBillingJobs } from '../billing/jobs.js';
import { isLoopbackHost } from '../billing/inbound-webhooks.js';
import { startPaymentWorker } from '../billing/worker.js';
import type { ChangeEvent } from '../store/changes.js';
import { type Delivery, readDeliverySettings, startDelivery } from '../delivery/index.js';
import { type Gateway, type GatewayCloseReport, type GatewayOptions, startGateway } from '../gate/gateway.js';
import type { WebhookDispatcher } from '../delivery/outbound-webhooks.js';
import { createHttpApp, type HttpAppOptions } from './http-app.js';
import { startHousekeeping } from './housekeeping.js';
import type { Store } from '../domain/open-store.js';
import { paymentPipeline } from './payment.js';
import { type ShutdownOutcome, shutdownOutcome, untilDeadline } from './shutdown.js';

export interface ApiGateOptions {
  /** The providers; `close()` closes them (after delivery, before the caller closes the store). */
  kernel: Kernel;
  store: Store;
  /** Where the usage spool and provider data live (the store's data dir). */
  dataDir: string;
  logger: Logger;
  /**
   * The address the server binds (serve's `--host`): the dummy payment provider's webhook is served on a
   * loopback address only (unless it has its own secret), and a warning is logged when it would be public.
   */
  bindHost?: string | undefined;
  /** Fixed admin API token; default APIGATE_ADMIN_TOKEN (see createHttpApp). */
  adminToken?: string | undefined;
  /** Adds HTML pages to the app (e.g. `@apigate/web`'s `mountWebPages`), with the running parts they use. */
  pages?: (app: Hono, parts: { webhooks: WebhookDispatcher }) => void;
  /** Customer portal tuning (public URL for email links, lifetimes...). */
  portal?: HttpAppOptions['portal'];
  /**
   * Follow settings changes (`apigate settings set` in another process, the settings page): reload the
   * snapshot and rebuild the providers whose settings changed (`kernel.reconfigure()`). Default true.
   */
  liveSettings?: boolean;
  /** The housekeeping job's timers (tests); default a first round after a minute, then daily. */
  housekeeping?: { firstRunMs?: number; intervalMs?: number };
  /** Hot path tuning passed to startGateway (tests). */
  gateway?: Omit<GatewayOptions, 'kernel' | 'store' | 'dataDir' | 'logger' | 'sendEmail' | 'webhookRetry'>;
}

export interface ApiGate {
  /** The HTTP app (admin API, portal, payment webhooks, pages): `startServer({ app, front })`. */
  app: Hono;
  /** The proxy path, for `startServer({ front })`: answers proxied paths, false for the app's own. */
  front(req: IncomingMessage, res: ServerResponse): boolean;
  gateway: Gateway;
  /** Undefined without a queue provider (email and notifications are then not delivered). */
  delivery: Delivery | undefined;
  /** Undefined without a payment provider. */
  billing: CustomerBilling | undefined;
  /** Reloads the settings and rebuilds providers now (what a settings change triggers). Resolves with what was done. */
  reloadSettings(): Promise<ReconfigureReport | undefined>;
  /**
   * After the servers stopped taking requests: the billing and housekeeping jobs and the payment worker, then the
   * gateway (metered usage into the store, quota counts, webhooks), then delivery, then the
   * providers. Close the store after it. With a `deadline` (epoch ms) no step waits past it, and
   * the outcome says what could not be flushed (`problems`) or was left behind (`warnings`).
   * Idempotent.
   */
  close(opts?: { deadline?: number }): Promise<ShutdownOutcome & { report: GatewayCloseReport | undefined }>;
}

/**
 * Starts APIGate over a built kernel and an open store: delivery (outbox workers, alerts), the
 * hot path (keys, limits, metering, outbound webhooks), the payment worker, billing jobs, the
 * HTTP app, and live settings. It owns the start order and the close order; a failure while
 * starting closes what started (the kernel too) and rethrows.
 */
export async function startApiGate(o: ApiGateOptions): Promise<ApiGate> {
  const { kernel, store, logger } = o;
  let delivery: Delivery | undefined;
  let gateway: Gateway | undefined;
  let payments: { close(): Promise<void> } | undefined;
  let billingJobs: { close(): Promise<void> } | undefined;
  let housekeeping: { stop(): Promise<void> } | undefined;
  let settings: SettingsFollower | undefined;
  const onProviderError = (e: { message: string }) => logger.warn({ event: e }, `provider error: ${e.message}`);

  let closing: ReturnType<ApiGate['close']> | undefined;
  const closeAll = async (deadline: number | undefined) => {
    const abandoned: string[] = [];
    const step = (what: string, fn: () => Promise<unknown>, by = deadline) => untilDeadline(by, what, fn, abandoned);
    // Before the gateway: the payment worker emits through its webhook dispatcher. Events still
    // queued stay queued (a durable queue keeps them for the next start). They get a fifth of
    // the time left, so a hung queue leaves the gateway time to spool the metered usage.
    const early = deadline === undefined ? undefined : Date.now() + (deadline - Date.now()) / 5;
    // No provider rebuild starts from here on; one building now (a new SMTP server that does not answer) is not waited for past `early`.
    await step('settings reload', async () => settings?.close(), early);
    await step('billing jobs', async () => billingJobs?.close(), early);
    await step('housekeeping', async () => housekeeping?.stop(), early);
    await step(
      'payment worker',
      async () => payments?.close().catch((err: unknown) => logger.warn(`cannot stop the payment worker: ${describeError(err)}`)),
      early,
    );
    // The rest stops waiting a little before the deadline, so the caller's report still gets written.
    const soft = deadline === undefined ? undefined : deadline - Math.min(500, Math.max(0, deadline - Date.now()) / 10);
    const report = await gateway?.close(soft === undefined ? {} : { deadline: soft });
    await step('delivery workers', async () => delivery?.close(), soft);
    await step('providers', async () => kernel.close(), soft);
    kernel.events.off('provider.error', onProviderError);
    return { ...shutdownOutcome(report, abandoned), report };
  };
  const close: ApiGate['close'] = (opts = {}) => {
    closing ??= closeAll(opts.deadline);
    return closing;
  };

  try {
    kernel.events.on('provider.error', onProviderError);
    // The outbox's workers and the alert router for notification.events.
    delivery = startDelivery({ kernel, settings: store.settings, logger });
    const outbox = delivery?.outbox;
    const retry = readDeliverySettings(store.settings);
    // The proxy path: keys, limits, metering into the store, quota notices, outbound webhooks.
    gateway = await startGateway({
      ...o.gateway,
      kernel,
      store,
      dataDir: o.dataDir,
      logger,
      sendEmail: outbox ? (msg, opts) => outbox.sendEmail(msg, opts) : undefined,
      webhookRetry: { attempts: retry.attempts, backoffMs: retry.backoffMs },
    });
    // Payment webhooks are verified and queued by the HTTP app; this worker applies them.
    const pay = paymentPipeline(kernel);
    if (pay) {
      // It first re-queues what an earlier run left queued in the inbox (a memory queue loses its jobs on exit).
      payments = startPaymentWorker(pay.queue, { store, logger, webhooks: gateway.webhooks, providerName: pay.name, payment: pay.payment });
      logger.info({ provider: pay.name, path: pay.path }, `payment webhooks: POST ${pay.path}`);
      if (pay.name === 'dummy' && o.bindHost !== undefined && !isLoopbackHost(o.bindHost)) {
        logger.warn(
          { provider: 'dummy', host: o.bindHost },
          `WARNING: the DUMMY payment provider is selected while apigate binds ${o.bindHost}, a non-loopback address: it takes no money, and with its default secret anyone could forge its webhooks (its webhook route is then refused). Select a real payment provider (PAYMENT_PROVIDER) or bind 127.0.0.1.`,
        );
      }
    }
    // Checkout, change and cancel (portal, admin API), plus plan price sync, reconciliation and overage reports.
    const billing = customerBillingFor(kernel, { store, logger });
    billingJobs = startBillingJobs({ kernel, store, logger, billing });
    // Old per-minute usage and traffic rows, old batch ids, expired portal sessions and tokens: shortly after the start, then daily.
    housekeeping = startHousekeeping({ store, logger, cache: kernel.tryGet('cache'), ...o.housekeeping });
    const gw = gateway;
    // Portal emails (verification, password reset) go through the same outbox as everything else.
    const app = createHttpApp({
      kernel,
      store,
      logger,
      gatewayHealth: () => gw.health(),
      ...(outbox ? { outbox } : {}),
      billing,
      bindHost: o.bindHost,
      ...('adminToken' in o ? { adminToken: o.adminToken } : {}),
      ...(o.portal ? { portal: o.portal } : {}),
      ...(o.pages ? { pages: (a: Hono) => o.pages?.(a, { webhooks: gw.webhooks }) } : {}),
    });
    if (o.liveSettings !== false) settings = followSettings({ store, kernel, logger });
    return {
      app,
      front: gw.front,
      gateway: gw,
      delivery,
      billing,
      reloadSettings: () => (settings ?? followSettings({ store, kernel, logger, manual: true })).reload(),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

interface SettingsFollower {
  reload(): Promise<ReconfigureReport | undefined>;
  close(): Promise<void>;
}

/**
 * Reloads the settings snapshot and reconfigures the kernel when the `settings` change version moves:
 * a write in this process at once, one by another process (the CLI, another instance) when the
 * change poll notices it (the gateway's catalog polls every second; PostgreSQL NOTIFY wakes it
 * earlier). Changes arriving during a reload run one more reload after it.
 */
function followSettings(o: { store: Store; kernel: Kernel; logger: Logger; manual?: boolean }): SettingsFollower {
  const { store, kernel, logger } = o;
  let running: Promise<ReconfigureReport | undefined> | undefined;
  let again = false;
  let closed = false;
  const once = async (): Promise<ReconfigureReport | undefined> => {
    try {
      await store.settings.reload();
      const report = await kernel.reconfigure();
      if (report.rebuilt.length || report.failed.length || report.restart.length) logger.info({ settings: report }, 'settings changed');
      return report;
    } catch (err) {
      logger.warn(`cannot apply the changed settings; the providers keep their settings: ${describeError(err)}`);
      return undefined;
    }
  };
  const reload = (): Promise<ReconfigureReport | undefined> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      let last: ReconfigureReport | undefined;
      do {
        again = false;
        last = await once();
      } while (again && !closed);
      return last;
    })().finally(() => {
      running = undefined;
    });
    return running;
  };
  const onChange = (e: ChangeEvent) => {
    if (e.entity === 'settings' && !closed) void reload();
  };
  if (!o.manual) store.domain.changes.on('change', onChange);
  return {
    reload,
    async close() {
      closed = true;
      store.domain.changes.off('change', onChange);
      await running;
    },
  };
}
