import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { type AddressInfo, createServer as createNetServer, type Socket } from 'node:net';
import { listenLocally } from './fake-api.js';

/** How the receiver answers the next requests. */
export type ReceiverMode =
  | { kind: 'answer'; status: number; body?: string; headers?: Record<string, string> }
  /** Reads the request, then never answers (the provider's timeout must fire). */
  | { kind: 'hang' }
  /** Reads the request and answers only when `release()` is called (a slow receiver). */
  | { kind: 'hold'; status?: number };

export interface ReceivedRequest {
  method: string;
  /** The path, secret token included. */
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
  /** True once the whole body was read. */
  complete: boolean;
}

export interface TestReceiver {
  /** The URL to give the provider: its last path segment is a secret token, as in a Slack webhook URL. */
  url: string;
  /** The secret part of `url`; it must never show in errors, health or logs. */
  secret: string;
  /** Requests received so far (every method). */
  requests: ReceivedRequest[];
  /** POSTs received so far. */
  posts(): ReceivedRequest[];
  setMode(mode: ReceiverMode): void;
  /** Answers every held request (mode `hold`), with `status` (default 200). */
  release(): void;
  /** Requests being held or hung right now. */
  pending(): number;
  close(): Promise<void>;
}

/**
 * A local HTTP receiver whose answers a test controls: 200 `ok` by default, any status with a body
 * and headers (500, 503, 429 with Retry-After, 400...), a hang that never answers, or a hold that
 * answers on `release()`. Used by the notification suite's failure tests; usable in provider tests.
 */
export async function startTestReceiver(): Promise<TestReceiver> {
  const secret = randomBytes(18).toString('base64url');
  const requests: ReceivedRequest[] = [];
  let mode: ReceiverMode = { kind: 'answer', status: 200, body: 'ok' };
  const held: { res: ServerResponse; status: number }[] = [];
  const hung: ServerResponse[] = [];

  const server = createServer((req, res) => {
    const entry: ReceivedRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: '', complete: false };
    requests.push(entry);
    const current = mode;
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      entry.body += chunk;
    });
    req.on('end', () => {
      entry.complete = true;
      if (current.kind === 'hang') hung.push(res);
      else if (current.kind === 'hold') held.push({ res, status: current.status ?? 200 });
      else {
        res.writeHead(current.status, { 'content-type': 'text/plain', ...current.headers });
        res.end(req.method === 'HEAD' ? undefined : (current.body ?? ''));
      }
    });
  });
  const listening = await listenLocally(server);
  return {
    url: `${listening.url}/hooks/T0TESTKIT/B0TESTKIT/${secret}`,
    secret,
    requests,
    posts: () => requests.filter((r) => r.method === 'POST'),
    setMode(next) {
      mode = next;
    },
    release() {
      for (const { res, status } of held.splice(0)) {
        res.writeHead(status, { 'content-type': 'text/plain' });
        res.end(status < 300 ? 'ok' : 'error');
      }
    },
    pending: () => held.length + hung.length,
    async close() {
      for (const res of [...hung.splice(0), ...held.splice(0).map((h) => h.res)]) res.destroy();
      await listening.close();
    },
  };
}

/** A URL on 127.0.0.1 where nothing listens (the port was just bound and released), with a secret path. */
export async function closedReceiverUrl(): Promise<{ url: string; secret: string }> {
  const server = createServer();
  const { url, close } = await listenLocally(server);
  await close();
  const secret = randomBytes(18).toString('base64url');
  return { url: `${url}/hooks/T0TESTKIT/B0TESTKIT/${secret}`, secret };
}

export interface SilentServer {
  port: number;
  /** Aborts as soon as the first connection arrives. */
  signal: AbortSignal;
  /** Drops the connections it holds and stops listening. */
  close(): Promise<void>;
}

/**
 * A TCP server on 127.0.0.1 that accepts connections and never says a word (no HTTP answer, no SMTP
 * greeting); its `signal` aborts once a connection arrives, to prove a call gives up when its signal
 * aborts while it waits.
 */
export async function startSilentServer(): Promise<SilentServer> {
  const sockets = new Set<Socket>();
  const controller = new AbortController();
  const server = createNetServer((socket) => {
    sockets.add(socket);
    controller.abort();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    signal: controller.signal,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
