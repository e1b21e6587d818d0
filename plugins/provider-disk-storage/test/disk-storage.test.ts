import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { emptySettings, resolveProviderConfig, settingsFromRecord } from '@apigate/kernel';
import { assertValidManifest, createForTest, failingStream, streamToBuffer } from '@apigate/provider-testkit';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import pkg from '../package.json' with { type: 'json' };
import provider, { DiskStorage } from '../src/index.js';

let base: string;
let root: string;

beforeEach(() => {
  // `root` sits alone inside `base`, so anything written outside it shows up as a stray entry of `base`.
  base = mkdtempSync(path.join(tmpdir(), 'apigate-disk-test-'));
  root = path.join(base, 'root');
});
afterEach(() => rmSync(base, { recursive: true, force: true }));

const tmpFiles = () => readdirSync(path.join(root, 'tmp'));

describe('provider-disk-storage', () => {
  it('has a valid manifest', () => {
    assertValidManifest(pkg, provider);
  });

  describe('configuration', () => {
    it('reads the folder from STORAGE_PATH, else setting storage.disk.path', () => {
      expect(resolveProviderConfig(provider, { STORAGE_PATH: '/srv/objects' }, emptySettings).config).toEqual({ path: '/srv/objects' });
      const settings = settingsFromRecord({ 'storage.disk.path': '/var/lib/apigate/storage' });
      expect(resolveProviderConfig(provider, {}, settings).config).toEqual({ path: '/var/lib/apigate/storage' });
      expect(resolveProviderConfig(provider, {}, emptySettings).config).toEqual({});
    });

    it('defaults to <data dir>/storage and keeps each object as a plain file there', async () => {
      const dataDir = path.join(base, 'data');
      mkdirSync(dataDir);
      const { provider: store } = await createForTest(provider, {}, { dataDir });
      await store.put('docs/readme.txt', 'hello');
      expect(readFileSync(path.join(dataDir, 'storage', 'objects', 'docs', 'readme.txt'), 'utf8')).toBe('hello');
      await store.close();
    });

    it('fails to start with one line naming STORAGE_PATH when the folder cannot be used', async () => {
      const file = path.join(base, 'a-file');
      writeFileSync(file, 'x');
      await expect(createForTest(provider, { path: file })).rejects.toThrow(
        /^storage\/disk failed to start: disk storage: cannot use folder .*a-file from STORAGE_PATH \(setting storage\.disk\.path\): /,
      );
    });
  });

  describe('path safety on the raw provider (no kernel guard in front)', () => {
    it('rejects traversal, absolute and malformed keys itself', async () => {
      const store = await DiskStorage.open(root);
      const bad = ['../x', 'a/../../x', '../../../../etc/passwd', '/etc/passwd', 'a\u0000b', 'a//b', 'a/', './a', ''];
      for (const key of bad) {
        const what = JSON.stringify(key);
        await expect(store.put(key, 'x'), what).rejects.toMatchObject({ name: 'InvalidInputError' });
        await expect(store.get(key), what).rejects.toMatchObject({ name: 'InvalidInputError' });
        await expect(store.head(key), what).rejects.toMatchObject({ name: 'InvalidInputError' });
        await expect(store.delete(key), what).rejects.toMatchObject({ name: 'InvalidInputError' });
      }
      await expect(store.list({ prefix: '../' })).rejects.toMatchObject({ name: 'InvalidInputError' });
      await expect(store.list({ prefix: 'a//' })).rejects.toMatchObject({ name: 'InvalidInputError' });
      expect(readdirSync(base)).toEqual(['root']);
      expect(readdirSync(path.join(root, 'objects'))).toEqual([]);
      expect(tmpFiles()).toEqual([]);
    });

    it('refuses symlinks that lead out of the folder, for reads, writes and deletes', async () => {
      const store = await DiskStorage.open(root);
      const outside = path.join(base, 'outside');
      mkdirSync(outside);
      writeFileSync(path.join(outside, 'secret'), 'top secret');
      symlinkSync(outside, path.join(root, 'objects', 'link'));
      symlinkSync(path.join(outside, 'secret'), path.join(root, 'objects', 'secret-link'));

      const escapes = /resolves outside the storage folder/;
      await expect(store.get('link/secret')).rejects.toThrow(escapes);
      await expect(store.head('secret-link')).rejects.toThrow(escapes);
      await expect(store.get('secret-link')).rejects.toThrow(escapes);
      await expect(store.put('link/planted', 'x')).rejects.toThrow(escapes);
      await expect(store.delete('link/secret')).rejects.toThrow(escapes);
      await expect(store.put('link/deeper/planted', 'x')).rejects.toThrow(escapes);
      expect(readdirSync(outside)).toEqual(['secret']);
      expect(readFileSync(path.join(outside, 'secret'), 'utf8')).toBe('top secret');
      expect((await store.list()).items).toEqual([]);
      expect(tmpFiles()).toEqual([]);
    });

    it('follows symlinks that stay inside the folder', async () => {
      const store = await DiskStorage.open(root);
      await store.put('real.txt', 'inside');
      symlinkSync(path.join(root, 'objects', 'real.txt'), path.join(root, 'objects', 'alias.txt'));
      expect((await streamToBuffer((await store.get('alias.txt'))!.body)).toString()).toBe('inside');
      expect((await store.list()).items.map((i) => i.key)).toEqual(['alias.txt', 'real.txt']);
    });
  });

  describe('atomic writes', () => {
    it('leaves no temp file and no object after a failed body stream or a wrong contentLength', async () => {
      const { provider: store } = await createForTest(provider, { path: root });
      await expect(store.put('f/failed.bin', failingStream(randomBytes(256 * 1024)))).rejects.toThrow(/failed on purpose/);
      await expect(store.put('f/short.bin', Readable.from([Buffer.from('abc')]), { contentLength: 10 })).rejects.toMatchObject({
        name: 'ProviderError',
        retryable: false,
        message: expect.stringContaining('was 3 bytes but contentLength said 10'),
      });
      expect(tmpFiles()).toEqual([]);
      expect(existsSync(path.join(root, 'objects', 'f', 'failed.bin'))).toBe(false);
      expect(await store.head('f/short.bin')).toBeUndefined();
      await store.close();
    });

    it('writes to disk while the body is still streaming, not after buffering it', async () => {
      const store = await DiskStorage.open(root);
      const chunk = randomBytes(1024 * 1024);
      let writtenWhileStreaming = 0;
      const body = Readable.from(
        (async function* () {
          for (let i = 0; i < 6; i++) {
            if (i === 4) {
              const [temp] = tmpFiles();
              writtenWhileStreaming = temp ? readFileSync(path.join(root, 'tmp', temp)).byteLength : 0;
            }
            yield chunk;
          }
        })(),
        { objectMode: false },
      );
      expect((await store.put('streamed.bin', body)).size).toBe(6 * chunk.byteLength);
      // By the time the 5th chunk is asked for, the writer has already stored at least the first two.
      expect(writtenWhileStreaming).toBeGreaterThanOrEqual(2 * chunk.byteLength);
    });

    it('ignores a sidecar that belongs to an older version (a crash between the two renames)', async () => {
      const store = await DiskStorage.open(root);
      await store.put('doc.txt', 'version one', { contentType: 'text/plain', metadata: { v: '1' } });
      // What a crash right after the data rename leaves: new data, the old sidecar.
      const staged = path.join(root, 'tmp', 'crash.data');
      writeFileSync(staged, 'version two!');
      renameSync(staged, path.join(root, 'objects', 'doc.txt'));
      const head = await store.head('doc.txt');
      expect(head).toMatchObject({ key: 'doc.txt', size: 12 });
      expect(head?.metadata).toBeUndefined();
      expect(head?.contentType).toBeUndefined();
      expect((await streamToBuffer((await store.get('doc.txt'))!.body)).toString()).toBe('version two!');
    });

    it('sweeps temp files a crash left behind, but not ones another instance may still be writing', async () => {
      await DiskStorage.open(root);
      const stale = path.join(root, 'tmp', 'stale.data');
      const fresh = path.join(root, 'tmp', 'fresh.data');
      writeFileSync(stale, 'half an upload');
      writeFileSync(fresh, 'an upload in progress');
      const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
      utimesSync(stale, twoHoursAgo, twoHoursAgo);
      await DiskStorage.open(root);
      expect(tmpFiles()).toEqual(['fresh.data']);
    });
  });

  describe('objects and folders', () => {
    it('keeps data, content type and metadata across a new instance', async () => {
      const first = await createForTest(provider, { path: root });
      const data = randomBytes(100_000);
      await first.provider.put('kept/data.bin', data, { contentType: 'application/x-kept', metadata: { owner: 'ops' } });
      await first.provider.close();
      const second = await createForTest(provider, { path: root });
      const got = await second.provider.get('kept/data.bin');
      expect(got).toMatchObject({ size: data.byteLength, contentType: 'application/x-kept', metadata: { owner: 'ops' } });
      expect((await streamToBuffer(got!.body)).equals(data)).toBe(true);
      await second.provider.close();
    });

    it('explains, without retry, a key that collides with a folder or an object of the same name', async () => {
      const { provider: store } = await createForTest(provider, { path: root });
      await store.put('x', 'object');
      await expect(store.put('x/y', 'under an object')).rejects.toMatchObject({
        name: 'ProviderError',
        retryable: false,
        message: expect.stringContaining('a part of its path is already an object'),
      });
      await store.put('d/e', 'in a folder');
      await expect(store.put('d', 'over a folder')).rejects.toMatchObject({
        retryable: false,
        message: expect.stringContaining('it is already a folder of other objects'),
      });
      expect(await store.get('d')).toBeUndefined();
      expect(await store.head('d')).toBeUndefined();
      expect(await store.delete('d')).toBe(false);
      expect((await store.list()).items.map((i) => i.key)).toEqual(['d/e', 'x']);
      expect(tmpFiles()).toEqual([]);
      await store.close();
    });

    it('removes folders a delete leaves empty', async () => {
      const store = await DiskStorage.open(root);
      await store.put('a/b/c/d.txt', 'x');
      await store.put('a/keep.txt', 'x');
      expect(await store.delete('a/b/c/d.txt')).toBe(true);
      expect(readdirSync(path.join(root, 'objects', 'a'))).toEqual(['keep.txt']);
    });

    it('streams a large object out in bounded chunks', async () => {
      const store = await DiskStorage.open(root);
      await store.put('big.bin', randomBytes(4 * 1024 * 1024));
      const got = await store.get('big.bin');
      const sizes: number[] = [];
      for await (const c of got!.body) sizes.push((c as Buffer).byteLength);
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(4 * 1024 * 1024);
      expect(Math.max(...sizes)).toBeLessThanOrEqual(256 * 1024);
    });
  });

  describe('health', () => {
    it('reports free space, and an error once the folder is gone', async () => {
      const store = await DiskStorage.open(root);
      const ok = await store.check(AbortSignal.timeout(5000));
      expect(ok.status).toBe('connected');
      expect(ok.detail).toMatch(/^\d+ MiB free$/);
      rmSync(path.join(root, 'objects'), { recursive: true });
      const bad = await store.check(AbortSignal.timeout(5000));
      expect(bad.status).toBe('error');
      expect(bad.error).toContain(root);
      await store.close();
      await store.close();
    });
  });
});
