import {
  ADMIN_TOKEN_ENV,
  type BillingJobs,
  createHttpApp,
  customerBillingFor,
  isLoopbackHost,
  type Delivery,
  DEFAULT_SHUTDOWN_TIMEOUT_MS,
  parseTlsDomains,
  readShutdownTimeout,
  type RunningServer,
  type Gateway,
  readDeliverySettings,
  selectedPayment,
  startBillingJobs,
  startDelivery,
  startGateway,
  startPaymentWorker,
  startServer,
} from '@apigate/gateway';
import { createLogger, describeError, type Worker } from '@apigate/kernel';
import type { Command } from 'commander';
import { mountWebPages } from '@apigate/web';
import { assertNoPluginProblems, loadAllDefinitions, openRuntime, parsePort, startKernel } from '../runtime.js';
import { settingKeys } from '../settings-keys.js';
import { armShutdownDeadline, type ShutdownOutcome, shutdownOutcome, untilDeadline } from '../shutdown.js';
import { removeServeAddress, writeServeAddress } from '../serve-address.js';
import { serveWithWorkers } from '../cluster.js';
import { tlsManager } from './certs.js';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('start the gateway (port from --port, APIGATE_PORT, or 8080)')
    .option('--port <port>', 'port to listen on')
    .option('--host <host>', 'address to bind', process.env.APIGATE_HOST ?? '0.0.0.0')
    .option('--workers <n>', 'worker processes sharing the listener: a number or auto (= cores); default APIGATE_WORKERS or 1')
    .option('--allow-memory-per-worker', 'run several workers on the memory cache/queue anyway (limits and queues per worker)')
    .action(async (o: { port?: string; host: string; workers?: string; allowMemoryPerWorker?: boolean }) => {
      const logger = createLogger({ name: 'apigate' });
      const port = o.port !== undefined ? parsePort(o.port, '--port') : parsePort(process.env.APIGATE_PORT ?? '8080', 'APIGATE_PORT');
      // With --workers N > 1 this process only supervises the workers (src/cluster.ts); each worker runs the rest.
      if (await serveWithWorkers(o, logger)) return;
      const rt = await openRuntime({ logger });
      let kernel: Awaited<ReturnType<typeof startKernel>> | undefined;
      let delivery: Delivery | undefined;
      let gateway: Gateway | undefined;
      let payments: Worker | undefined;
      let billingJobs: BillingJobs | undefined;
      // Closing order: stop taking requests first (the caller closes the server), then get every
      // metered request into the store (its quota emails are queued by then), then delivery,
      // then the providers, then the store.
      // With a deadline (shutdown), no step waits past it; returns what could not be flushed or was left behind.
      const closeAll = async (deadline?: number): Promise<ShutdownOutcome> => {
        const abandoned: string[] = [];
        const step = (what: string, fn: () => Promise<unknown>, by = deadline) => untilDeadline(by, what, fn, abandoned);
        // Before the gateway: the payment worker emits through its webhook dispatcher. Events still
        // queued stay queued (a durable queue keeps them for the next start). They get a fifth of
        // the time left, so a hung queue leaves the gateway time to spool the metered usage.
        const early = deadline === undefined ? undefined : Date.now() + (deadline - Date.now()) / 5;
        await step('billing jobs', async () => billingJobs?.close(), early);
        await step(
          'payment worker',
          async () => payments?.close().catch((err: unknown) => logger.warn(`cannot stop the payment worker: ${describeError(err)}`)),
          early,
        );
        // The rest stops waiting a little before the deadline, so the report below still gets written.
        const soft = deadline === undefined ? undefined : deadline - Math.min(500, Math.max(0, deadline - Date.now()) / 10);
        const report = await gateway?.close(soft === undefined ? {} : { deadline: soft });
        await step('delivery workers', async () => delivery?.close(), soft);
        await step('providers', async () => kernel?.close(), soft);
        await rt.close();
        return shutdownOutcome(report, abandoned);
      };
      let shutdownMs = DEFAULT_SHUTDOWN_TIMEOUT_MS;
      try {
        assertNoPluginProblems(rt.catalog);
        shutdownMs = readShutdownTimeout(process.env, rt.store.settings);
        kernel = await startKernel(rt);
        // The outbox's workers and the alert router for notification.events.
        delivery = startDelivery({ kernel, settings: rt.store.settings, logger });
        // The proxy path: keys, limits, metering into the store, quota notices, outbound webhooks.
        const outbox = delivery?.outbox;
        const retry = readDeliverySettings(rt.store.settings);
        gateway = await startGateway({
          kernel,
          store: rt.store,
          dataDir: rt.dataDir,
          logger,
          sendEmail: outbox ? (msg, opts) => outbox.sendEmail(msg, opts) : undefined,
          webhookRetry: { attempts: retry.attempts, backoffMs: retry.backoffMs },
        });
        // Payment webhooks are verified and queued by the HTTP app; this worker applies them.
        const pay = selectedPayment(kernel);
        const queue = kernel.tryGet('queue');
        if (pay && queue) {
          // It first re-queues what an earlier run left queued in the inbox (a memory queue loses its jobs on exit).
          payments = startPaymentWorker(queue, { store: rt.store, logger, webhooks: gateway.webhooks, providerName: pay.name, payment: pay.payment });
          logger.info({ provider: pay.name, path: pay.path }, `payment webhooks: POST ${pay.path}`);
          if (pay.name === 'dummy' && !isLoopbackHost(o.host)) {
            logger.warn(
              { provider: 'dummy', host: o.host },
              `WARNING: the DUMMY payment provider is selected while apigate binds ${o.host}, a non-loopback address: it takes no money, and with its default secret anyone could forge its webhooks (its webhook route is then refused). Select a real payment provider (PAYMENT_PROVIDER) or bind 127.0.0.1.`,
            );
          }
        }
      } catch (err) {
        await closeAll();
        throw err;
      }
      // Checkout, change and cancel (portal, admin API), plus plan price sync, reconciliation and overage reports.
      const billing = customerBillingFor(kernel, { store: rt.store, logger });
      billingJobs = startBillingJobs({ kernel, store: rt.store, logger, billing });
      const k = kernel;
      const gw = gateway;
      k.events.on('provider.error', (e) => logger.warn({ event: e }, `provider error: ${e.message}`));
      const pageSettingKeys = settingKeys((await loadAllDefinitions(rt.catalog)).defs);
      // Portal emails (verification, password reset) go through the same outbox as everything else.
      const app = createHttpApp({
        kernel: k,
        store: rt.store,
        logger,
        gatewayHealth: () => gw.health(),
        ...(delivery ? { outbox: delivery.outbox } : {}),
        billing,
        // The dummy payment webhook is served on a loopback bind only (unless it has its own secret).
        bindHost: o.host,
        // The customer portal and admin dashboard pages; the settings page accepts what `apigate settings set` does.
        pages: (a) =>
          mountWebPages(a, { store: rt.store, logger, kernel: k, adminToken: process.env[ADMIN_TOKEN_ENV]?.trim(), webhooks: gw.webhooks, settingKeys: pageSettingKeys }),
      });
      // In-flight requests get half the shutdown time; the rest is for usage, delivery and providers.
      const closeTimeoutMs = Math.round(shutdownMs / 2);
      const server = await startServer({ app, port, host: o.host, front: gw.front, closeTimeoutMs }).catch(async (err: unknown) => {
        await closeAll();
        throw err;
      });
      // The bound address too: in a container, 127.0.0.1 alone would read as "not reachable from outside".
      const bound = `${o.host.includes(':') ? `[${o.host}]` : o.host}:${server.port}`;
      logger.info({ url: server.url, bound, dataDir: rt.dataDir }, `apigate listening on ${server.url} (bound to ${bound})`);
      writeServeAddress(rt.dataDir, server.url);

      // HTTPS only when a TLS provider is enabled and names are configured. Certificates are
      // ordered after the HTTP listener is up, since it answers the CA's HTTP-01 challenges.
      const tlsDomains = parseTlsDomains(process.env.APIGATE_TLS_DOMAINS);
      let https: RunningServer | undefined;
      let renewals: { stop(): Promise<void> } | undefined;
      if (k.tryGet('tls') && tlsDomains.length > 0) {
        try {
          const httpsPort = parsePort(process.env.APIGATE_HTTPS_PORT ?? '8443', 'APIGATE_HTTPS_PORT');
          const manager = tlsManager(k, rt.store, logger);
          await manager.ensure(tlsDomains, (line) => logger.info(line));
          renewals = manager.startRenewals(tlsDomains);
          https = await startServer({ app, port: httpsPort, host: o.host, front: gw.front, closeTimeoutMs, tls: { SNICallback: manager.sniCallback } });
          logger.info({ url: https.url, certificates: (await manager.certificates.all()).length }, `apigate listening on ${https.url}`);
        } catch (err) {
          await renewals?.stop();
          await server.close();
          await closeAll();
          throw err;
        }
      }

      // The action resolves only after a graceful shutdown, so the CLI exits when serving ends.
      await new Promise<void>((resolve) => {
        let stopping = false;
        const stop = async (signal: string) => {
          if (stopping) return;
          stopping = true;
          logger.info({ signal, timeoutMs: shutdownMs }, `shutting down (deadline ${shutdownMs} ms)`);
          // Past the deadline the process spools the metered usage and exits 1, whatever still hangs.
          let phase = 'the listeners to close';
          const watch = armShutdownDeadline({ timeoutMs: shutdownMs, logger, spool: () => gw.spoolNow(), current: () => phase });
          await renewals?.stop();
          await Promise.all([server.close(), https?.close()]);
          phase = 'the gateway, delivery and providers to close';
          const { problems, warnings } = await closeAll(watch.deadline);
          removeServeAddress(rt.dataDir);
          for (const line of warnings) logger.warn(`shutdown: ${line}`);
          for (const line of problems) logger.error(`shutdown: ${line}`);
          if (problems.length > 0) {
            logger.error(`stopped with ${problems.length} problem(s); exit status 1`);
            process.exitCode = 1;
          } else logger.info('stopped');
          watch.finish(problems.length > 0 ? 1 : 0);
          resolve();
        };
        process.once('SIGTERM', () => void stop('SIGTERM'));
        process.once('SIGINT', () => void stop('SIGINT'));
      });
    });
}
