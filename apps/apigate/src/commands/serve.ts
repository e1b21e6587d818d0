import {
  ADMIN_TOKEN_ENV,
  type ApiGate,
  parseTlsDomains,
  readShutdownTimeout,
  type RunningServer,
  startApiGate,
  startServer,
} from '@apigate/gateway';
import { createLogger, type Kernel, type Logger } from '@apigate/kernel';
import { mountWebPages } from '@apigate/web';
import type { Command } from 'commander';
import { serveWithWorkers } from '../cluster.js';
import { assertNoPluginProblems, loadAllDefinitions, openRuntime, parsePort, type Runtime, startKernel } from '../runtime.js';
import { removeServeAddress, writeServeAddress } from '../serve-address.js';
import { settingKeys } from '../settings-keys.js';
import { armShutdownDeadline } from '../shutdown.js';
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
      let kernel: Kernel;
      let apigate: ApiGate;
      let shutdownMs: number;
      try {
        assertNoPluginProblems(rt.catalog);
        shutdownMs = readShutdownTimeout(process.env, rt.store.settings);
        kernel = await startKernel(rt);
        // The settings page accepts what `apigate settings set` does. Listing the keys imports every
        // installed provider (SDKs for payment, storage, TLS...): done when the page first needs them,
        // so a gateway serves with only its selected providers loaded (less heap, a faster start).
        const pageSettingKeys = async () => settingKeys((await loadAllDefinitions(rt.catalog)).defs);
        const adminToken = process.env[ADMIN_TOKEN_ENV]?.trim();
        // startApiGate closes the kernel itself if it fails.
        apigate = await startApiGate({
          kernel,
          store: rt.store,
          dataDir: rt.dataDir,
          logger,
          bindHost: o.host,
          // The customer portal and admin dashboard pages.
          pages: (app, { webhooks }) =>
            mountWebPages(app, { store: rt.store, logger, kernel, adminToken, webhooks, settingKeys: pageSettingKeys }),
        });
      } catch (err) {
        await rt.close();
        throw err;
      }

      // In-flight requests get half the shutdown time; the rest is for usage, delivery and providers.
      const listen = { app: apigate.app, host: o.host, front: apigate.front, closeTimeoutMs: Math.round(shutdownMs / 2) };
      let servers: RunningServer[] = [];
      let renewals: { stop(): Promise<void> } | undefined;
      try {
        const server = await startServer({ ...listen, port });
        servers = [server];
        // The bound address too: in a container, 127.0.0.1 alone would read as "not reachable from outside".
        const bound = `${o.host.includes(':') ? `[${o.host}]` : o.host}:${server.port}`;
        logger.info({ url: server.url, bound, dataDir: rt.dataDir }, `apigate listening on ${server.url} (bound to ${bound})`);
        writeServeAddress(rt.dataDir, server.url);
        const https = await startHttps(kernel, rt, listen, logger);
        if (https) {
          servers.push(https.server);
          renewals = https.renewals;
        }
      } catch (err) {
        await renewals?.stop();
        await Promise.all(servers.map((s) => s.close()));
        await apigate.close();
        await rt.close();
        throw err;
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
          const watch = armShutdownDeadline({
            timeoutMs: shutdownMs,
            logger,
            spool: () => apigate.gateway.spoolNow(),
            current: () => phase,
          });
          await renewals?.stop();
          await Promise.all(servers.map((s) => s.close()));
          phase = 'the gateway, delivery and providers to close';
          const { problems, warnings } = await apigate.close({ deadline: watch.deadline });
          await rt.close();
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

/**
 * HTTPS only when a TLS provider is enabled and names are configured (APIGATE_TLS_DOMAINS).
 * Certificates are ordered after the HTTP listener is up, since it answers the CA's HTTP-01 challenges.
 */
async function startHttps(
  kernel: Kernel,
  rt: Runtime,
  listen: Omit<Parameters<typeof startServer>[0], 'port' | 'tls'>,
  logger: Logger,
): Promise<{ server: RunningServer; renewals: { stop(): Promise<void> } } | undefined> {
  const tlsDomains = parseTlsDomains(process.env.APIGATE_TLS_DOMAINS);
  if (!kernel.tryGet('tls') || tlsDomains.length === 0) return undefined;
  const httpsPort = parsePort(process.env.APIGATE_HTTPS_PORT ?? '8443', 'APIGATE_HTTPS_PORT');
  const manager = tlsManager(kernel, rt.store, logger);
  await manager.ensure(tlsDomains, (line) => logger.info(line));
  const renewals = manager.startRenewals(tlsDomains);
  try {
    const server = await startServer({ ...listen, port: httpsPort, tls: { SNICallback: manager.sniCallback } });
    logger.info({ url: server.url, certificates: (await manager.certificates.all()).length }, `apigate listening on ${server.url}`);
    return { server, renewals };
  } catch (err) {
    await renewals.stop();
    throw err;
  }
}
