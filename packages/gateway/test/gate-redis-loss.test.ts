import type { CacheProvider } from '@apigate/kernel';
import { PrivateRedis } from '@apigate/provider-testkit';
import { describe, expect, it, vi } from 'vitest';
import { monthOf } from '../src/index.js';
import { cleanupAfterEach } from './helpers/cleanup.js';
import { customer, recorder, startGate } from './helpers/gate.js';
import { call } from './helpers/http.js';

const { defer, use } = cleanupAfterEach();

async function privateRedis(): Promise<PrivateRedis> {
  const r = await PrivateRedis.start();
  defer(() => r.kill());
  return r;
}

async function setup(redisUrl: string, monthly: number | null, quota?: { syncIntervalMs: number }) {
  const upstream = await use(recorder());
  const gate = await startGate({
    cache: 'redis',
    redisUrl,
    gateway: { pollIntervalMs: 50, meterIntervalMs: 50, ...(quota ? { quota } : {}) },
  });
  defer(() => gate.stop());
  const c = await customer(gate.store, upstream.url, { monthly });
  await gate.gateway.catalog.settled();
  const cache = gate.kernel.get('cache') as CacheProvider;
  const quotaKey = `quota:${c.user.id}:${monthOf(new Date())}`;
  const hit = async () => (await call(`${gate.url}/api/x`, { headers: { 'x-api-key': c.key } })).status;
  return { gate, upstream, cache, quotaKey, hit, ...c };
}

describe('the gateway when Redis loses its data', () => {
  it('re-seeds the monthly count after a flush and after a restart empty: the 429 comes at the quota', async () => {
    const redis = await privateRedis();
    const { cache, quotaKey, hit, upstream } = await setup(redis.url, 10, { syncIntervalMs: 50 });
    const counted = async (n: number) => {
      for (let i = 0; i < n; i++) expect(await hit()).toBe(200);
    };

    await counted(4);
    await vi.waitFor(async () => expect(new TextDecoder().decode(await cache.get(quotaKey))).toBe('4'), { timeout: 10_000, interval: 25 });
    await cache.clear(); // every key of the gateway's cache gone, as FLUSHALL does
    expect(await cache.get(quotaKey)).toBeUndefined();
    await counted(3);
    await vi.waitFor(async () => expect(new TextDecoder().decode(await cache.get(quotaKey))).toBe('7'), { timeout: 10_000, interval: 25 });

    await redis.kill();
    await redis.start(); // same port, nothing in it
    await vi.waitFor(async () => expect(await cache.has(quotaKey).catch(() => 'down')).toBe(false), { timeout: 15_000, interval: 100 });
    let ok = 0;
    let status = 200;
    while (status === 200 && ok < 20) {
      status = await hit();
      if (status === 200) ok++;
    }
    expect(status).toBe(429);
    expect(ok).toBe(3); // 10 - 4 - 3
    expect(upstream.received).toHaveLength(10);
  });

  it('stays healthy under steady traffic on a working Redis, and is degraded while it is stopped', async () => {
    const redis = await privateRedis();
    const { gate, hit } = await setup(redis.url, 1_000_000);
    const health = async () => {
      const r = await call(`${gate.url}/admin/health`);
      return JSON.parse(r.body.toString()) as { status: string; gateway?: { status: string; detail?: string } };
    };
    let traffic = true;
    let sent = 0;
    const load = (async () => {
      while (traffic) {
        await hit();
        sent++;
      }
    })();
    defer(async () => {
      traffic = false;
      await load;
    });

    const seen: string[] = [];
    const until = Date.now() + 2_500; // more than two quota sync intervals (1 s)
    while (Date.now() < until) {
      const h = await health();
      seen.push(h.gateway?.detail ? `${h.status}: ${h.gateway.detail}` : h.status);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(sent).toBeGreaterThan(50);
    expect(new Set(seen)).toEqual(new Set(['healthy']));

    redis.freeze(); // stopped: connections stay open, nothing answers
    defer(async () => redis.thaw());
    // The gateway entry says why (limits per instance, counts buffered); the cache provider's own
    // error keeps its existing weight in the overall status (see the app's Redis test).
    await vi.waitFor(
      async () => {
        const h = await health();
        expect(h.status).not.toBe('healthy');
        expect(h.gateway).toMatchObject({
          status: 'degraded',
          detail: expect.stringMatching(/cache failing since .*quota increments buffered/),
        });
      },
      { timeout: 15_000, interval: 100 },
    );
    redis.thaw();
    await vi.waitFor(async () => expect((await health()).status).toBe('healthy'), { timeout: 15_000, interval: 100 });
  });
});
