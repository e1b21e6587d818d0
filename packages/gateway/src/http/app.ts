import { describeError, type Kernel, type Logger } from '@apigate/kernel';
import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { Store } from '../store/store.js';

export interface HttpAppOptions {
  kernel: Kernel;
  store: Store;
  logger: Logger;
}

/** The JSON body of every error answer. */
export interface ErrorBody {
  error: { code: string; message: string };
}

/**
 * The gateway's HTTP app. Routes added later (admin API, portal, proxy) go on this app or
 * on sub-apps mounted here, and share its JSON 404 and 500 answers.
 */
export function createHttpApp(opts: HttpAppOptions): Hono {
  const { kernel, logger } = opts;
  const app = new Hono();

  // The spec's shape, straight from the kernel; 503 lets load balancers take an unhealthy instance out.
  app.get('/admin/health', async (c) => {
    const report = await kernel.health();
    c.header('Cache-Control', 'no-store');
    return c.json(report, report.status === 'unhealthy' ? 503 : 200);
  });

  app.notFound((c) => c.json<ErrorBody>({ error: { code: 'NOT_FOUND', message: `no route for ${c.req.method} ${c.req.path}` } }, 404));

  app.onError((err, c) => {
    if (err instanceof HTTPException && err.status < 500) {
      return c.json<ErrorBody>({ error: { code: 'HTTP_ERROR', message: err.message || 'bad request' } }, err.status);
    }
    // Details go to the log only: a message may carry a value the caller should not see.
    logger.error({ method: c.req.method, path: c.req.path, code: (err as { code?: string }).code }, `request failed: ${describeError(err)}`);
    return c.json<ErrorBody>({ error: { code: 'INTERNAL', message: 'internal server error' } }, 500);
  });

  return app;
}
