import { once } from 'node:events';
import http, { type IncomingHttpHeaders, type IncomingMessage, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Listens on a free loopback port; `close` also cuts keep-alive sockets so tests end promptly. */
export async function listen(handler: RequestListener): Promise<{ server: Server; url: string; port: number; close(): Promise<void> }> {
  const server = http.createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A loopback port nobody listens on: bound, then released. */
export async function closedPort(): Promise<number> {
  const s = await listen(() => {});
  await s.close();
  return s.port;
}

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  res: IncomingMessage;
}

/** A plain node:http client call, so tests control the raw request headers exactly. */
export async function call(
  url: string,
  opts: { method?: string; headers?: Record<string, string | string[]>; body?: string | Buffer; agent?: http.Agent } = {},
): Promise<Answer> {
  const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: opts.agent ?? false });
  req.end(opts.body);
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return { status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks), res };
}

export async function readAll(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
