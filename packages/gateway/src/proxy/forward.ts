import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Logger } from '@apigate/kernel';
import { type Dispatcher, Pool } from 'undici';
import { sendJsonError } from './respond.js';
import { type CompiledRoute, upstreamPath } from './routes.js';

/** Who the request is for; injected upstream as X-User-ID, X-Plan-ID and X-Key-ID. */
export interface ProxyIdentity {
  userId: string;
  planId: string;
  keyId: string;
  /**
   * The request header that carried the customer's API key (lower case, e.g. `x-api-key` or
   * `authorization`): dropped, so the upstream never sees the key.
   */
  credentialHeader?: string;
}

export type ForwardOutcome = 'ok' | 'method_not_allowed' | 'timeout' | 'unavailable' | 'aborted' | 'upstream_error';

/** What metering needs to know about one forwarded request. */
export interface ForwardResult {
  /**
   * The status the client got; 499 when the client went away first (nginx's convention); 502 when
   * the upstream failed mid-body (the client saw the upstream's status, then a cut connection), so
   * metering counts it as the error it was.
   */
  status: number;
  outcome: ForwardOutcome;
  /** Request body bytes relayed upstream. */
  bytesIn: number;
  /** Response body bytes relayed to the client. */
  bytesOut: number;
  /** From arrival (`arrivedAt` of the options, else the call) to the last byte of the answer, ms. */
  latencyMs: number;
  /**
   * The gateway's own share of latencyMs, ms: arrival to the request handed to the upstream's
   * connection, plus the upstream's response head to the client's head written (or, when the
   * gateway answers itself after an upstream failure, to that answer written). The upstream's
   * wait and the bodies' pace are left out; an answer made without the upstream (405, 503) counts whole.
   */
  overheadMs: number;
}

/** Per-request options of `forward`. */
export interface ForwardOptions {
  /**
   * `performance.now()` when the request arrived: latency and overhead then count the caller's
   * work before the call too (key check, limits).
   */
  arrivedAt?: number;
  /**
   * Headers (lower-case names) put on whatever answer the client gets (the upstream's, or the
   * gateway's own 502/503/504), winning over the upstream's of the same name: e.g. the
   * X-RateLimit-* headers. Cheaper than `res.setHeader` before the call.
   */
  headers?: Record<string, string>;
}

export interface ForwarderOptions {
  /** Most sockets kept per upstream origin; requests beyond wait in the pool's queue. Default 128. */
  connectionsPerOrigin?: number;
  /** How long an idle upstream socket is kept for reuse. Default 4000 ms. */
  keepAliveTimeoutMs?: number;
  /** TCP/TLS connect deadline; hitting it answers 504. Default 10000 ms. */
  connectTimeoutMs?: number;
  /** Upstream timeout for routes without their own. Default 30000 ms. */
  defaultTimeoutMs?: number;
  /**
   * Keep a client's X-Forwarded-Proto and X-Forwarded-Host (set this only when a trusted
   * load balancer sits in front). X-Forwarded-For is always appended to, as nginx does.
   */
  trustProxy?: boolean;
  /** Upstream failures (502/504) are logged here at warn level. */
  logger?: Logger;
}

// RFC 9110 7.6.1 hop-by-hop fields, plus what undici must set itself (host, expect) and what the
// gateway sets (identity, X-Forwarded-*): client copies of those never reach the upstream.
const HOP_BY_HOP = ['connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade'];
const IDENTITY = ['x-user-id', 'x-plan-id', 'x-key-id'];
const FORWARDED = ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host'];
const REQUEST_DROP = new Set([...HOP_BY_HOP, ...IDENTITY, ...FORWARDED, 'host', 'expect']);
/**
 * `X_User_ID` and the like: CGI-style stacks (PHP, WSGI, Rack, many proxies) map `_` and `-` to the
 * same variable, so a client copy with underscores would pass for the injected header. Dropped.
 */
const LOOKALIKES = new Set([...IDENTITY, ...FORWARDED].map((h) => h.replaceAll('-', '_')));
const RESPONSE_DROP = new Set(HOP_BY_HOP);
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']);

/** Extra field names a Connection header declares hop-by-hop (`Connection: close, X-Foo`). */
function connectionTokens(value: string | string[] | undefined): Set<string> | null {
  if (!value || value === 'keep-alive' || value === 'close') return null; // the usual values, without a split
  let tokens: Set<string> | null = null;
  for (const part of (Array.isArray(value) ? value.join(',') : value).split(',')) {
    const t = part.trim().toLowerCase();
    if (t && t !== 'close' && t !== 'keep-alive') (tokens ??= new Set()).add(t);
  }
  return tokens;
}

interface RequestHead {
  headers: string[];
  hasBody: boolean;
}

/** One pass over the raw headers: keeps case and duplicates, drops hop-by-hop and gateway-owned fields. */
function requestHead(req: IncomingMessage, identity: ProxyIdentity | undefined, trustProxy: boolean): RequestHead {
  const raw = req.rawHeaders;
  const out: string[] = [];
  let connection: string | undefined;
  let forwardedFor: string | undefined;
  let forwardedProto: string | undefined;
  let forwardedHost: string | undefined;
  let host: string | undefined;
  let hasBody = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const lower = name.toLowerCase();
    if (REQUEST_DROP.has(lower)) {
      if (lower === 'connection') connection = connection ? `${connection},${value}` : value;
      else if (lower === 'x-forwarded-for') forwardedFor = forwardedFor ? `${forwardedFor}, ${value}` : value;
      else if (lower === 'x-forwarded-proto') forwardedProto ??= value;
      else if (lower === 'x-forwarded-host') forwardedHost ??= value;
      else if (lower === 'host') host = value;
      else if (lower === 'transfer-encoding') hasBody = true;
      continue;
    }
    if (lower.startsWith('proxy-') || lower === identity?.credentialHeader) continue;
    if (lower.includes('_') && LOOKALIKES.has(lower.replaceAll('-', '_'))) continue;
    if (lower === 'content-length' && value !== '0') hasBody = true;
    out.push(name, value);
  }
  const tokens = connectionTokens(connection);
  if (tokens) {
    for (let i = out.length - 2; i >= 0; i -= 2) if (tokens.has(out[i]!.toLowerCase())) out.splice(i, 2);
  }
  const ip = req.socket.remoteAddress;
  if (ip) out.push('x-forwarded-for', forwardedFor ? `${forwardedFor}, ${ip}` : ip);
  else if (forwardedFor) out.push('x-forwarded-for', forwardedFor);
  out.push('x-forwarded-proto', (trustProxy && forwardedProto) || ((req.socket as TLSSocket).encrypted ? 'https' : 'http'));
  const fwdHost = (trustProxy && forwardedHost) || host;
  if (fwdHost) out.push('x-forwarded-host', fwdHost);
  if (identity) out.push('x-user-id', identity.userId, 'x-plan-id', identity.planId, 'x-key-id', identity.keyId);
  return { headers: out, hasBody };
}

/**
 * The upstream's headers minus hop-by-hop fields and minus any the gateway sets (`extra`, or set
 * on `res` before: rate-limit headers win), plus `extra`.
 */
function responseHeaders(
  headers: IncomingHttpHeaders,
  res: ServerResponse,
  extra: Record<string, string> | undefined,
): OutgoingHttpHeaders {
  const tokens = connectionTokens(headers.connection);
  const preset = res.getHeaderNames(); // [] without an allocation of note when nothing was set
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) {
    if (RESPONSE_DROP.has(name) || name.startsWith('proxy-') || tokens?.has(name)) continue;
    if (preset.length > 0 && preset.includes(name)) continue;
    if (extra !== undefined && Object.hasOwn(extra, name)) continue;
    const value = headers[name];
    if (value !== undefined) out[name] = value;
  }
  if (extra !== undefined) for (const name in extra) out[name] = extra[name];
  return out;
}

/**
 * Relays the client's body and counts it. An iterator that does not destroy the request on
 * return keeps the client's socket alive when the upstream fails mid-upload, so the client
 * still gets its 502/504.
 */
async function* relayBody(req: IncomingMessage, counter: { bytesIn: number }): AsyncGenerator<Buffer> {
  for await (const chunk of req.iterator({ destroyOnReturn: false })) {
    counter.bytesIn += (chunk as Buffer).length;
    yield chunk as Buffer;
  }
}

class ClientAbortError extends Error {
  override readonly name = 'AbortError';
  readonly code = 'CLIENT_ABORTED';
  constructor() {
    super('the client closed the connection');
  }
}

/** Streams the upstream answer into the Node response with backpressure, and settles once. */
class ForwardHandler implements Dispatcher.DispatchHandler {
  #controller: Dispatcher.DispatchController | null = null;
  #clientGone = false;
  #status = 0;
  #bytesOut = 0;
  #settled = false;
  /** The gateway's own time so far (see ForwardResult.overheadMs). */
  overheadMs = 0;
  /** Request body bytes relayed so far (relayBody counts them here). */
  bytesIn = 0;

  constructor(
    private readonly res: ServerResponse,
    private readonly route: CompiledRoute,
    private readonly timeoutMs: number,
    private readonly started: number,
    private readonly logger: Logger | undefined,
    private readonly extra: Record<string, string> | undefined,
    private readonly done: (r: ForwardResult) => void,
  ) {
    res.on('close', this.#onClientClose); // removed when settled
  }

  // A response closed before it finished means the client went away: cancel the upstream request.
  #onClientClose = (): void => {
    if (this.res.writableFinished) return;
    this.#clientGone = true;
    this.#controller?.abort(new ClientAbortError());
  };

  #settle(outcome: ForwardOutcome, status: number): void {
    if (this.#settled) return;
    this.#settled = true;
    this.res.off('close', this.#onClientClose);
    this.done({
      status,
      outcome,
      bytesIn: this.bytesIn,
      bytesOut: this.#bytesOut,
      latencyMs: performance.now() - this.started,
      overheadMs: this.overheadMs,
    });
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#clientGone) controller.abort(new ClientAbortError());
  }

  onResponseStart(_c: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    if (statusCode < 200) return; // 1xx: informational, the final answer follows
    const t = performance.now();
    this.#status = statusCode;
    const out = responseHeaders(headers, this.res, this.extra);
    if (statusMessage) this.res.writeHead(statusCode, statusMessage, out);
    else this.res.writeHead(statusCode, out);
    this.overheadMs += performance.now() - t;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#bytesOut += chunk.length;
    if (!this.res.write(chunk) && !controller.paused) {
      controller.pause();
      this.res.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(): void {
    this.res.end();
    this.#settle('ok', this.#status);
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    if (this.#clientGone) {
      this.#settle('aborted', 499);
      return;
    }
    const code = (err as { code?: string }).code ?? '';
    if (this.res.headersSent) {
      // Mid-body: the status is out, so the only honest signal left is a cut connection.
      this.res.destroy(err);
      this.logger?.warn({ route: this.route.id, code, status: this.#status }, `upstream failed mid-response: ${err.message}`);
      this.#settle('upstream_error', 502);
      return;
    }
    const t = performance.now();
    if (TIMEOUT_CODES.has(code)) {
      this.logger?.warn({ route: this.route.id, code }, `upstream timed out after ${this.timeoutMs} ms`);
      sendJsonError(this.res, 504, 'UPSTREAM_TIMEOUT', `the upstream did not answer within ${this.timeoutMs} ms`, this.extra);
      this.overheadMs += performance.now() - t;
      this.#settle('timeout', 504);
      return;
    }
    this.logger?.warn({ route: this.route.id, code }, `upstream unavailable: ${err.message}`);
    const why =
      code === 'ECONNREFUSED'
        ? 'the upstream refused the connection'
        : code === 'ENOTFOUND' || code === 'EAI_AGAIN'
          ? 'the upstream host could not be resolved'
          : 'the upstream closed the connection without an answer';
    sendJsonError(this.res, 502, 'UPSTREAM_UNAVAILABLE', why, this.extra);
    this.overheadMs += performance.now() - t;
    this.#settle('unavailable', 502);
  }
}

/** The result of an answer the gateway made without the upstream: all of its time is overhead. */
function answered(status: number, outcome: ForwardOutcome, started: number): ForwardResult {
  const ms = performance.now() - started;
  return { status, outcome, bytesIn: 0, bytesOut: 0, latencyMs: ms, overheadMs: ms };
}

/**
 * Forwards Node requests to upstreams over undici connection pools (one keep-alive pool per
 * origin). Works on IncomingMessage/ServerResponse rather than fetch-style Request/Response:
 * bodies stream both ways without web-stream conversion. From hono on @hono/node-server, pass
 * `c.env.incoming` and `c.env.outgoing` and return `RESPONSE_ALREADY_SENT`.
 */
export class Forwarder {
  readonly #pools = new Map<string, Pool>();
  readonly #opts: Required<Omit<ForwarderOptions, 'logger'>> & { logger: Logger | undefined };
  #closed = false;

  constructor(opts: ForwarderOptions = {}) {
    this.#opts = {
      connectionsPerOrigin: opts.connectionsPerOrigin ?? 128,
      keepAliveTimeoutMs: opts.keepAliveTimeoutMs ?? 4_000,
      connectTimeoutMs: opts.connectTimeoutMs ?? 10_000,
      defaultTimeoutMs: opts.defaultTimeoutMs ?? 30_000,
      trustProxy: opts.trustProxy ?? false,
      logger: opts.logger,
    };
  }

  #pool(origin: string): Pool {
    let pool = this.#pools.get(origin);
    if (!pool) {
      pool = new Pool(origin, {
        connections: this.#opts.connectionsPerOrigin,
        keepAliveTimeout: this.#opts.keepAliveTimeoutMs,
        connect: { timeout: this.#opts.connectTimeoutMs },
      });
      this.#pools.set(origin, pool);
    }
    return pool;
  }

  /**
   * Sends `req` to the route's upstream and streams the answer into `res`. Always resolves
   * (never rejects): upstream failures become 502/504 JSON answers and are reported in the result.
   */
  forward(
    req: IncomingMessage,
    res: ServerResponse,
    route: CompiledRoute,
    identity?: ProxyIdentity,
    opts?: ForwardOptions,
  ): Promise<ForwardResult> {
    return new Promise<ForwardResult>((resolve) => this.forwardThen(req, res, route, identity, opts, resolve));
  }

  /**
   * `forward` with a callback instead of a promise (the gateway's hot path: one promise less a
   * request). `done` is called exactly once, possibly before this returns; never throws.
   */
  forwardThen(
    req: IncomingMessage,
    res: ServerResponse,
    route: CompiledRoute,
    identity: ProxyIdentity | undefined,
    opts: ForwardOptions | undefined,
    done: (r: ForwardResult) => void,
  ): void {
    const started = opts?.arrivedAt ?? performance.now();
    const extra = opts?.headers;
    const method = req.method ?? 'GET';
    if (route.methods && !route.methods.has(method)) {
      sendJsonError(
        res,
        405,
        'METHOD_NOT_ALLOWED',
        `${method} is not allowed on this route`,
        extra ? { ...extra, allow: route.allow } : { allow: route.allow },
      );
      done(answered(405, 'method_not_allowed', started));
      return;
    }
    if (res.destroyed) {
      done({ status: 499, outcome: 'aborted', bytesIn: 0, bytesOut: 0, latencyMs: 0, overheadMs: 0 });
      return;
    }
    if (this.#closed) {
      sendJsonError(res, 503, 'SHUTTING_DOWN', 'the gateway is shutting down; retry shortly', extra);
      done(answered(503, 'unavailable', started));
      return;
    }
    const timeoutMs = route.timeoutMs ?? this.#opts.defaultTimeoutMs;
    const handler = new ForwardHandler(res, route, timeoutMs, started, this.#opts.logger, extra, done);
    const head = requestHead(req, identity, this.#opts.trustProxy);
    this.#pool(route.origin).dispatch(
      {
        path: upstreamPath(route, req.url ?? '/'),
        method: method as Dispatcher.HttpMethod,
        headers: head.headers,
        // undici takes async iterables at run time; its DispatchOptions type lists only streams.
        body: head.hasBody ? (relayBody(req, handler) as unknown as Readable) : null,
        // Headers timeout restarts on every body chunk written, so a slow upload is not a timeout.
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      },
      handler,
    );
    // The request is on an upstream connection (written, when one was free) or queued for one.
    handler.overheadMs += performance.now() - started;
  }

  /** Origins with an open pool, and each pool's counters (for health and benchmarks). */
  stats(): Record<string, { connected: number; free: number; pending: number; running: number; queued: number }> {
    const out: ReturnType<Forwarder['stats']> = {};
    for (const [origin, pool] of this.#pools) {
      const s = pool.stats;
      out[origin] = { connected: s.connected, free: s.free, pending: s.pending, running: s.running, queued: s.queued };
    }
    return out;
  }

  /** Closes every pool after its in-flight requests finish. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((p) => p.close()));
  }
}
