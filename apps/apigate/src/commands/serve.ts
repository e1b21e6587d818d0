import { createHttpApp, type Delivery, startDelivery, startServer } from '@apigate/gateway';
import { createLogger } from '@apigate/kernel';
import type { Command } from 'commander';
import { assertNoPluginProblems, openRuntime, parsePort, startKernel } from '../runtime.js';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('start the gateway (port from --port, APIGATE_PORT, or 8080)')
    .option('--port <port>', 'port to listen on')
    .option('--host <host>', 'address to bind', process.env.APIGATE_HOST ?? '0.0.0.0')
    .action(async (o: { port?: string; host: string }) => {
      const logger = createLogger({ name: 'apigate' });
      const port = o.port !== undefined ? parsePort(o.port, '--port') : parsePort(process.env.APIGATE_PORT ?? '8080', 'APIGATE_PORT');
      const rt = await openRuntime({ logger });
      let kernel: Awaited<ReturnType<typeof startKernel>> | undefined;
      let delivery: Delivery | undefined;
      try {
        assertNoPluginProblems(rt.catalog);
        kernel = await startKernel(rt);
        // The outbox's workers and the alert router for notification.events.
        delivery = startDelivery({ kernel, settings: rt.store.settings, logger });
      } catch (err) {
        await kernel?.close();
        await rt.close();
        throw err;
      }
      const k = kernel;
      k.events.on('provider.error', (e) => logger.warn({ event: e }, `provider error: ${e.message}`));
      const app = createHttpApp({ kernel: k, store: rt.store, logger });
      const server = await startServer({ app, port, host: o.host });
      logger.info({ url: server.url, dataDir: rt.dataDir }, `apigate listening on ${server.url}`);

      // The action resolves only after a graceful shutdown, so the CLI exits when serving ends.
      await new Promise<void>((resolve) => {
        let stopping = false;
        const stop = async (signal: string) => {
          if (stopping) return;
          stopping = true;
          logger.info({ signal }, 'shutting down');
          await server.close();
          await delivery?.close();
          await k.close();
          await rt.close();
          logger.info('stopped');
          resolve();
        };
        process.once('SIGTERM', () => void stop('SIGTERM'));
        process.once('SIGINT', () => void stop('SIGINT'));
      });
    });
}
