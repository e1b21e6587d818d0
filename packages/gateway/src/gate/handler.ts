import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Logger } from '@apigate/kernel';
import { RESERVED_PREFIXES } from '../domain/routes.js';
import type { KeyAuthRecord } from '../domain/keys.js';
import type { Plan } from '../domain/plans.js';
import type { QuotaCounter, QuotaResult } from '../limits/quota.js';
import { type RateLimiter, type RateLimitResult, type RateLimitWaiter, rateLimitHeaders } from '../limits/rate-limit.js';
import { sendQuotaExceeded, sendRateLimited } from '../limits/responses.js';
import type { UsageRecorder } from '../metering/recorder.js';
import type { Forwarder } from '../proxy/forward.js';
import { normalizeTarget } from '../proxy/path.js';
import { sendJsonError } from '../proxy/respond.js';
import { type CompiledRoute, underPrefix } from '../proxy/routes.js';
import type { GateCatalog } from './catalog.js';
import type { QuotaNotices } from './notices.js';

/** Paths the gateway answers itself (admin API, portal, well-known files, inbound provider webhooks): never proxied. */
export const GATEWAY_PREFIXES = RESERVED_PREFIXES;

/** Whether a request target belongs to the gateway's own app rather than the proxy. */
export function ownedByGateway(target: string): boolean {
  for (const p of GATEWAY_PREFIXES) {
    if (target.startsWith(p)) {
      const c = target.charCodeAt(p.length);
      if (Number.isNaN(c) || c === 47 /* / */ || c === 63 /* ? */) return true;
    }
  }
  return false;
}

/** The key from `X-API-Key`, else from `Authorization: Bearer <key>`, with the header that carried it. */
export function presentedKey(req: IncomingMessage): { key: string; header: 'x-api-key' | 'authorization' } | undefined {
  const x = req.headers['x-api-key'];
  if (typeof x === 'string' && x !== '') return { key: x.trim(), header: 'x-api-key' };
  const auth = req.headers.authorization;
  if (auth && auth.length > 7 && auth.slice(0, 7).toLowerCase() === 'bearer ')
    return { key: auth.slice(7).trim(), header: 'authorization' };
  return undefined;
}

const AUTH_HEADERS = { 'www-authenticate': 'Bearer realm="apigate"' };
const unauthorized = (res: ServerResponse, code: string, message: string) => sendJsonError(res, 401, code, message, AUTH_HEADERS);

export interface ProxyHandlerOptions {
  catalog: GateCatalog;
  limiter: RateLimiter;
  quota: QuotaCounter;
  recorder: UsageRecorder;
  forwarder: Forwarder;
  notices?: QuotaNotices;
  logger?: Logger;
  now?: () => number;
}

/**
 * The proxy path, on Node's own request and response: key (401), user status (403), route (404),
 * per-key rate limit (429 + Retry-After; X-RateLimit-* on every answer), monthly quota (429),
 * forward, meter. Reads only in-process copies (keys, plans, routes); the one cache round trip is
 * the rate limit's increment. Only forwarded requests are metered: they are what the quota
 * counts, so stored usage and the quota agree (refusals are not usage).
 */
export function createProxyHandler(o: ProxyHandlerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const now = o.now ?? Date.now;
  const { catalog, limiter, quota, recorder, forwarder, notices } = o;

  /**
   * The route for the normalised path (see proxy/path.ts), with `req.url` rewritten to it so the
   * upstream never sees a dot segment; answers 400 for a refused path (one that climbs above the
   * prefix of the route it names, or into the gateway's own paths) and 404 for no route.
   */
  function routeFor(req: IncomingMessage, res: ServerResponse): CompiledRoute | undefined {
    const n = normalizeTarget(req.url ?? '/');
    if (!n.ok) return void sendJsonError(res, 400, 'PATH_INVALID', n.reason);
    if (n.lexical !== undefined) {
      const named = catalog.route(n.lexical);
      if (named && !underPrefix(n.path, named.prefix)) {
        return void sendJsonError(res, 400, 'PATH_INVALID', `the path climbs above the route prefix ${named.prefix}`);
      }
    }
    // `//admin/x` or `/x/../admin/y`: the front only checked the path as written.
    if (ownedByGateway(n.path)) return void sendJsonError(res, 400, 'PATH_INVALID', "the path leads into the gateway's own paths");
    const route = catalog.route(n.target);
    if (!route) return void sendJsonError(res, 404, 'NOT_FOUND', `no route for ${req.method} ${n.path}`);
    req.url = n.target;
    return route;
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    try {
      const arrived = performance.now(); // the gateway's added latency counts from here (UsageRecord.overheadMs)
      const at = now();
      const presented = presentedKey(req);
      if (!presented)
        return void unauthorized(
          res,
          'API_KEY_MISSING',
          'an API key is required: send it as "X-API-Key: <key>" or "Authorization: Bearer <key>"',
        );
      const { key, header } = presented;
      const hash = catalog.hashOf(key);
      const rec = hash === undefined ? undefined : catalog.key(hash);
      if (!rec) {
        if (hash !== undefined && catalog.isRevoked(hash)) return void unauthorized(res, 'API_KEY_REVOKED', 'the API key has been revoked');
        return void unauthorized(res, 'API_KEY_INVALID', 'the API key is not valid');
      }
      if (rec.expiresAt !== null && rec.expiresAt.getTime() <= at) {
        return void unauthorized(res, 'API_KEY_EXPIRED', `the API key expired at ${rec.expiresAt.toISOString()}`);
      }
      if (rec.userStatus !== 'active')
        return void sendJsonError(res, 403, 'USER_SUSPENDED', 'the account this key belongs to is suspended');
      const route = routeFor(req, res);
      if (!route) return;
      // A refused method costs nothing: the forwarder answers 405 with Allow before any count.
      if (route.methods !== null && !route.methods.has(req.method ?? 'GET')) return void forwarder.forward(req, res, route);
      const plan = catalog.plan(rec.planId);
      if (!plan)
        return void sendJsonError(res, 503, 'PLAN_UNAVAILABLE', 'the plan of this key is being updated; retry shortly', {
          'retry-after': 1,
        });
      const pass = new Pass(req, res, rec, route, plan, header, arrived, at);
      if (plan.requestsPerMinute === null) return void admit(pass, undefined);
      // Counted here when the counts live in this process; otherwise the answer comes with the
      // key's next batched increment (no promise per request either way).
      const rl = limiter.hitNow(rec.keyId, plan.requestsPerMinute);
      if (rl) admit(pass, rl);
      else limiter.hitThen(rec.keyId, plan.requestsPerMinute, pass);
    } catch (err) {
      failed(req, res, err);
    }
  }

  /** A request past its key and route checks, waiting for its rate-limit count. */
  class Pass implements RateLimitWaiter {
    constructor(
      readonly req: IncomingMessage,
      readonly res: ServerResponse,
      readonly rec: KeyAuthRecord,
      readonly route: CompiledRoute,
      readonly plan: Plan,
      readonly header: 'x-api-key' | 'authorization',
      readonly arrived: number,
      readonly at: number,
    ) {}

    rateLimited(rl: RateLimitResult): void {
      admit(this, rl);
    }
  }

  /** After the rate limit: refuse (429), or count the monthly quota and forward. */
  function admit(p: Pass, rl: RateLimitResult | undefined): void {
    try {
      if (rl && !rl.allowed) return void sendRateLimited(p.res, rl);
      // Counted on every plan (limit null: unlimited), so a move to a limited plan mid-month starts from the real count.
      // Without a promise once this process knows the user's count (every request but the first of a month).
      const q = quota.consumeNow(p.rec.userId, p.plan.requestsPerMonth);
      if (q) return void forward(p, rl, q);
      quota.consume(p.rec.userId, p.plan.requestsPerMonth).then(
        (r) => forward(p, rl, r),
        (err) => failed(p.req, p.res, err),
      );
    } catch (err) {
      failed(p.req, p.res, err);
    }
  }

  function forward(p: Pass, rl: RateLimitResult | undefined, q: QuotaResult): void {
    try {
      const { req, res, rec, route, at } = p;
      if (!q.allowed) return void sendQuotaExceeded(res, q, rl, at);
      if (q.crossed.length > 0) notices?.report(rec.userId, p.plan.name, q);
      const identity = { userId: rec.userId, planId: rec.planId, keyId: rec.keyId, credentialHeader: p.header };
      // The rate-limit headers go on whatever answer the client gets, the upstream's or a 502/504.
      forwarder.forwardThen(req, res, route, identity, { arrivedAt: p.arrived, headers: rl ? rateLimitHeaders(rl) : undefined }, (r) =>
        recorder.record({
          keyId: rec.keyId,
          userId: rec.userId,
          routeId: route.id,
          status: r.status,
          bytesIn: r.bytesIn,
          bytesOut: r.bytesOut,
          latencyMs: r.latencyMs,
          overheadMs: r.overheadMs,
          at,
        }),
      );
    } catch (err) {
      failed(p.req, p.res, err);
    }
  }

  function failed(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    o.logger?.error(
      { method: req.method, path: req.url?.split('?')[0] },
      `proxy request failed: ${(err as Error)?.message ?? String(err)}`,
    );
    if (!res.headersSent) sendJsonError(res, 500, 'INTERNAL', 'internal server error');
    else res.destroy();
  }

  // Never throws: failures are answered by the catch of each step.
  return handle;
}
