import type { CacheProvider } from '@apigate/kernel';
import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../src/limits/rate-limit.js';
import { CacheCircuit } from '../src/limits/circuit.js';
import { deadRedis, memory, redis } from './helpers/caches.js';
import { cleanupAfterEach } from './helpers/cleanup.js';

const { use } = cleanupAfterEach();

const T = Date.UTC(2026, 10, 27, 12, 0, 30);
/** The cache, counting the increments that reach it. */
function counting(cache: CacheProvider) {
  const seen = { increments: 0 };
  const wrapped = new Proxy(cache, {
    get(target, prop) {
      if (prop !== 'increment') return Reflect.get(target, prop);
      return (...args: Parameters<CacheProvider['increment']>) => {
        seen.increments++;
        return target.increment(...args);
      };
    },
  });
  return { wrapped, seen };
}

describe('rate limiter: hits in one event-loop turn share one increment', () => {
  for (const [name, make] of [
    ['memory cache', memory],
    ['Redis cache', () => redis()],
  ] as const) {
    it(`gives each of 30 concurrent hits its own place in the count (${name})`, async () => {
      const { cache } = await use(make());
      const { wrapped, seen } = counting(cache);
      const limiter = new RateLimiter(new CacheCircuit(wrapped), { now: () => T });
      const results = await Promise.all(Array.from({ length: 30 }, () => limiter.hit('key_a', 20)));
      expect(results.filter((r) => r.allowed)).toHaveLength(20);
      expect(results.map((r) => r.remaining).sort((a, b) => b - a)).toEqual([
        ...Array.from({ length: 20 }, (_, i) => 19 - i),
        ...Array(10).fill(0),
      ]);
      expect(seen.increments).toBe(1);
      // The next turn continues from the shared count; another key has its own.
      expect((await limiter.hit('key_a', 20)).allowed).toBe(false);
      expect((await limiter.hit('key_b', 20)).remaining).toBe(19);
      expect(seen.increments).toBe(3);
    });
  }

  it('falls back per hit to the in-process count when the batched increment fails', async () => {
    const { cache } = await use(deadRedis());
    const limiter = new RateLimiter(new CacheCircuit(cache), { now: () => T });
    const results = await Promise.all(Array.from({ length: 5 }, () => limiter.hit('key_a', 3)));
    expect(results.map((r) => r.allowed)).toEqual([true, true, true, false, false]);
    expect(results.every((r) => r.degraded)).toBe(true);
  });
});
