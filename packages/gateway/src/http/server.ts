import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type ServerOptions as HttpsOptions } from 'node:https';
import type { AddressInfo } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import { ApigateError } from '@apigate/kernel';
import type { Hono } from 'hono';

/** How often close() drops keep-alive sockets that went idle since it started. */
const CLOSE_POLL_MS = 10;

export interface StartServerOptions {
  app: Hono;
  /** 0 picks a free port (tests). */
  port: number;
  /** Interface to bind; default all interfaces. */
  host?: string;
  /** How long close() lets in-flight requests finish before cutting connections; default 10 s. */
  closeTimeoutMs?: number;
  /**
   * Sees every request before the app, on Node's own request and response (no fetch-style
   * objects): returns true when it answered (the proxy path), false to hand over to the app.
   */
  front?: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** Serve HTTPS with these options (e.g. an SNICallback picking stored certificates) instead of HTTP. */
  tls?: HttpsOptions;
}

export interface RunningServer {
  /** Where a client on this machine reaches the server, e.g. http://127.0.0.1:8080. */
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Listens and resolves once the port is bound; a bind failure (port in use...) rejects with one line. */
export async function startServer(opts: StartServerOptions): Promise<RunningServer> {
  const app = getRequestListener(opts.app.fetch);
  const front = opts.front;
  const handler = front ? (req: IncomingMessage, res: ServerResponse) => void (front(req, res) || app(req, res)) : app;
  const server: Server = opts.tls ? createHttpsServer(opts.tls, handler) : createServer(handler);
  let closing: Promise<void> | undefined;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const where = `${opts.host ?? '*'}:${opts.port}`;
      const why = err.code === 'EADDRINUSE' ? 'the port is already in use by another process; stop it or choose another port' : err.message;
      reject(new ApigateError('LISTEN_FAILED', `cannot listen on ${where}: ${why}`, { cause: err }));
    };
    server.once('error', onError);
    server.listen(opts.port, opts.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  return {
    url: `${opts.tls ? 'https' : 'http'}://${urlHost(opts.host)}:${addr.port}`,
    port: addr.port,
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        // Stop accepting, let in-flight requests finish, drop idle keep-alive sockets now
        // and any stragglers after the grace period.
        const timer = setTimeout(() => server.closeAllConnections(), opts.closeTimeoutMs ?? 10_000);
        timer.unref();
        // A keep-alive socket whose last response ends during shutdown would otherwise hold close()
        // until its idle timeout: drop idle ones every few ms while closing. (Polled, not a `finish`
        // listener on every response: that cost each proxied request a closure and a listener.)
        const idle = setInterval(() => server.closeIdleConnections(), CLOSE_POLL_MS);
        idle.unref();
        server.close((err) => {
          clearTimeout(timer);
          clearInterval(idle);
          if (err) reject(err);
          else resolve();
        });
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}

function urlHost(host: string | undefined): string {
  if (!host || host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}
