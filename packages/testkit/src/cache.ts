import { randomBytes } from 'node:crypto';
import type { CacheFeatures, CacheProvider } from '@apigate/kernel';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { instancePerTest } from './expectations.js';
import { type DefinitionOf, describeSuite, resolveSuite, type SuiteSetup } from './suite.js';
import { asBuffer, uniquePrefix } from './util.js';

export interface CacheSuiteOptions {
  /** Title of the describe block (default "cache provider conformance"). */
  name?: string;
  /** Timeout of each test in ms (default 30 s). */
  timeout?: number;
  /**
   * A fresh instance, exactly as the gateway sees it: return `(await createForTest(def, config)).provider`
   * so calls go through the kernel's instrumentation. Called before every test; the suite closes it after.
   */
  create: () => CacheProvider | Promise<CacheProvider>;
  /** The provider's declared features (pass `definition.features`). */
  features?: CacheFeatures;
  /** How long to wait for a key with a short TTL to disappear before failing (default 5000 ms). */
  expiryWaitMs?: number;
  /** Provider-specific tests registered inside the suite; `get()` returns the current test's instance. */
  additionalTests?: (get: () => CacheProvider) => void;
}

/** What `describeCacheProvider(definition, setup)` takes besides the setup every suite takes. */
export interface CacheSuiteSetup extends SuiteSetup, Pick<CacheSuiteOptions, 'expiryWaitMs' | 'additionalTests'> {}

const TEST_TIMEOUT = 30_000;
/** Short enough to keep the suite quick, long enough that a loaded machine still sets it before it fires. */
const SHORT_TTL = 150;
const LONG_TTL = 600_000;

const text = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : Buffer.from(b).toString('utf8'));

/**
 * The cache conformance suite. Each test gets a new instance of `definition`, made by
 * `createForTest` from the setup's `config` and `secrets`. Every key lives under a prefix unique to
 * this run and test, so the suite can share a real backend (Redis) with other runs; each test
 * clears its own prefix.
 */
export function describeCacheProvider(definition: DefinitionOf<'cache'>, setup?: CacheSuiteSetup): void;
/** @deprecated The 1.0 form: pass the definition and its config instead, `describeCacheProvider(definition, { config })`. */
export function describeCacheProvider(opts: CacheSuiteOptions): void;
export function describeCacheProvider(first: DefinitionOf<'cache'> | CacheSuiteOptions, setup?: CacheSuiteSetup): void {
  const suite = resolveSuite('cache', 'cache provider conformance', first, setup);
  const opts = suite.opts;
  const features = opts.features ?? {};
  const expiryWaitMs = opts.expiryWaitMs ?? 5_000;
  const runPrefix = uniquePrefix('cache');

  describeSuite(suite, TEST_TIMEOUT, () => {
    let prefix = '';
    let testNo = 0;
    /** A key unique to this run and test. */
    const k = (name: string) => `${prefix}${name}`;
    beforeEach(() => {
      prefix = `${runPrefix}:${++testNo}:`;
    });
    const get = instancePerTest('cache', opts.create, {
      beforeClose: async (c) => {
        await c.clear(prefix);
      },
    });
    /** Waits until `key` has expired, polling rather than sleeping a guessed time. */
    const expired = (c: CacheProvider, key: string) =>
      vi.waitFor(async () => expect(await c.has(key), `"${key}" should have expired`).toBe(false), {
        timeout: expiryWaitMs,
        interval: 25,
      });

    describe('get, set, delete, has', () => {
      it('returns undefined and has() false for a missing key', async () => {
        const c = get();
        expect(await c.get(k('missing'))).toBeUndefined();
        expect(await c.has(k('missing'))).toBe(false);
      });

      it('returns what was set, and the latest value after an overwrite', async () => {
        const c = get();
        await c.set(k('a'), 'first');
        expect(await c.has(k('a'))).toBe(true);
        expect(text(await c.get(k('a')))).toBe('first');
        await c.set(k('a'), 'second, longer value');
        expect(text(await c.get(k('a')))).toBe('second, longer value');
        await c.set(k('a'), 'x');
        expect(text(await c.get(k('a')))).toBe('x');
      });

      it('keeps keys apart', async () => {
        const c = get();
        await c.set(k('one'), '1');
        await c.set(k('two'), '2');
        await c.set(k('one:two'), '12');
        expect(text(await c.get(k('one')))).toBe('1');
        expect(text(await c.get(k('two')))).toBe('2');
        expect(text(await c.get(k('one:two')))).toBe('12');
      });

      it('delete returns true for an existing key, then false, and the key is gone', async () => {
        const c = get();
        await c.set(k('d'), 'v');
        await c.set(k('keep'), 'v');
        expect(await c.delete(k('d'))).toBe(true);
        expect(await c.get(k('d'))).toBeUndefined();
        expect(await c.has(k('d'))).toBe(false);
        expect(await c.delete(k('d'))).toBe(false);
        expect(await c.delete(k('never-set'))).toBe(false);
        expect(text(await c.get(k('keep')))).toBe('v');
      });
    });

    describe('values', () => {
      it('stores strings as UTF-8', async () => {
        const c = get();
        const s = 'héllo wörld ✓ 日本語 🚀';
        await c.set(k('s'), s);
        const got = await c.get(k('s'));
        expect(got).toBeInstanceOf(Uint8Array);
        expect(asBuffer(got!).equals(Buffer.from(s, 'utf8'))).toBe(true);
      });

      it('round-trips binary values byte-exact, including 0x00 and invalid UTF-8', async () => {
        const c = get();
        const every = Uint8Array.from({ length: 256 }, (_, i) => i);
        const invalidUtf8 = Uint8Array.from([0xc3, 0x28, 0x00, 0xff, 0xfe, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0xf0, 0x28, 0x8c, 0x00]);
        const nulOnly = new Uint8Array([0, 0, 0]);
        await c.set(k('every'), every);
        await c.set(k('invalid'), invalidUtf8);
        await c.set(k('nul'), nulOnly);
        for (const [key, want] of [
          ['every', every],
          ['invalid', invalidUtf8],
          ['nul', nulOnly],
        ] as const) {
          const got = await c.get(k(key));
          expect(got, key).toBeInstanceOf(Uint8Array);
          expect(Array.from(got!), key).toEqual(Array.from(want));
        }
      });

      it('round-trips an empty value as present, zero-length bytes', async () => {
        const c = get();
        await c.set(k('empty'), '');
        await c.set(k('empty-bytes'), new Uint8Array(0));
        for (const key of ['empty', 'empty-bytes']) {
          const got = await c.get(k(key));
          expect(got, key).toBeInstanceOf(Uint8Array);
          expect(got!.byteLength, key).toBe(0);
          expect(await c.has(k(key)), key).toBe(true);
        }
      });

      it('round-trips a large random value', async () => {
        const c = get();
        const big = randomBytes(512 * 1024);
        await c.set(k('big'), big);
        const got = await c.get(k('big'));
        expect(got).toBeInstanceOf(Uint8Array);
        expect(asBuffer(got!).equals(big)).toBe(true);
      });

      it('keeps the stored value independent of the caller’s arrays', async () => {
        const c = get();
        const input = Uint8Array.from([1, 2, 3, 4]);
        await c.set(k('copy'), input);
        input[0] = 99;
        const first = await c.get(k('copy'));
        expect(Array.from(first!)).toEqual([1, 2, 3, 4]);
        first![1] = 99;
        expect(Array.from((await c.get(k('copy')))!)).toEqual([1, 2, 3, 4]);
      });
    });

    describe('ttl', () => {
      it('expires a key after ttlMs, keeps keys with a long or no ttl', async () => {
        const c = get();
        await c.set(k('short'), 'v', { ttlMs: SHORT_TTL });
        await c.set(k('long'), 'v', { ttlMs: LONG_TTL });
        await c.set(k('forever'), 'v');
        // A long ttl must not mean "expire at once" (catches seconds/milliseconds mix-ups both ways).
        expect(text(await c.get(k('long')))).toBe('v');
        await expired(c, k('short'));
        expect(await c.get(k('short'))).toBeUndefined();
        expect((await c.getMany([k('short')]))[0]).toBeUndefined();
        expect(await c.has(k('long'))).toBe(true);
        expect(await c.has(k('forever'))).toBe(true);
      });

      it('set without ttl removes an earlier ttl', async () => {
        const c = get();
        await c.set(k('control'), 'v', { ttlMs: SHORT_TTL });
        await c.set(k('reset'), 'v', { ttlMs: SHORT_TTL });
        await c.set(k('reset'), 'w');
        await expired(c, k('control'));
        expect(text(await c.get(k('reset')))).toBe('w');
      });

      it('setMany applies ttl to every entry', async () => {
        const c = get();
        await c.setMany(
          [
            [k('m1'), 'a'],
            [k('m2'), 'b'],
          ],
          { ttlMs: SHORT_TTL },
        );
        await c.set(k('stay'), 'v');
        await expired(c, k('m1'));
        await expired(c, k('m2'));
        expect(await c.has(k('stay'))).toBe(true);
      });
    });

    describe('increment', () => {
      it('creates the key at `by` (default 1) and counts from there, up and down', async () => {
        const c = get();
        expect(await c.increment(k('n'))).toBe(1);
        expect(await c.increment(k('n'))).toBe(2);
        expect(await c.increment(k('n'), 5)).toBe(7);
        expect(await c.increment(k('n'), -10)).toBe(-3);
        expect(text(await c.get(k('n')))).toBe('-3');
        expect(await c.increment(k('by'), 40)).toBe(40);
        expect(await c.increment(k('neg'), -2)).toBe(-2);
        expect(await c.increment(k('neg'), -2)).toBe(-4);
      });

      it('increments a value that was set as a decimal string', async () => {
        const c = get();
        await c.set(k('s'), '41');
        expect(await c.increment(k('s'))).toBe(42);
        expect(text(await c.get(k('s')))).toBe('42');
      });

      it('rejects with a ProviderError when the value is not an integer', async () => {
        const c = get();
        await c.set(k('word'), 'not a number');
        const err = await c.increment(k('word')).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err, 'increment of "not a number" must reject').toBeInstanceOf(Error);
        // The kernel's instrument() turns provider failures into ProviderError: `create` must
        // return the instrumented instance (createForTest does).
        expect(err, 'create() must return the instance from createForTest (wrapped by the kernel)').toMatchObject({
          name: 'ProviderError',
          capability: 'cache',
          operation: 'increment',
          retryable: false,
        });
        expect(text(await c.get(k('word')))).toBe('not a number');
      });

      it('applies ttlMs only when the increment creates the key', async () => {
        const c = get();
        expect(await c.increment(k('created'), 1, { ttlMs: SHORT_TTL })).toBe(1);
        expect(await c.increment(k('existing'))).toBe(1);
        expect(await c.increment(k('existing'), 1, { ttlMs: SHORT_TTL })).toBe(2);
        await expired(c, k('created'));
        expect(await c.get(k('existing'))).toBeDefined();
        expect(await c.increment(k('existing'))).toBe(3);
      });

      it('starts a key it creates from `initial` (a re-seeded counter), and ignores `initial` once the key exists', async () => {
        const c = get();
        expect(await c.increment(k('seeded'), 3, { initial: 100 })).toBe(103);
        expect(await c.increment(k('seeded'), 2, { initial: 500 })).toBe(105);
        expect(text(await c.get(k('seeded')))).toBe('105');
        expect(await c.increment(k('zero'), 1, { initial: 0 })).toBe(1);
        // Lost (flushed, evicted): the next call re-seeds it from its own `initial`.
        expect(await c.delete(k('seeded'))).toBe(true);
        expect(await c.increment(k('seeded'), 1, { initial: 60, ttlMs: LONG_TTL })).toBe(61);
        expect(await c.increment(k('seeded'), 1, { initial: 60 })).toBe(62);
      });

      it('does not extend the ttl of a counter it increments', async () => {
        const c = get();
        expect(await c.increment(k('window'), 1, { ttlMs: 300 })).toBe(1);
        // Keep incrementing with a ttl: a fixed window restarts at 1 once the first ttl runs out.
        // A provider that renews the ttl on every call never gets there.
        await vi.waitFor(async () => expect(await c.increment(k('window'), 1, { ttlMs: 300 })).toBe(1), {
          timeout: expiryWaitMs,
          interval: 25,
        });
      });

      it('is atomic under concurrency: 200 concurrent increments give 200 distinct results 1..200', async () => {
        const c = get();
        const results = await Promise.all(Array.from({ length: 200 }, () => c.increment(k('hot'))));
        expect([...results].sort((a, b) => a - b)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
        expect(text(await c.get(k('hot')))).toBe('200');
      });
    });

    describe('getMany and setMany', () => {
      it('getMany returns values in the order asked, undefined for missing keys', async () => {
        const c = get();
        await c.set(k('a'), 'A');
        await c.set(k('b'), Uint8Array.from([0, 255]));
        const got = await c.getMany([k('b'), k('missing'), k('a'), k('a')]);
        expect(got).toHaveLength(4);
        expect(Array.from(got[0]!)).toEqual([0, 255]);
        expect(got[1]).toBeUndefined();
        expect(text(got[2])).toBe('A');
        expect(text(got[3])).toBe('A');
        expect(await c.getMany([])).toEqual([]);
      });

      it('setMany writes every entry, strings and bytes, overwriting existing ones', async () => {
        const c = get();
        await c.set(k('x1'), 'old');
        const entries: [string, Uint8Array | string][] = Array.from({ length: 50 }, (_, i) => [k(`x${i}`), `v${i}`]);
        entries.push([k('bin'), Uint8Array.from([0, 1, 0xff])]);
        await c.setMany(entries);
        await c.setMany([]);
        const got = await c.getMany(entries.map(([key]) => key));
        expect(got.slice(0, 50).map(text)).toEqual(Array.from({ length: 50 }, (_, i) => `v${i}`));
        expect(Array.from(got[50]!)).toEqual([0, 1, 0xff]);
      });
    });

    describe('clear', () => {
      it('clear(prefix) removes only keys with that prefix and returns how many', async () => {
        const c = get();
        await c.setMany([
          [k('users:1'), 'a'],
          [k('users:2'), 'b'],
          [k('users:3:x'), 'c'],
          [k('users'), 'not under users:'],
          [k('usersX:1'), 'd'],
          [k('other'), 'e'],
        ]);
        expect(await c.clear(k('users:'))).toBe(3);
        expect(await c.getMany([k('users:1'), k('users:2'), k('users:3:x')])).toEqual([undefined, undefined, undefined]);
        expect(text(await c.get(k('users')))).toBe('not under users:');
        expect(text(await c.get(k('usersX:1')))).toBe('d');
        expect(text(await c.get(k('other')))).toBe('e');
        expect(await c.clear(k('users:'))).toBe(0);
      });

      it('clear(prefix) takes the prefix literally, not as a pattern', async () => {
        const c = get();
        await c.setMany([
          [k('a*b?[c]:1'), '1'],
          [k('a*b?[c]:2'), '2'],
          [k('aXbY[c]:1'), 'glob match only'],
          [k('aXbYc:1'), 'glob match only'],
          [k('a\\*b'), 'backslash'],
        ]);
        expect(await c.clear(k('a*b?[c]:'))).toBe(2);
        expect(text(await c.get(k('aXbY[c]:1')))).toBe('glob match only');
        expect(text(await c.get(k('aXbYc:1')))).toBe('glob match only');
        expect(text(await c.get(k('a\\*b')))).toBe('backslash');
      });

      it('clear(prefix) removes a few hundred keys', async () => {
        const c = get();
        await c.setMany(Array.from({ length: 250 }, (_, i): [string, string] => [k(`bulk:${i}`), String(i)]));
        await c.set(k('bulkier'), 'stays');
        expect(await c.clear(k('bulk:'))).toBe(250);
        expect(await c.has(k('bulk:0'))).toBe(false);
        expect(await c.has(k('bulk:249'))).toBe(false);
        expect(await c.has(k('bulkier'))).toBe(true);
      });
    });

    describe('stats, check, close', () => {
      it('stats counts hits and misses of get', async () => {
        const c = get();
        await c.set(k('hit'), 'v');
        const before = await c.stats();
        await c.get(k('hit'));
        await c.get(k('hit'));
        await c.get(k('miss1'));
        await c.get(k('miss2'));
        await c.get(k('miss3'));
        const after = await c.stats();
        for (const s of [before, after]) {
          expect(Number.isInteger(s.hits) && s.hits >= 0).toBe(true);
          expect(Number.isInteger(s.misses) && s.misses >= 0).toBe(true);
          if (s.keys !== undefined) expect(Number.isInteger(s.keys) && s.keys >= 0).toBe(true);
          if (s.memoryBytes !== undefined) expect(s.memoryBytes).toBeGreaterThanOrEqual(0);
        }
        if (features.shared) {
          // Other clients of the shared backend may count too: only a lower bound holds.
          expect(after.hits - before.hits).toBeGreaterThanOrEqual(2);
          expect(after.misses - before.misses).toBeGreaterThanOrEqual(3);
        } else {
          expect(after.hits - before.hits).toBe(2);
          expect(after.misses - before.misses).toBe(3);
        }
      });

      it('check() reports connected with a latency', async () => {
        const health = await get().check(AbortSignal.timeout(10_000));
        expect(health.status).toBe('connected');
        expect(typeof health.latencyMs).toBe('number');
        expect(health.latencyMs).toBeGreaterThanOrEqual(0);
        expect(Number.isFinite(health.latencyMs)).toBe(true);
      });

      it('close() is idempotent', async () => {
        const other = await opts.create();
        await other.set(k('before-close'), 'v');
        await other.close();
        await other.close();
        // The suite's own instance is unaffected by closing another one.
        await get().set(k('after-close'), 'v');
        expect(await get().has(k('after-close'))).toBe(true);
      });
    });

    if (features.shared) {
      it('shares keys between instances (feature shared)', async () => {
        const other = await opts.create();
        try {
          await get().set(k('shared'), 'from one');
          expect(text(await other.get(k('shared')))).toBe('from one');
          expect(await other.increment(k('count'))).toBe(1);
          expect(await get().increment(k('count'))).toBe(2);
          expect(await other.delete(k('shared'))).toBe(true);
          expect(await get().has(k('shared'))).toBe(false);
        } finally {
          await other.close();
        }
      });
    }

    opts.additionalTests?.(get);
  });
}
