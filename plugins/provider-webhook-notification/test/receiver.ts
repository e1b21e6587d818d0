import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Delivery {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The body exactly as it arrived. */
  raw: Buffer;
}

export interface Receiver {
  origin: string;
  /** Every request, any method or path, in arrival order. */
  requests: Delivery[];
  /** POSTs to /hook (answered 204). */
  deliveries: Delivery[];
  /** Called when a request to /held arrives (it is never answered). */
  onHeld?: () => void;
  close(): Promise<void>;
}

/**
 * A webhook receiver on a free port. /hook accepts (204); /fail-500, /ratelimited (429 with
 * Retry-After), /bad (400), /gone (410) and /moved (301) answer as named; /held never answers.
 */
export async function startReceiver(): Promise<Receiver> {
  const r: Receiver = { origin: '', requests: [], deliveries: [], close: async () => {} };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const d: Delivery = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, raw: Buffer.concat(chunks) };
      r.requests.push(d);
      if (req.method === 'HEAD') return res.writeHead(405, { allow: 'POST' }).end();
      switch (d.path) {
        case '/hook':
          r.deliveries.push(d);
          return res.writeHead(204).end();
        case '/fail-500':
          return res.writeHead(500).end('database unavailable');
        case '/ratelimited':
          return res.writeHead(429, { 'retry-after': '12' }).end('slow down');
        case '/bad':
          return res.writeHead(400).end('unknown event type');
        case '/gone':
          return res.writeHead(410).end();
        case '/moved':
          return res.writeHead(301, { location: `${r.origin}/hook` }).end();
        case '/held':
          return r.onHeld?.();
        default:
          return res.writeHead(404).end('not found');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  r.origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  r.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return r;
}
