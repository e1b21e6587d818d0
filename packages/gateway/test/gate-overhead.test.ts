import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, vi } from 'vitest';
import { GateCatalog } from '../src/gate/catalog.js';
import { createProxyHandler } from '../src/gate/handler.js';
import { CacheCircuit } from '../src/limits/circuit.js';
import { QuotaCounter } from '../src/limits/quota.js';
import { RateLimiter } from '../src/limits/rate-limit.js';
import { startUsageConsumer } from '../src/metering/consumer.js';
import { UsageRecorder } from '../src/metering/recorder.js';
import { addOverhead, OVERHEAD_BUCKETS_MS, overheadQuantile } from '../src/metering/types.js';
import { Forwarder } from '../src/proxy/forward.js';
import { openStore } from '../src/domain/open-store.js';
import { KEY_A, tempDir } from './helpers.js';
import { memory as memoryCache, redis as redisCache } from './helpers/caches.js';
import { cleanupAfterEach } from './helpers/cleanup.js';
import { customer, recorder } from './helpers/gate.js';
import { call, listen } from './helpers/http.js';
import { MemoryUsageSink, memory as memoryQueue } from './helpers/queues.js';

const { defer, use } = cleanupAfterEach();

const UPSTREAM_MS = 200;

/** The proxy handler wired as startGateway wires it (store catalog, limits on a real cache, recorder on a queue). */
async function hotPath(cacheKind: 'memory' | 'redis', upstreamUrl: string) {
  const store = await openStore({ dataDir: await tempDir(), secretKey: KEY_A });
  defer(() => store.close());
  const { key } = await customer(store, upstreamUrl, { rpm: 1000, monthly: 1000 });
  const catalog = await GateCatalog.open(store);
  defer(() => catalog.close());
  const { cache, close: closeCache } = cacheKind === 'redis' ? await redisCache() : await memoryCache();
  const { queue, close: closeQueue } = await memoryQueue();
  const repo = new MemoryUsageSink();
  const worker = startUsageConsumer(queue, repo);
  const circuit = new CacheCircuit(cache);
  const quota = new QuotaCounter(circuit);
  const meter = new UsageRecorder(queue, { flushIntervalMs: 3_600_000 });
  const forwarder = new Forwarder();
  const handler = createProxyHandler({ catalog, limiter: new RateLimiter(circuit), quota, recorder: meter, forwarder });
  const gw = await listen(handler);
  defer(
    closeCache,
    closeQueue,
    () => worker.close(),
    () => quota.close(),
    async () => {
      await gw.close();
      await meter.close();
      await forwarder.close();
    },
  );
  return { url: gw.url, key, repo, meter };
}

describe('the added latency (UsageRecord.overheadMs) on a slow upstream', () => {
  for (const cacheKind of ['memory', 'redis'] as const) {
    it(`leaves the upstream's ${UPSTREAM_MS} ms out: every request lands below it, and the histogram counts every request (${cacheKind} cache)`, async () => {
      const upstream = await use(
        recorder(async () => {
          await sleep(UPSTREAM_MS);
          return { status: 200, body: '{"ok":true}' };
        }),
      );
      const gate = await hotPath(cacheKind, upstream.url);
      const headers = { 'x-api-key': gate.key };
      for (let i = 0; i < 3; i++) expect((await call(`${gate.url}/api/one`, { headers })).status).toBe(200);
      const together = await Promise.all(Array.from({ length: 5 }, () => call(`${gate.url}/api/two`, { headers })));
      expect(together.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);

      expect(await gate.meter.flush()).toBe(1);
      await vi.waitFor(() => expect(gate.repo.requests()).toBe(8));
      // One row per minute (two when the minute turned during the test).
      const hist = new Array<number>(OVERHEAD_BUCKETS_MS.length).fill(0);
      for (const row of gate.repo.rows.values()) {
        expect(row.overhead).toHaveLength(OVERHEAD_BUCKETS_MS.length);
        expect(row.overhead!.reduce((a, b) => a + b, 0)).toBe(row.requests);
        // Each request took the upstream's 200 ms at least...
        expect(row.latencyMsTotal / row.requests).toBeGreaterThanOrEqual(UPSTREAM_MS);
        addOverhead(hist, row.overhead!);
      }
      expect(hist.reduce((a, b) => a + b, 0)).toBe(8);
      // ...yet the gateway's own share stays far below it (generous bounds: the machine is shared,
      // and the first request also reads the quota count).
      expect(overheadQuantile(hist, 1)).toBeLessThanOrEqual(128); // the 200 ms upstream wait would land in the 256 bucket
      expect(overheadQuantile(hist, 0.5)).toBeLessThanOrEqual(16);
    });
  }
});
