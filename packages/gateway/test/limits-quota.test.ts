import { describe, expect, it, vi } from 'vitest';
import { CacheCircuit, limitsHealth } from '../src/limits/circuit.js';
import { calendarMonth, QuotaCounter } from '../src/limits/quota.js';
import { cleanupAfterEach } from './helpers/cleanup.js';
import { deadRedis, memory, redis } from './helpers/caches.js';
import { tcpRelay } from './helpers/relay.js';

const { defer, use } = cleanupAfterEach();

const NOV = Date.UTC(2026, 10, 27, 12, 0, 0);
const DEC_1 = Date.UTC(2026, 11, 1);

function counter(circuit: CacheCircuit, now: () => number) {
  // A sync interval far longer than any test: writes happen when the test flushes.
  const q = new QuotaCounter(circuit, { now, syncIntervalMs: 3_600_000 });
  defer(() => q.close());
  return q;
}

const text = (v: Uint8Array | undefined) => (v ? new TextDecoder().decode(v) : undefined);

describe('calendarMonth', () => {
  it('is the UTC month, resetting on the 1st', () => {
    expect(calendarMonth(NOV)).toEqual({ id: '2026-11', start: Date.UTC(2026, 10, 1), resetAt: DEC_1 });
    expect(calendarMonth(Date.UTC(2026, 11, 31, 23, 59)).id).toBe('2026-12');
    expect(calendarMonth(Date.UTC(2026, 11, 31, 23, 59)).resetAt).toBe(Date.UTC(2027, 0, 1));
  });
});

describe('QuotaCounter', () => {
  it('counts up to the monthly limit, reports 80% and 100% once, then refuses until the month resets', async () => {
    const { cache } = await use(memory());
    let now = NOV;
    const quota = counter(new CacheCircuit(cache), () => now);

    const results = [];
    for (let i = 0; i < 7; i++) results.push(await quota.consume('usr_1', 5));
    expect(results.map((r) => [r.allowed, r.used, r.remaining, r.crossed])).toEqual([
      [true, 1, 4, []],
      [true, 2, 3, []],
      [true, 3, 2, []],
      [true, 4, 1, [0.8]],
      [true, 5, 0, [1]],
      [false, 5, 0, []],
      [false, 5, 0, []],
    ]);
    expect(results[5]).toMatchObject({ resetAt: DEC_1, period: '2026-11', degraded: false });

    // Only allowed requests were counted, and only on flush did they reach the cache.
    expect(await cache.get('quota:usr_1:2026-11')).toBeUndefined();
    await quota.flush();
    expect(text(await cache.get('quota:usr_1:2026-11'))).toBe('5');

    now = DEC_1;
    expect(await quota.consume('usr_1', 5)).toMatchObject({ allowed: true, used: 1, period: '2026-12' });
  });

  it('starts from the cached total after a restart, without reporting old thresholds again', async () => {
    const { cache } = await use(memory());
    const before = counter(new CacheCircuit(cache), () => NOV);
    for (let i = 0; i < 9; i++) await before.consume('usr_2', 10);
    await before.close();

    const after = counter(new CacheCircuit(cache), () => NOV);
    expect(await after.consume('usr_2', 10)).toMatchObject({ allowed: true, used: 10, crossed: [1] });
    expect(await after.consume('usr_2', 10)).toMatchObject({ allowed: false, used: 10, crossed: [] });
    await after.flush();
    expect(text(await cache.get('quota:usr_2:2026-11'))).toBe('10');
  });

  it('seeds a subject the cache has lost from the durable count, once', async () => {
    const { cache } = await use(memory()); // a memory cache after a restart: empty
    const seed = vi.fn(async (subject: string, period: { id: string }) => (subject === 'usr_9' && period.id === '2026-11' ? 9 : 0));
    const quota = new QuotaCounter(new CacheCircuit(cache), { now: () => NOV, syncIntervalMs: 3_600_000, seed });
    defer(() => quota.close());
    expect(await quota.consume('usr_9', 10)).toMatchObject({ allowed: true, used: 10, crossed: [1] });
    expect(await quota.consume('usr_9', 10)).toMatchObject({ allowed: false, used: 10 });
    await quota.flush();
    expect(text(await cache.get('quota:usr_9:2026-11'))).toBe('10');
    expect(seed).toHaveBeenCalledTimes(1);

    // A key the cache still has is not seeded again.
    const next = new QuotaCounter(new CacheCircuit(cache), { now: () => NOV, syncIntervalMs: 3_600_000, seed });
    defer(() => next.close());
    expect(await next.consume('usr_9', 10)).toMatchObject({ allowed: false, used: 10 });
    expect(seed).toHaveBeenCalledTimes(1);
  });

  it('re-seeds a key Redis lost from every instance, without adding the seed twice', async () => {
    const { cache } = await use(redis());
    let now = NOV;
    // The usage store both instances write to (what has been metered so far).
    let stored = 0;
    const seed = vi.fn(async () => stored);
    const a = new QuotaCounter(new CacheCircuit(cache), { now: () => now, syncIntervalMs: 3_600_000, seed });
    const b = new QuotaCounter(new CacheCircuit(cache), { now: () => now, syncIntervalMs: 3_600_000, seed });
    defer(() => Promise.all([a.close(), b.close()]));
    for (let i = 0; i < 5; i++) await a.consume('usr_10', 100);
    await a.flush();
    for (let i = 0; i < 4; i++) await b.consume('usr_10', 100);
    await b.flush();
    await a.flush();
    expect(text(await cache.get('quota:usr_10:2026-11'))).toBe('9');

    stored = 9;
    await cache.clear(); // FLUSHALL
    now += 10_000; // a last saw 5, b saw 9: both views are old now, so each re-reads the store first
    await a.consume('usr_10', 100);
    await b.consume('usr_10', 100);
    // Both write at once: one re-creates the key from its last total, the other only adds.
    await Promise.all([a.flush(), b.flush()]);
    expect(text(await cache.get('quota:usr_10:2026-11'))).toBe('11');
    expect(await b.consume('usr_10', 100)).toMatchObject({ used: 12 });
  });

  it('re-reads the durable count while a subject is active and re-creates a lost key from it', async () => {
    const { cache } = await use(memory());
    let now = NOV;
    let stored = 3;
    const quota = new QuotaCounter(new CacheCircuit(cache), {
      now: () => now,
      syncIntervalMs: 3_600_000,
      reseedIntervalMs: 1_000,
      seed: async () => stored,
    });
    defer(() => quota.close());
    expect(await quota.consume('usr_11', 100)).toMatchObject({ used: 4 });
    await quota.flush();
    // Other instances served 40 more (the store has them); then the cache loses the key.
    stored = 44;
    await cache.clear();
    now += 1_000;
    await quota.consume('usr_11', 100);
    await quota.flush();
    expect(text(await cache.get('quota:usr_11:2026-11'))).toBe('45');
  });

  it('treats a null limit as unlimited but still counts', async () => {
    const { cache } = await use(memory());
    const quota = counter(new CacheCircuit(cache), () => NOV);
    expect(await quota.consume('usr_3', null)).toMatchObject({ allowed: true, used: 1, remaining: null, crossed: [] });
    await quota.flush();
    expect(text(await cache.get('quota:usr_3:2026-11'))).toBe('1');
  });

  it('counts a subscription period when one is given', async () => {
    const { cache } = await use(memory());
    const quota = counter(new CacheCircuit(cache), () => NOV);
    const period = { id: 'sub-2026-11-15', start: Date.UTC(2026, 10, 15), resetAt: Date.UTC(2026, 11, 15) };
    expect(await quota.consume('usr_4', 3, period)).toMatchObject({ used: 1, period: 'sub-2026-11-15', resetAt: period.resetAt });
  });

  it('brings in other instances\u2019 counts through Redis on each write', async () => {
    const { cache } = await use(redis());
    const a = counter(new CacheCircuit(cache), () => NOV);
    const b = counter(new CacheCircuit(cache), () => NOV);
    for (let i = 0; i < 3; i++) await a.consume('usr_5', 100);
    await a.flush();
    expect(await b.consume('usr_5', 100)).toMatchObject({ used: 4 });
    await b.flush();
    await a.consume('usr_5', 100);
    await a.flush();
    // a's write returned the shared total, b's request included.
    expect(await a.consume('usr_5', 100)).toMatchObject({ used: 6 });
    await a.flush();
    expect(text(await cache.get('quota:usr_5:2026-11'))).toBe('6');
  });

  it('fails open when the cache backend is down and keeps every count buffered', async () => {
    const { cache } = await use(deadRedis());
    const circuit = new CacheCircuit(cache);
    const quota = counter(circuit, () => NOV);
    expect(await quota.consume('usr_6', 10)).toMatchObject({ allowed: true, used: 1, degraded: true });
    await quota.consume('usr_6', 10);
    await quota.flush();
    expect(quota.pending()).toBe(2);
    expect(quota.backlog()).toBe(2);
    const health = limitsHealth(circuit, quota);
    expect(health.status).toBe('degraded');
    expect(health.detail).toContain('2 quota increments buffered');
  });

  it('replays buffered counts to Redis when it comes back: none dropped', async () => {
    const relay = await tcpRelay({ host: '127.0.0.1', port: 6379 });
    defer(relay.close);
    const { cache } = await use(redis(relay.url));
    let now = NOV;
    const circuit = new CacheCircuit(cache, { now: () => now, retryAfterMs: 500 });
    const quota = counter(circuit, () => now);

    for (let i = 0; i < 3; i++) await quota.consume('usr_7', 100);
    await quota.flush();
    expect(text(await cache.get('quota:usr_7:2026-11'))).toBe('3');

    await relay.down();
    for (let i = 0; i < 4; i++) expect(await quota.consume('usr_7', 100)).toMatchObject({ allowed: true });
    await quota.flush();
    expect(quota.pending()).toBe(4);
    expect(limitsHealth(circuit, quota).status).toBe('degraded');

    await relay.up();
    await vi.waitFor(
      async () => {
        now += 500;
        await quota.flush();
        expect(quota.pending()).toBe(0);
      },
      { timeout: 15_000, interval: 100 },
    );
    expect(text(await cache.get('quota:usr_7:2026-11'))).toBe('7');
    expect(limitsHealth(circuit, quota).status).toBe('connected');
  });

  it('counts buffered between normal writes are not a backlog: health stays connected', async () => {
    const { cache } = await use(memory());
    const circuit = new CacheCircuit(cache);
    const quota = counter(circuit, () => NOV);
    for (let i = 0; i < 3; i++) await quota.consume('usr_12', 100);
    expect(quota.pending()).toBe(3);
    expect(quota.backlog()).toBe(0);
    expect(limitsHealth(circuit, quota).status).toBe('connected');
  });

  it('writes what is buffered on close', async () => {
    const { cache } = await use(memory());
    const quota = new QuotaCounter(new CacheCircuit(cache), { now: () => NOV, syncIntervalMs: 3_600_000 });
    await quota.consume('usr_8', 10);
    await quota.consume('usr_8', 10);
    await quota.close();
    await quota.close();
    expect(text(await cache.get('quota:usr_8:2026-11'))).toBe('2');
  });
});
