import type { ServerResponse } from 'node:http';
import { type ForwarderOptions, type ForwardOptions, type ForwardResult, Forwarder, type ProxyIdentity } from '../../src/proxy/forward.js';
import { sendJsonError } from '../../src/proxy/respond.js';
import { type ProxyRoute, RouteTable } from '../../src/proxy/routes.js';
import { listen } from './http.js';

export const IDENTITY: ProxyIdentity = { userId: 'usr_1', planId: 'pln_pro', keyId: 'key_9' };

/**
 * A minimal gateway front: route lookup, then the real Forwarder over real undici pools.
 * Every settled forward lands in `results` (await `result(n)` for the n-th one).
 */
export async function startGateway(
  routes: ProxyRoute[],
  opts: { forwarder?: ForwarderOptions; identity?: ProxyIdentity; before?: (res: ServerResponse) => void; forward?: ForwardOptions } = {},
) {
  const forwarder = new Forwarder(opts.forwarder);
  const table = new RouteTable(routes);
  const results: ForwardResult[] = [];
  const waiters: { n: number; resolve: (r: ForwardResult) => void }[] = [];
  const srv = await listen((req, res) => {
    const route = table.match(req.url ?? '/');
    if (!route) return sendJsonError(res, 404, 'NOT_FOUND', 'no route');
    opts.before?.(res);
    void forwarder.forward(req, res, route, opts.identity ?? IDENTITY, opts.forward).then((r) => {
      results.push(r);
      for (const w of waiters.filter((w) => w.n === results.length)) w.resolve(r);
    });
  });
  return {
    url: srv.url,
    forwarder,
    results,
    /** Resolves with the n-th forward result (1-based) once it has settled. */
    result(n: number): Promise<ForwardResult> {
      if (results.length >= n) return Promise.resolve(results[n - 1]!);
      return new Promise((resolve) => waiters.push({ n, resolve }));
    },
    async close() {
      await srv.close();
      await forwarder.close();
    },
  };
}
