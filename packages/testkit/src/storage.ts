import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { compareStorageKeys, type GetOptions, type ObjectInfo, type StorageFeatures, type StorageProvider } from '@apigate/kernel';
import { beforeEach, describe, expect, it } from 'vitest';
import { instancePerTest } from './expectations.js';
import { type DefinitionOf, describeSuite, resolveSuite, type SuiteSetup } from './suite.js';
import { asBuffer, chunkedStream, failingStream, sha256, streamToBuffer, uniquePrefix } from './util.js';

export interface StorageSuiteOptions {
  /** Title of the describe block (default "storage provider conformance"). */
  name?: string;
  /** Timeout of each test in ms (default 60 s). */
  timeout?: number;
  /**
   * A fresh instance, exactly as the gateway sees it: return `(await createForTest(def, config)).provider`
   * so calls go through the kernel's instrumentation (key guards, typed errors). Called before every
   * test; the suite deletes what the test wrote and closes the instance after.
   */
  create: () => StorageProvider | Promise<StorageProvider>;
  /**
   * With `features.persistent`: a new instance over the same backend as the instances `create`
   * returns. The suite writes through one instance, closes it, and reads through one from `reopen`.
   * Defaults to `create`, which is right when every instance uses one backend (one bucket, one
   * fixed directory); pass it when `create` makes a new backend each time.
   */
  reopen?: () => StorageProvider | Promise<StorageProvider>;
  /** The provider's declared features (pass `definition.features`). */
  features?: StorageFeatures;
  /** Size of the large stream round trip (default 6 MiB and a bit, past S3's multipart threshold). */
  largeObjectBytes?: number;
  /** Provider-specific tests registered inside the suite; `get()` returns the current test's instance. */
  additionalTests?: (get: () => StorageProvider) => void;
}

/** What `describeStorageProvider(definition, setup)` takes besides the setup every suite takes. */
export interface StorageSuiteSetup extends SuiteSetup, Pick<StorageSuiteOptions, 'reopen' | 'largeObjectBytes' | 'additionalTests'> {}

const TEST_TIMEOUT = 60_000;

/** Bytes that trip up text handling: NUL, invalid UTF-8, every byte value. */
const awkwardBytes = (extra = 0): Buffer =>
  Buffer.concat([
    Buffer.from([0, 0xc3, 0x28, 0xff, 0xfe, 0x00]),
    Buffer.from(Uint8Array.from({ length: 256 }, (_, i) => i)),
    randomBytes(extra),
  ]);

async function read(s: StorageProvider, key: string, opts?: GetOptions): Promise<{ info: ObjectInfo; data: Buffer } | undefined> {
  const got = await s.get(key, opts);
  if (!got) return undefined;
  const { body, ...info } = got;
  expect(body, `get("${key}").body must be a Readable stream`).toBeInstanceOf(Readable);
  return { info, data: await streamToBuffer(body) };
}

/** Every object under `prefix`, following cursors; fails on a cursor loop instead of hanging. */
async function listAll(s: StorageProvider, prefix: string, limit?: number): Promise<{ items: ObjectInfo[]; pages: number[] }> {
  const items: ObjectInfo[] = [];
  const pages: number[] = [];
  let cursor: string | undefined;
  const seen = new Set<string>();
  do {
    const page = await s.list({ prefix, ...(cursor !== undefined ? { cursor } : {}), ...(limit !== undefined ? { limit } : {}) });
    items.push(...page.items);
    pages.push(page.items.length);
    cursor = page.cursor;
    if (cursor !== undefined) {
      expect(seen.has(cursor), `list cursor "${cursor}" came back twice`).toBe(false);
      seen.add(cursor);
    }
    expect(pages.length, 'list kept returning cursors').toBeLessThan(10_000);
  } while (cursor !== undefined);
  return { items, pages };
}

/**
 * The storage conformance suite. Each test gets a new instance of `definition`, made by
 * `createForTest` from the setup's `config` and `secrets`. Every key lives under a prefix unique to
 * this run and test, so the suite can share a real backend (an S3 bucket, a directory) with other runs.
 */
export function describeStorageProvider(definition: DefinitionOf<'storage'>, setup?: StorageSuiteSetup): void;
/** @deprecated The 1.0 form: pass the definition and its config instead, `describeStorageProvider(definition, { config })`. */
export function describeStorageProvider(opts: StorageSuiteOptions): void;
export function describeStorageProvider(first: DefinitionOf<'storage'> | StorageSuiteOptions, setup?: StorageSuiteSetup): void {
  const suite = resolveSuite('storage', 'storage provider conformance', first, setup);
  const opts = suite.opts;
  const features = opts.features ?? {};
  const largeBytes = opts.largeObjectBytes ?? 6 * 1024 * 1024 + 12_345;
  const runPrefix = uniquePrefix('storage');

  describeSuite(suite, TEST_TIMEOUT, () => {
    let prefix = '';
    let testNo = 0;
    /** A key unique to this run and test. */
    const k = (name: string) => `${prefix}${name}`;
    const keysOf = (items: ObjectInfo[]) => items.map((i) => i.key);
    beforeEach(() => {
      prefix = `${runPrefix}/${++testNo}/`;
    });
    const get = instancePerTest('storage', opts.create, {
      beforeClose: async (s) => {
        for (const item of (await listAll(s, prefix)).items) await s.delete(item.key);
      },
    });

    describe('put and get', () => {
      it('puts and gets a Buffer body byte-exact', async () => {
        const s = get();
        const data = awkwardBytes(1000);
        const info = await s.put(k('buf.bin'), data);
        expect(info.key).toBe(k('buf.bin'));
        expect(info.size).toBe(data.byteLength);
        const got = await read(s, k('buf.bin'));
        expect(got?.info.key).toBe(k('buf.bin'));
        expect(got?.info.size).toBe(data.byteLength);
        expect(got?.data.equals(data)).toBe(true);
      });

      it('puts a Uint8Array that is a view into a larger buffer', async () => {
        const s = get();
        const backing = randomBytes(4096);
        const view = new Uint8Array(backing.buffer, backing.byteOffset + 100, 1000);
        await s.put(k('view.bin'), view);
        const got = await read(s, k('view.bin'));
        expect(got?.data.equals(asBuffer(view))).toBe(true);
      });

      it('stores a string body as UTF-8', async () => {
        const s = get();
        const body = 'héllo wörld ✓ 日本語 🚀\n';
        const info = await s.put(k('text.txt'), body);
        expect(info.size).toBe(Buffer.byteLength(body, 'utf8'));
        const got = await read(s, k('text.txt'));
        expect(got?.data.equals(Buffer.from(body, 'utf8'))).toBe(true);
        expect((await s.head(k('text.txt')))?.size).toBe(Buffer.byteLength(body, 'utf8'));
      });

      it('puts a stream body without contentLength', async () => {
        const s = get();
        const data = randomBytes(300 * 1024 + 7);
        const info = await s.put(k('stream-unknown.bin'), chunkedStream(data));
        expect(info.size).toBe(data.byteLength);
        expect((await read(s, k('stream-unknown.bin')))?.data.equals(data)).toBe(true);
      });

      it('puts a stream body with contentLength', async () => {
        const s = get();
        const data = randomBytes(300 * 1024 + 7);
        const info = await s.put(k('stream-known.bin'), chunkedStream(data), { contentLength: data.byteLength });
        expect(info.size).toBe(data.byteLength);
        expect((await read(s, k('stream-known.bin')))?.data.equals(data)).toBe(true);
      });

      it('round-trips a multi-MiB stream byte-exact, with and without contentLength', async () => {
        const s = get();
        const data = randomBytes(largeBytes);
        const want = await sha256(data);
        await s.put(k('large-unknown.bin'), chunkedStream(data), { contentType: 'application/octet-stream' });
        await s.put(k('large-known.bin'), chunkedStream(data), { contentLength: data.byteLength });
        for (const key of ['large-unknown.bin', 'large-known.bin']) {
          const got = await s.get(k(key));
          expect(got, key).toBeDefined();
          expect(got!.size, key).toBe(data.byteLength);
          expect(await sha256(got!.body), key).toBe(want);
          expect((await s.head(k(key)))?.size, key).toBe(data.byteLength);
        }
      });

      it('puts and gets an empty object', async () => {
        const s = get();
        expect((await s.put(k('empty'), new Uint8Array(0))).size).toBe(0);
        expect((await s.put(k('empty-stream'), Readable.from([]))).size).toBe(0);
        for (const key of ['empty', 'empty-stream']) {
          const got = await read(s, k(key));
          expect(got, key).toBeDefined();
          expect(got!.data.byteLength, key).toBe(0);
          expect((await s.head(k(key)))?.size, key).toBe(0);
        }
        expect((await listAll(s, prefix)).items.map((i) => [i.key, i.size])).toEqual([
          [k('empty'), 0],
          [k('empty-stream'), 0],
        ]);
      });

      it('rejects a put whose body stream fails, leaving no object and the previous version intact', async () => {
        const s = get();
        await expect(s.put(k('failed.bin'), failingStream(randomBytes(64 * 1024)))).rejects.toThrow();
        expect(await s.head(k('failed.bin'))).toBeUndefined();
        expect(await s.get(k('failed.bin'))).toBeUndefined();

        await s.put(k('kept.bin'), 'previous version', { contentType: 'text/plain' });
        await expect(s.put(k('kept.bin'), failingStream(randomBytes(64 * 1024)))).rejects.toThrow();
        expect((await read(s, k('kept.bin')))?.data.toString()).toBe('previous version');
        expect((await s.head(k('kept.bin')))?.contentType).toBe('text/plain');
        expect(keysOf((await listAll(s, prefix)).items)).toEqual([k('kept.bin')]);
      });
    });

    describe('content type and metadata', () => {
      it('keeps content type and metadata through put, head and get', async () => {
        const s = get();
        const metadata = { owner: 'alice', purpose: 'conformance-test', empty: '' };
        const info = await s.put(k('meta.json'), '{"a":1}', { contentType: 'application/json', metadata });
        expect(info.key).toBe(k('meta.json'));
        expect(info.size).toBe(7);
        const head = await s.head(k('meta.json'));
        expect(head).toMatchObject({ key: k('meta.json'), size: 7, contentType: 'application/json', metadata });
        const got = await read(s, k('meta.json'));
        expect(got?.info).toMatchObject({ key: k('meta.json'), size: 7, contentType: 'application/json', metadata });
        expect(got?.data.toString()).toBe('{"a":1}');
        if (head?.lastModified !== undefined) {
          expect(head.lastModified).toBeInstanceOf(Date);
          expect(Math.abs(head.lastModified.getTime() - Date.now())).toBeLessThan(24 * 3600_000);
        }
      });

      it('keeps a content type with parameters; without one reports none or a generic binary type', async () => {
        const s = get();
        await s.put(k('typed.txt'), 'x', { contentType: 'text/plain; charset=utf-8' });
        expect((await s.head(k('typed.txt')))?.contentType).toBe('text/plain; charset=utf-8');
        await s.put(k('untyped'), 'x');
        const untyped = await s.head(k('untyped'));
        expect([undefined, 'application/octet-stream', 'binary/octet-stream']).toContain(untyped?.contentType);
        expect(untyped?.metadata ?? {}).toEqual({});
      });

      it('an overwrite replaces body, content type and metadata', async () => {
        const s = get();
        const first = await s.put(k('over.txt'), 'first version, longer', { contentType: 'text/plain', metadata: { v: '1', gone: 'yes' } });
        const second = await s.put(k('over.txt'), Uint8Array.from([1, 2, 3]), {
          contentType: 'application/x-test',
          metadata: { v: '2' },
        });
        const got = await read(s, k('over.txt'));
        expect(Array.from(got!.data)).toEqual([1, 2, 3]);
        expect(got?.info.size).toBe(3);
        const head = await s.head(k('over.txt'));
        expect(head?.contentType).toBe('application/x-test');
        expect(head?.metadata).toEqual({ v: '2' });
        if (first.etag !== undefined && second.etag !== undefined) expect(second.etag).not.toBe(first.etag);
        if (head?.etag !== undefined && second.etag !== undefined) expect(head.etag).toBe(second.etag);
        expect((await listAll(s, prefix)).items.map((i) => [i.key, i.size])).toEqual([[k('over.txt'), 3]]);

        await s.put(k('over.txt'), 'third');
        expect((await s.head(k('over.txt')))?.metadata ?? {}).toEqual({});
      });
    });

    describe('ranges', () => {
      it('reads inclusive byte ranges, clipping an end past the last byte', async () => {
        const s = get();
        const data = randomBytes(1000);
        await s.put(k('range.bin'), data);
        const cases: [GetOptions['range'], Buffer][] = [
          [{ start: 0, end: 0 }, data.subarray(0, 1)],
          [{ start: 10, end: 19 }, data.subarray(10, 20)],
          [{ start: 990 }, data.subarray(990)],
          [{ start: 0 }, data],
          [{ start: 999, end: 999 }, data.subarray(999)],
          [{ start: 500, end: 5000 }, data.subarray(500)],
        ];
        for (const [range, want] of cases) {
          const got = await read(s, k('range.bin'), { range: range! });
          expect(got?.data.byteLength, JSON.stringify(range)).toBe(want.byteLength);
          expect(got?.data.equals(want), JSON.stringify(range)).toBe(true);
        }
      });
    });

    describe('missing objects and delete', () => {
      it('head and get of a missing key return undefined', async () => {
        const s = get();
        expect(await s.head(k('missing'))).toBeUndefined();
        expect(await s.get(k('missing'))).toBeUndefined();
        expect(await s.get(k('missing/deeper/still'))).toBeUndefined();
        expect(await s.get(k('missing'), { range: { start: 0, end: 9 } })).toBeUndefined();
      });

      it('delete returns true, then false, and the object is gone from head, get and list', async () => {
        const s = get();
        await s.put(k('dir/a'), 'a');
        await s.put(k('dir/b'), 'b');
        expect(await s.delete(k('dir/a'))).toBe(true);
        expect(await s.delete(k('dir/a'))).toBe(false);
        expect(await s.delete(k('never-written'))).toBe(false);
        expect(await s.head(k('dir/a'))).toBeUndefined();
        expect(await s.get(k('dir/a'))).toBeUndefined();
        expect(keysOf((await listAll(s, prefix)).items)).toEqual([k('dir/b')]);
        expect((await read(s, k('dir/b')))?.data.toString()).toBe('b');
      });

      it('a key can become an object once everything under it as a folder is deleted', async () => {
        const s = get();
        await s.put(k('node/leaf/deep'), 'deep');
        expect(await s.delete(k('node/leaf/deep'))).toBe(true);
        await s.put(k('node/leaf'), 'leaf');
        expect((await read(s, k('node/leaf')))?.data.toString()).toBe('leaf');
        expect(keysOf((await listAll(s, prefix)).items)).toEqual([k('node/leaf')]);
      });
    });

    describe('list', () => {
      it('lists objects under a prefix, sorted, with their sizes', async () => {
        const s = get();
        for (const [key, body] of [
          ['l/b', 'bb'],
          ['l/c/d', 'dddd'],
          ['l/a', 'a'],
          ['l/c/a', 'aaa'],
          ['lx', 'outside'],
          ['l-other/a', 'outside'],
        ] as const) {
          await s.put(k(key), body);
        }
        const { items } = await listAll(s, k('l/'));
        expect(items.map((i) => [i.key, i.size])).toEqual([
          [k('l/a'), 1],
          [k('l/b'), 2],
          [k('l/c/a'), 3],
          [k('l/c/d'), 4],
        ]);
        expect(keysOf((await listAll(s, k('l/c/'))).items)).toEqual([k('l/c/a'), k('l/c/d')]);
        expect((await s.list({ prefix: k('nothing/') })).items).toEqual([]);
        expect((await s.list({ prefix: k('nothing/') })).cursor).toBeUndefined();
      });

      it('treats the list prefix as a plain string prefix, not a folder', async () => {
        const s = get();
        for (const key of ['p/pre/x', 'p/prefix', 'p/pr', 'p/pre-y/z']) await s.put(k(key), key);
        expect(keysOf((await listAll(s, k('p/pre'))).items)).toEqual([k('p/pre-y/z'), k('p/pre/x'), k('p/prefix')]);
        expect(keysOf((await listAll(s, k('p/prefix'))).items)).toEqual([k('p/prefix')]);
      });

      it('sorts keys by code point, across "/" boundaries', async () => {
        const s = get();
        const names = ['s/z', 's/a0', 's/a/b', 's/é', 's/a.txt', 's/B', 's/a-b', 's/a/a/a'];
        for (const name of names) await s.put(k(name), name);
        const want = names.map(k).sort(compareStorageKeys);
        expect(want.map((key) => key.slice(prefix.length))).toEqual(['s/B', 's/a-b', 's/a.txt', 's/a/a/a', 's/a/b', 's/a0', 's/z', 's/é']);
        expect(keysOf((await listAll(s, k('s/'))).items)).toEqual(want);
        // Page ends inside a folder with more after it, and at a folder's edge.
        for (const limit of [1, 2, 3]) expect(keysOf((await listAll(s, k('s/'), limit)).items), `limit ${limit}`).toEqual(want);
      });

      it('paginates with cursor and limit: no duplicates, no gaps, cursor only while more follow', async () => {
        const s = get();
        // Some at the top, most in folders of up to six, so page boundaries fall inside folders.
        const keys = Array.from({ length: 25 }, (_, i) => {
          const n = String(i).padStart(2, '0');
          return k(i % 4 === 0 ? `page/${n}` : `page/d${Math.floor(i / 6)}/${n}`);
        });
        // Written out of order, so sorting is the provider's work.
        const shuffled = keys.map((_, i) => keys[(i * 7) % keys.length]!);
        await Promise.all(shuffled.map((key) => s.put(key, key)));
        const sorted = [...keys].sort(compareStorageKeys);

        const { items, pages } = await listAll(s, k('page/'), 7);
        expect(pages).toEqual([7, 7, 7, 4]);
        expect(keysOf(items)).toEqual(sorted);

        const first = await s.list({ prefix: k('page/'), limit: 7 });
        expect(first.cursor).toBeDefined();
        const rest = await s.list({ prefix: k('page/'), limit: 100, cursor: first.cursor! });
        expect(rest.cursor).toBeUndefined();
        expect([...keysOf(first.items), ...keysOf(rest.items)]).toEqual(sorted);

        const all = await s.list({ prefix: k('page/'), limit: 1000 });
        expect(keysOf(all.items)).toEqual(sorted);
        expect(all.cursor).toBeUndefined();

        const one = await listAll(s, k('page/'), 1);
        expect(one.pages.filter((n) => n > 0)).toHaveLength(25);
        expect(keysOf(one.items)).toEqual(sorted);
      });
    });

    describe('keys', () => {
      it('handles nested, unicode and punctuation keys in put, head, get, list and delete', async () => {
        const s = get();
        const names = [
          'deep/a/b/c/d/e/f/g.txt',
          'ünïcödé/日本語/файл.txt',
          'emoji/🚀 launch.bin',
          "punct/a b+c=d&e@f,g;h$i!j'k(l)m~n",
          'dots/.hidden/..x/...y',
        ];
        for (const name of names) await s.put(k(name), `body of ${name}`, { metadata: { n: String(names.indexOf(name)) } });
        for (const name of names) {
          expect((await read(s, k(name)))?.data.toString(), name).toBe(`body of ${name}`);
          expect((await s.head(k(name)))?.metadata, name).toEqual({ n: String(names.indexOf(name)) });
        }
        expect(keysOf((await listAll(s, prefix)).items)).toEqual(names.map(k).sort(compareStorageKeys));
        for (const name of names) expect(await s.delete(k(name)), name).toBe(true);
        expect((await listAll(s, prefix)).items).toEqual([]);
      });

      it('rejects unsafe keys with InvalidInputError before the provider sees them', async () => {
        const s = get();
        const bad = ['../x', `${k('')}../../escape`, '/abs', 'a\u0000b', 'a\nb', 'a\\b', './a', ''];
        const invalid = { name: 'InvalidInputError', code: 'INVALID_INPUT' };
        const why = 'create() must return the instance from createForTest (the kernel guards keys)';
        for (const key of bad) {
          await expect(s.put(key, 'x'), `${why}: put(${JSON.stringify(key)})`).rejects.toMatchObject(invalid);
          await expect(s.get(key), `get(${JSON.stringify(key)})`).rejects.toMatchObject(invalid);
          await expect(s.head(key), `head(${JSON.stringify(key)})`).rejects.toMatchObject(invalid);
          await expect(s.delete(key), `delete(${JSON.stringify(key)})`).rejects.toMatchObject(invalid);
          if (features.signedUrls && key !== '') {
            await expect(s.signedUrl!(key, { method: 'GET', expiresInSeconds: 60 })).rejects.toMatchObject(invalid);
          }
        }
        await expect(s.list({ prefix: '../' })).rejects.toMatchObject(invalid);
        await expect(s.list({ prefix: '/abs/' })).rejects.toMatchObject(invalid);
        expect((await listAll(s, runPrefix)).items.filter((i) => i.key.includes('escape'))).toEqual([]);
      });
    });

    describe('concurrency', () => {
      it('concurrent puts to one key leave one complete version with its own metadata', async () => {
        const s = get();
        const bodies = Array.from({ length: 8 }, () => randomBytes(128 * 1024 + 17));
        const hashes = await Promise.all(bodies.map((b) => sha256(b)));
        const results = await Promise.allSettled(
          bodies.map((b, i) => s.put(k('contended.bin'), chunkedStream(b), { metadata: { sha: hashes[i]! } })),
        );
        expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
        const got = await read(s, k('contended.bin'));
        const hash = await sha256(got!.data);
        expect(hashes).toContain(hash);
        expect((await s.head(k('contended.bin')))?.metadata).toEqual({ sha: hash });
      });

      it('concurrent puts to different keys all land intact', async () => {
        const s = get();
        const bodies = Array.from({ length: 12 }, (_, i) => randomBytes(32 * 1024 + i));
        await Promise.all(bodies.map((b, i) => s.put(k(`many/${i}/obj`), chunkedStream(b))));
        for (const [i, b] of bodies.entries()) expect((await read(s, k(`many/${i}/obj`)))?.data.equals(b), String(i)).toBe(true);
        expect((await listAll(s, k('many/'))).items).toHaveLength(12);
      });
    });

    describe('health and lifecycle', () => {
      it('check() reports connected with a latency', async () => {
        const health = await get().check(AbortSignal.timeout(10_000));
        expect(health.status).toBe('connected');
        expect(typeof health.latencyMs).toBe('number');
        expect(Number.isFinite(health.latencyMs) && (health.latencyMs as number) >= 0).toBe(true);
      });

      it('close() is idempotent', async () => {
        const other = await opts.create();
        await other.head(k('anything'));
        await other.close();
        await other.close();
        await get().put(k('after-close'), 'v');
        expect((await get().head(k('after-close')))?.size).toBe(1);
      });

      it('has signedUrl exactly when it declares the signedUrls feature', () => {
        expect(typeof get().signedUrl === 'function').toBe(features.signedUrls === true);
      });
    });

    if (features.persistent) {
      it('keeps objects, content type and metadata across a new instance (feature persistent)', async () => {
        const writer = await opts.create();
        const data = awkwardBytes(10_000);
        try {
          await writer.put(k('persist/obj.bin'), data, { contentType: 'application/x-kept', metadata: { kept: 'yes' } });
        } finally {
          await writer.close();
        }
        const reader = await (opts.reopen ?? opts.create)();
        try {
          const got = await read(reader, k('persist/obj.bin'));
          expect(got?.data.equals(data)).toBe(true);
          expect(got?.info).toMatchObject({ size: data.byteLength, contentType: 'application/x-kept', metadata: { kept: 'yes' } });
          expect(keysOf((await listAll(reader, k('persist/'))).items)).toEqual([k('persist/obj.bin')]);
          expect(await reader.delete(k('persist/obj.bin'))).toBe(true);
        } finally {
          await reader.close();
        }
      });
    }

    if (features.signedUrls) {
      describe('signed URLs (feature signedUrls)', () => {
        it('serves a GET through a signed URL with plain fetch', async () => {
          const s = get();
          const data = awkwardBytes(5000);
          await s.put(k('signed/get.bin'), data, { contentType: 'application/x-signed' });
          const url = await s.signedUrl!(k('signed/get.bin'), { method: 'GET', expiresInSeconds: 300 });
          const res = await fetch(url);
          expect(res.status).toBe(200);
          expect(Buffer.from(await res.arrayBuffer()).equals(data)).toBe(true);
        });

        it('accepts a PUT through a signed URL with plain fetch', async () => {
          const s = get();
          const data = awkwardBytes(5000);
          const url = await s.signedUrl!(k('signed/put.bin'), { method: 'PUT', expiresInSeconds: 300 });
          const res = await fetch(url, { method: 'PUT', body: data });
          await res.arrayBuffer();
          expect(res.ok, `PUT answered ${res.status}`).toBe(true);
          expect((await read(s, k('signed/put.bin')))?.data.equals(data)).toBe(true);
        });

        it('refuses a signed URL whose key was changed', async () => {
          const s = get();
          await s.put(k('signed/a.bin'), 'a');
          await s.put(k('signed/b.bin'), 'b');
          const url = new URL(await s.signedUrl!(k('signed/a.bin'), { method: 'GET', expiresInSeconds: 300 }));
          expect(url.pathname.endsWith('/a.bin') || url.searchParams.toString().includes('a.bin')).toBe(true);
          const tampered = url.toString().replace('a.bin', 'b.bin');
          const res = await fetch(tampered);
          await res.arrayBuffer();
          expect(res.status).toBeGreaterThanOrEqual(400);
        });
      });
    }

    opts.additionalTests?.(get);
  });
}
