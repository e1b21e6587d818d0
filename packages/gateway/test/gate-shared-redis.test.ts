import { PrivateRedis } from '@apigate/provider-testkit';
import { describe, expect, it, vi } from 'vitest';
import { monthOf } from '../src/index.js';
import { cleanupAfterEach } from './helpers/cleanup.js';
import { customer, recorder, startGate } from './helpers/gate.js';
import { call } from './helpers/http.js';

const { defer, use } = cleanupAfterEach();

describe('two deployments (two data dirs) on one Redis', () => {
  it('derive their queue and cache prefixes from their install ids: each applies only its own usage batches', async () => {
    const redis = await PrivateRedis.start();
    defer(() => redis.kill());
    const upstream = await use(recorder());
    const start = async () => {
      const g = await startGate({
        cache: 'redis',
        queue: 'redis',
        redisUrl: redis.url,
        derivedPrefixes: true,
        gateway: { meterIntervalMs: 20, pollIntervalMs: 50 },
      });
      defer(() => g.stop());
      const c = await customer(g.store, upstream.url);
      await g.gateway.catalog.settled();
      return { g, ...c };
    };
    const a = await start();
    const b = await start();
    expect(a.g.store.installId).toMatch(/^[0-9a-f]{16}$/);
    expect(b.g.store.installId).not.toBe(a.g.store.installId);
    const health = await b.g.kernel.health();
    expect(health.providers.queue?.detail).toContain(`prefix apigate-${b.g.store.installId}`);

    // Interleaved, and spread over several metering batches on each side.
    for (let i = 0; i < 12; i++) {
      const [who, n] = i % 3 === 0 ? [b, 1] : [a, 1];
      for (let j = 0; j < n; j++) expect((await call(`${who.g.url}/api/x`, { headers: { 'x-api-key': who.key } })).status).toBe(200);
      await new Promise((r) => setTimeout(r, 25));
    }
    const month = monthOf(new Date());
    await vi.waitFor(
      async () => {
        expect((await a.g.store.domain.usage.forUser(a.user.id, month)).totals.requests).toBe(8);
        expect((await b.g.store.domain.usage.forUser(b.user.id, month)).totals.requests).toBe(4);
      },
      { timeout: 10_000, interval: 50 },
    );
    // Nothing of the other deployment landed in either database.
    expect((await a.g.store.domain.usage.byUser(month)).map((u) => u.userId)).toEqual([a.user.id]);
    expect((await b.g.store.domain.usage.byUser(month)).map((u) => u.userId)).toEqual([b.user.id]);
  });
});
