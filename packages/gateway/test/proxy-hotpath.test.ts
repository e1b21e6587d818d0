import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, expect, it, vi } from 'vitest';
import { CacheCircuit } from '../src/limits/circuit.js';
import { QuotaCounter } from '../src/limits/quota.js';
import { RateLimiter, rateLimitHeaders } from '../src/limits/rate-limit.js';
import { sendQuotaExceeded, sendRateLimited } from '../src/limits/responses.js';
import { startUsageConsumer } from '../src/metering/consumer.js';
import { UsageRecorder } from '../src/metering/recorder.js';
import { Forwarder } from '../src/proxy/forward.js';
import { sendJsonError } from '../src/proxy/respond.js';
import { RouteTable } from '../src/proxy/routes.js';
import { cleanupAfterEach } from './helpers/cleanup.js';
import { memory as memoryCache } from './helpers/caches.js';
import { call, listen } from './helpers/http.js';
import { MemoryUsageSink, memory as memoryQueue } from './helpers/queues.js';

const { defer } = cleanupAfterEach();

const T0 = Date.UTC(2026, 10, 27, 12, 0, 10);

/**
 * The blocks wired the way the app will: key -> rate limit (headers on every answer) -> quota
 * -> forward -> meter. Keys are a constant map here; the store's cached lookup comes later.
 */
async function hotPath(limits: { perMinute: number; perMonth: number }) {
  const clock = { now: T0 };
  const now = () => clock.now;
  const { cache, close: closeCache } = await memoryCache();
  const { queue, close: closeQueue } = await memoryQueue();
  const repo = new MemoryUsageSink();
  const worker = startUsageConsumer(queue, repo);
  const circuit = new CacheCircuit(cache, { now });
  const limiter = new RateLimiter(circuit, { now });
  const quota = new QuotaCounter(circuit, { now });
  const meter = new UsageRecorder(queue, { flushIntervalMs: 3_600_000 });
  const forwarder = new Forwarder();

  const upstream = await listen((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ user: req.headers['x-user-id'], path: req.url }));
  });
  const routes = new RouteTable([{ id: 'rt_weather', pathPrefix: '/weather', upstreamUrl: upstream.url, stripPrefix: true }]);
  const keys = new Map([['ak_live_1', { keyId: 'key_1', userId: 'usr_1', planId: 'pln_basic' }]]);

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const at = now();
    const key = keys.get(String(req.headers['x-api-key'] ?? ''));
    if (!key) return sendJsonError(res, 401, 'INVALID_KEY', 'a valid API key is required in X-API-Key');
    const route = routes.match(req.url ?? '/');
    const base = {
      keyId: key.keyId,
      userId: key.userId,
      routeId: route?.id ?? null,
      bytesIn: 0,
      bytesOut: 0,
      latencyMs: 0,
      overheadMs: 0,
      at,
    };
    if (!route) {
      sendJsonError(res, 404, 'NOT_FOUND', 'no route');
      return meter.record({ ...base, status: 404 });
    }
    const rl = await limiter.hit(key.keyId, limits.perMinute);
    if (!rl.allowed) {
      sendRateLimited(res, rl);
      return meter.record({ ...base, status: 429 });
    }
    const q = await quota.consume(key.userId, limits.perMonth);
    if (!q.allowed) {
      sendQuotaExceeded(res, q, rl, at);
      return meter.record({ ...base, status: 429 });
    }
    for (const [h, v] of Object.entries(rateLimitHeaders(rl))) res.setHeader(h, v);
    const r = await forwarder.forward(req, res, route, key);
    meter.record({ ...base, status: r.status, bytesIn: r.bytesIn, bytesOut: r.bytesOut, latencyMs: r.latencyMs, overheadMs: r.overheadMs });
  };
  const gw = await listen((req, res) => void handle(req, res));

  defer(
    closeCache,
    closeQueue,
    () => worker.close(),
    upstream.close,
    () => quota.close(),
    async () => {
      await gw.close();
      await meter.close();
      await forwarder.close();
    },
  );
  return { url: gw.url, clock, repo, meter };
}

describe('the hot path wired together', () => {
  it('limits per minute with headers on every answer, then per month, and meters every answer', async () => {
    const gw = await hotPath({ perMinute: 3, perMonth: 5 });
    const get = (key = 'ak_live_1') => call(`${gw.url}/weather/today`, { headers: { 'x-api-key': key } });

    expect((await get('wrong')).status).toBe(401);

    const ok = await get();
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body.toString())).toEqual({ user: 'usr_1', path: '/today' });
    expect(ok.headers).toMatchObject({
      'x-ratelimit-limit': '3',
      'x-ratelimit-remaining': '2',
      'x-ratelimit-reset': String(Date.UTC(2026, 10, 27, 12, 1) / 1000),
    });
    await get();
    await get();
    const limited = await get();
    expect(limited.status).toBe(429);
    expect(limited.headers).toMatchObject({ 'retry-after': '50', 'x-ratelimit-remaining': '0' });
    expect(JSON.parse(limited.body.toString()).error.code).toBe('RATE_LIMITED');

    gw.clock.now += 60_000; // the next minute: 3 of 5 monthly requests used
    expect((await get()).status).toBe(200);
    expect((await get()).status).toBe(200);
    const quota = await get();
    expect(quota.status).toBe(429);
    expect(JSON.parse(quota.body.toString()).error).toEqual({
      code: 'QUOTA_EXCEEDED',
      message: 'the monthly quota of 5 requests is used up; it resets at 2026-12-01T00:00:00.000Z',
    });
    expect(Number(quota.headers['retry-after'])).toBe((Date.UTC(2026, 11, 1) - gw.clock.now) / 1000);

    await gw.meter.flush();
    // 7 answers for key_1 (the 401 had no key): 5 proxied, 2 refused with 429.
    await vi.waitFor(() => expect(gw.repo.requests('key_1')).toBe(7));
    const rows = [...gw.repo.rows.values()];
    expect(rows.reduce((n, r) => n + r.clientErrors, 0)).toBe(2);
    expect(rows.reduce((n, r) => n + r.bytesOut, 0)).toBeGreaterThan(0);
  });
});
