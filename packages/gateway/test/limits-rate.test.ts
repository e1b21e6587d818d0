import { describe, expect, it, vi } from 'vitest';
import { CacheCircuit, limitsHealth } from '../src/limits/circuit.js';
import { RateLimiter, type RateLimitResult, rateLimitHeaders } from '../src/limits/rate-limit.js';
import { cleanupAfterEach } from './helpers/cleanup.js';
import { deadRedis, memory, providerErrors, redis } from './helpers/caches.js';
import { tcpRelay } from './helpers/relay.js';

const { defer, use } = cleanupAfterEach();

/** 12:00:10 UTC: 50 s left in the minute. */
const T0 = Date.UTC(2026, 10, 27, 12, 0, 10);

function clock(start = T0) {
  const c = { now: start, fn: () => c.now };
  return c;
}

describe('RateLimiter', () => {
  it('allows `limit` requests per key per minute, then refuses with the reset time', async () => {
    const { cache } = await use(memory());
    const t = clock();
    const limiter = new RateLimiter(new CacheCircuit(cache, { now: t.fn }), { now: t.fn });

    const results = [];
    for (let i = 0; i < 4; i++) results.push(await limiter.hit('key_a', 3));
    expect(results.map((r) => [r.allowed, r.remaining])).toEqual([
      [true, 2],
      [true, 1],
      [true, 0],
      [false, 0],
    ]);
    const refused = results[3]!;
    expect(refused.resetAt).toBe(Date.UTC(2026, 10, 27, 12, 1, 0));
    expect(refused.retryAfterSec).toBe(50);
    expect(refused.degraded).toBe(false);
    expect(rateLimitHeaders(refused)).toEqual({
      'x-ratelimit-limit': '3',
      'x-ratelimit-remaining': '0',
      'x-ratelimit-reset': String(Date.UTC(2026, 10, 27, 12, 1, 0) / 1000),
      'retry-after': '50',
    });
    expect(rateLimitHeaders(results[0]!)['retry-after']).toBeUndefined();

    // Another key has its own window; the window's count sits in the cache under one key.
    expect((await limiter.hit('key_b', 3)).remaining).toBe(2);
    expect(new TextDecoder().decode(await cache.get(`rl:key_a:${Math.floor(T0 / 60_000)}`))).toBe('4');

    t.now = Date.UTC(2026, 10, 27, 12, 1, 0);
    expect(await limiter.hit('key_a', 3)).toMatchObject({ allowed: true, remaining: 2 });
  });

  it('shares one count across gateway instances through Redis', async () => {
    const { cache } = await use(redis());
    const a = new RateLimiter(new CacheCircuit(cache));
    const b = new RateLimiter(new CacheCircuit(cache));
    expect((await a.hit('shared', 3)).allowed).toBe(true);
    expect((await b.hit('shared', 3)).allowed).toBe(true);
    expect((await a.hit('shared', 3)).remaining).toBe(0);
    expect((await b.hit('shared', 3)).allowed).toBe(false);
  });

  it('gives every hit its own place when hits arrive in bursts while the key has an increment in flight (Redis)', async () => {
    const { cache } = await use(redis());
    const t = clock(); // one window, whatever the real minute does
    const a = new RateLimiter(new CacheCircuit(cache), { now: t.fn });
    const b = new RateLimiter(new CacheCircuit(cache), { now: t.fn }); // another instance on the same key
    const pending: Promise<{ allowed: boolean; remaining: number }>[] = [];
    for (let burst = 0; burst < 4; burst++) {
      for (let i = 0; i < 6; i++) pending.push(a.hit('bursty', 25));
      for (let i = 0; i < 2; i++) pending.push(b.hit('bursty', 25));
      await new Promise((resolve) => setImmediate(resolve)); // the first burst is on its way; the next ones join while it is
    }
    const results = await Promise.all(pending);
    // 32 hits on a limit of 25: exactly 25 allowed, each with its own remaining count.
    expect(results.filter((r) => r.allowed)).toHaveLength(25);
    expect(
      results
        .filter((r) => r.allowed)
        .map((r) => r.remaining)
        .sort((x, y) => x - y),
    ).toEqual(Array.from({ length: 25 }, (_, i) => i));
    expect((await a.hit('bursty', 25)).allowed).toBe(false);
    expect(Number(new TextDecoder().decode(await cache.get(`rl:bursty:${Math.floor(T0 / 60_000)}`)))).toBe(33);
  });

  it('sends a hit made in the turn an increment returns with the hits waiting for it, not one round trip later (Redis)', async () => {
    const { cache } = await use(redis());
    const t = clock();
    const limiter = new RateLimiter(new CacheCircuit(cache), { now: t.fn });
    let late: Promise<{ remaining: number }> | undefined;
    // `late` is made in the turn the first increment's answer is read (like a request read after it).
    const first = limiter.hit('turn', 10).then((r) => {
      late = limiter.hit('turn', 10);
      return r;
    });
    await new Promise((resolve) => setImmediate(resolve)); // the first increment is on its way
    const second = limiter.hit('turn', 10); // waits for it
    expect((await first).remaining).toBe(9);
    expect((await second).remaining).toBe(8);
    // One increment carried `second` and `late`: both answered in the same turn.
    const together = await Promise.race([late!.then(() => true), new Promise<boolean>((resolve) => setImmediate(() => resolve(false)))]);
    expect(together).toBe(true);
    expect((await late!).remaining).toBe(7);
    expect(new TextDecoder().decode(await cache.get(`rl:turn:${Math.floor(T0 / 60_000)}`))).toBe('3');
  });

  it('counts in the process, answering at once, while the cache is one no other process sees; through the cache once it is shared', async () => {
    const { cache } = await use(memory());
    const t = clock();
    let inProcess = true;
    const limiter = new RateLimiter(new CacheCircuit(cache, { now: t.fn }), { now: t.fn, inProcess: () => inProcess });
    const now = [1, 2, 3].map(() => limiter.hitNow('key_a', 2));
    expect(now.map((r) => r && [r.allowed, r.remaining, r.degraded])).toEqual([
      [true, 1, false],
      [true, 0, false],
      [false, 0, false],
    ]);
    expect(now[2]).toMatchObject({ retryAfterSec: 50, resetAt: Date.UTC(2026, 10, 27, 12, 1, 0) });
    // hitThen and hit take the same count, the waiter called before hitThen returns.
    const seen: number[] = [];
    limiter.hitThen('key_a', 5, { rateLimited: (r) => seen.push(r.remaining) });
    expect(seen).toEqual([1]);
    expect((await limiter.hit('key_a', 5)).remaining).toBe(0);
    expect(await cache.get(`rl:key_a:${Math.floor(T0 / 60_000)}`)).toBeUndefined();
    // A new window starts from zero.
    t.now += 60_000;
    expect(limiter.hitNow('key_a', 2)).toMatchObject({ allowed: true, remaining: 1 });

    // Switched to a shared cache (a settings change): nothing is counted here any more.
    inProcess = false;
    expect(limiter.hitNow('key_a', 2)).toBeUndefined();
    expect(await limiter.hit('key_a', 2)).toMatchObject({ allowed: true, remaining: 1 });
    expect(new TextDecoder().decode(await cache.get(`rl:key_a:${Math.floor(t.now / 60_000)}`))).toBe('1');
  });

  it('lets hits far from the limit through before their count returns, waits again near it, and stays exact across instances (Redis)', async () => {
    const { cache } = await use(redis());
    const t = clock();
    const a = new RateLimiter(new CacheCircuit(cache), { now: t.fn });
    const b = new RateLimiter(new CacheCircuit(cache), { now: t.fn });
    const limit = 1_200; // let through while more than 1000 are left, i.e. up to a count of 200
    // A key's first hit waits: nothing is known of its count yet.
    let first: RateLimitResult | undefined;
    a.hitThen('hot', limit, { rateLimited: (r) => (first = r) });
    expect(first).toBeUndefined();
    await vi.waitFor(() => expect(first).toMatchObject({ allowed: true, remaining: 1_199 }));
    // Far from the limit: answered before any increment returns, each with its own remaining count.
    const early: RateLimitResult[] = [];
    for (let i = 0; i < 50; i++) a.hitThen('hot', limit, { rateLimited: (r) => early.push(r) });
    expect(early.map((r) => r.remaining)).toEqual(Array.from({ length: 50 }, (_, i) => 1_198 - i));

    // Both instances, in bursts, until well past the limit: exactly `limit` hits are allowed in all.
    const later: Promise<RateLimitResult>[] = [];
    for (let burst = 0; burst < 30; burst++) {
      for (let i = 0; i < 25; i++) later.push(a.hit('hot', limit), b.hit('hot', limit));
      await new Promise((resolve) => setImmediate(resolve));
    }
    const results = [first!, ...early, ...(await Promise.all(later))];
    expect(results).toHaveLength(1_551);
    expect(results.filter((r) => r.allowed)).toHaveLength(limit);
    // Every hit is in the shared count, the ones let through included (sent within a few ms).
    const key = `rl:hot:${Math.floor(T0 / 60_000)}`;
    await vi.waitFor(async () => expect(new TextDecoder().decode(await cache.get(key))).toBe('1551'));

    // Hits let through wait up to 20 ms to be sent; flush (at shutdown) sends them at once.
    for (let i = 0; i < 7; i++) a.hitThen('hot2', 100_000, { rateLimited: () => {} });
    await a.hit('hot2', 100_000); // answered with the first increment: the view is known, the next hits are let through
    for (let i = 0; i < 5; i++) a.hitThen('hot2', 100_000, { rateLimited: () => {} });
    await a.flush();
    expect(new TextDecoder().decode(await cache.get(`rl:hot2:${Math.floor(T0 / 60_000)}`))).toBe('13');
  });

  it('fails open to an in-process limit when the cache backend is down, without waiting on it per request', async () => {
    const { cache, events } = await use(deadRedis());
    const t = clock();
    const circuit = new CacheCircuit(cache, { now: t.fn, retryAfterMs: 1_000 });
    const limiter = new RateLimiter(circuit, { now: t.fn });

    const first = await limiter.hit('key_a', 2);
    expect(first).toMatchObject({ allowed: true, remaining: 1, degraded: true });
    expect(await limiter.hit('key_a', 2)).toMatchObject({ allowed: true, remaining: 0, degraded: true });
    // The local limiter still enforces the limit.
    expect(await limiter.hit('key_a', 2)).toMatchObject({ allowed: false, degraded: true, retryAfterSec: 50 });
    // One real call failed; the others went straight to the local limiter.
    expect(providerErrors(events)).toBe(1);

    const status = circuit.status();
    expect(status.degraded).toBe(true);
    expect(status.since?.getTime()).toBe(T0);
    const health = limitsHealth(circuit);
    expect(health.status).toBe('degraded');
    expect(health.detail).toContain('rate limits are per instance');
    expect(health.error).toMatch(/cache\/redis increment/);

    // After retryAfterMs one request probes the backend again (and fails again).
    t.now += 1_000;
    await limiter.hit('key_a', 2);
    expect(providerErrors(events)).toBe(2);
  });

  it('goes back to the shared count once the cache answers again', async () => {
    const relay = await tcpRelay({ host: '127.0.0.1', port: 6379 });
    defer(relay.close);
    const { cache } = await use(redis(relay.url));
    const t = clock();
    const circuit = new CacheCircuit(cache, { now: t.fn, retryAfterMs: 500 });
    const limiter = new RateLimiter(circuit, { now: t.fn });
    const recovered = vi.fn();
    circuit.onRecover(recovered);

    expect(await limiter.hit('k', 10)).toMatchObject({ remaining: 9, degraded: false });
    await relay.down();
    expect(await limiter.hit('k', 10)).toMatchObject({ allowed: true, degraded: true });
    expect(limitsHealth(circuit).status).toBe('degraded');

    await relay.up();
    // ioredis reconnects on its own schedule; each poll moves the clock past the probe delay.
    await vi.waitFor(
      async () => {
        t.now += 500;
        expect((await limiter.hit('k', 10)).degraded).toBe(false);
      },
      { timeout: 15_000, interval: 100 },
    );
    expect(recovered).toHaveBeenCalledTimes(1);
    expect(circuit.status()).toMatchObject({ degraded: false });
    expect(limitsHealth(circuit).status).toBe('connected');
  });
});
