import { createHash, randomBytes } from 'node:crypto';
import type { BigIntStats, Dirent } from 'node:fs';
import { constants as fsc } from 'node:fs';
import { access, type FileHandle, mkdir, open, readdir, readFile, realpath, rename, rmdir, stat, statfs, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import {
  assertStorageKey,
  assertStoragePrefix,
  compareStorageKeys,
  type GetOptions,
  type Health,
  InvalidInputError,
  type ListOptions,
  type ListResult,
  type ObjectInfo,
  type PutOptions,
  type StorageProvider,
} from '@apigate/kernel';

const MAX_LIST_LIMIT = 1000;
/** Temp files older than this at start-up are leftovers of a crash; younger ones may be another instance's upload. */
const STALE_TEMP_MS = 60 * 60 * 1000;
/** Below this much free space `check` reports degraded: writes are about to fail. */
const LOW_SPACE_BYTES = 100 * 1024 * 1024;

/** Sidecar JSON kept next to (not in) each object: content type, metadata, and which file version it describes. */
interface Sidecar {
  v: 1;
  key: string;
  contentType?: string;
  metadata: Record<string, string>;
  etag: string;
  size: number;
  /** Inode and mtime (ns) of the data file this sidecar belongs to; a mismatch means a crash between the two renames. */
  ino: string;
  mtimeNs: string;
}

/** A failure that retrying will not fix (the kernel reads `retryable`). */
const finalError = (message: string, code?: string): Error => Object.assign(new Error(message), { retryable: false }, code ? { code } : {});

const errno = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | undefined)?.code;

async function ignoring<T>(codes: string[], p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (err) {
    if (codes.includes(errno(err) ?? '')) return undefined;
    throw err;
  }
}

/** Flushes a directory entry (a rename or unlink) to disk; without it a crash can undo a finished rename. */
async function fsyncDir(dir: string): Promise<void> {
  const h = await open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

async function writeAll(h: FileHandle, b: Uint8Array): Promise<void> {
  let off = 0;
  while (off < b.byteLength) off += (await h.write(b, off, b.byteLength - off)).bytesWritten;
}

/** The disk layout keeps one object per file, so keys must map to real, distinct paths. */
function assertDiskKey(key: unknown, what = 'storage key'): asserts key is string {
  assertStorageKey(key, what);
  if (key.split('/').includes(''))
    throw new InvalidInputError(`${what} must not have empty segments ("a//b" or a trailing "/") on disk storage`);
}

/**
 * Objects as files under `<root>/objects/<key>`, sidecars under `<root>/meta`, uploads staged
 * in `<root>/tmp` on the same filesystem and renamed into place, so a reader or a crash never
 * sees half an object.
 */
export class DiskStorage implements StorageProvider {
  readonly objectsDir: string;
  readonly metaDir: string;
  readonly tmpDir: string;
  /** Serialises the commit step (two renames) per key, so data and sidecar always match in one process. */
  private readonly locks = new Map<string, Promise<void>>();

  private constructor(
    readonly root: string,
    /** Real path of objectsDir: every resolved path must stay under it. */
    private readonly objectsReal: string,
  ) {
    this.objectsDir = path.join(root, 'objects');
    this.metaDir = path.join(root, 'meta');
    this.tmpDir = path.join(root, 'tmp');
  }

  /** Creates the layout under `root` and sweeps temp files a crash left behind. */
  static async open(root: string): Promise<DiskStorage> {
    const abs = path.resolve(root);
    for (const sub of ['objects', 'meta', 'tmp']) await mkdir(path.join(abs, sub), { recursive: true, mode: 0o700 });
    const [objects, tmp] = await Promise.all([stat(path.join(abs, 'objects')), stat(path.join(abs, 'tmp'))]);
    if (objects.dev !== tmp.dev) {
      throw finalError(`disk storage: ${abs}/tmp and ${abs}/objects must be on one filesystem so uploads can be renamed into place`);
    }
    const storage = new DiskStorage(abs, await realpath(path.join(abs, 'objects')));
    await storage.sweepTemp();
    return storage;
  }

  private async sweepTemp(): Promise<void> {
    const cutoff = Date.now() - STALE_TEMP_MS;
    for (const name of await readdir(this.tmpDir)) {
      const p = path.join(this.tmpDir, name);
      const s = await ignoring(['ENOENT'], stat(p));
      if (s?.isFile() && s.mtimeMs < cutoff) await ignoring(['ENOENT'], unlink(p));
    }
  }

  private inside(real: string): boolean {
    return real.startsWith(this.objectsReal + path.sep);
  }

  /**
   * The file path for `key`, after checking that neither `..` nor a symlink takes it out of the
   * objects folder. The kernel already rejects bad keys; this holds even when it is bypassed.
   */
  private async locate(key: unknown): Promise<string> {
    assertDiskKey(key);
    const lexical = path.join(this.objectsDir, ...key.split('/'));
    if (!lexical.startsWith(this.objectsDir + path.sep)) throw new InvalidInputError('storage key must stay inside the storage folder');
    // Resolve the longest existing part the way the OS will, then re-attach the rest.
    let probe = lexical;
    let rest = '';
    for (;;) {
      let real: string | undefined;
      try {
        real = await realpath(probe);
      } catch (err) {
        if (errno(err) !== 'ENOENT' && errno(err) !== 'ENOTDIR') throw err;
      }
      if (real !== undefined) {
        if (!this.inside(rest ? path.join(real, rest) : real)) {
          throw finalError(`disk storage: "${key}" resolves outside the storage folder through a symlink; refusing it`, 'ESCAPE');
        }
        return lexical;
      }
      rest = rest ? path.join(path.basename(probe), rest) : path.basename(probe);
      probe = path.dirname(probe);
    }
  }

  private sidecarPath(key: string): string {
    const h = createHash('sha256').update(key).digest('hex');
    return path.join(this.metaDir, h.slice(0, 2), `${h}.json`);
  }

  private tempPath(ext: string): string {
    return path.join(this.tmpDir, `${Date.now().toString(36)}-${randomBytes(8).toString('hex')}.${ext}`);
  }

  private async withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(key) ?? Promise.resolve();
    const run = previous.then(fn);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.locks.set(key, tail);
    try {
      return await run;
    } finally {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    }
  }

  /** Writes a file in tmp, fsynced, and returns its stats; removes it again on any failure. */
  private async writeTemp(source: AsyncIterable<unknown> | Iterable<unknown>, ext: string) {
    const file = this.tempPath(ext);
    const h = await open(file, 'wx', 0o600);
    try {
      const hash = createHash('sha256');
      let size = 0;
      for await (const chunk of source) {
        const b = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : (chunk as Uint8Array);
        hash.update(b);
        size += b.byteLength;
        await writeAll(h, b);
      }
      await h.sync();
      const st = await h.stat({ bigint: true });
      await h.close();
      return { file, size, etag: hash.digest('hex'), st };
    } catch (err) {
      await h.close().catch(() => undefined);
      await ignoring(['ENOENT'], unlink(file));
      throw err;
    }
  }

  /** Renames a finished temp file to `target`, making its folder first (again, if a delete just pruned it). */
  private async moveInto(temp: string, target: string, key: string): Promise<void> {
    const dir = path.dirname(target);
    for (let attempt = 0; ; attempt++) {
      try {
        await mkdir(dir, { recursive: true, mode: 0o700 });
        await rename(temp, target);
        break;
      } catch (err) {
        const code = errno(err);
        if (code === 'ENOENT' && attempt < 5) continue;
        if (code === 'EEXIST' || code === 'ENOTDIR') {
          throw finalError(`disk storage: cannot store "${key}": a part of its path is already an object`, code);
        }
        if (code === 'EISDIR') throw finalError(`disk storage: cannot store "${key}": it is already a folder of other objects`, code);
        throw err;
      }
    }
    await fsyncDir(dir);
  }

  async put(key: string, body: Uint8Array | string | Readable, opts: PutOptions = {}): Promise<ObjectInfo> {
    let target: string;
    try {
      target = await this.locate(key);
    } catch (err) {
      if (typeof body === 'object' && 'destroy' in body) body.destroy();
      throw err;
    }
    const source = typeof body === 'string' || body instanceof Uint8Array ? [body] : body;
    const data = await this.writeTemp(source, 'data');
    let metaTemp: string | undefined;
    try {
      if (opts.contentLength !== undefined && opts.contentLength !== data.size) {
        throw finalError(`disk storage: body of "${key}" was ${data.size} bytes but contentLength said ${opts.contentLength}`);
      }
      const sidecar: Sidecar = {
        v: 1,
        key,
        ...(opts.contentType !== undefined ? { contentType: opts.contentType } : {}),
        metadata: { ...opts.metadata },
        etag: data.etag,
        size: data.size,
        ino: String(data.st.ino),
        mtimeNs: String(data.st.mtimeNs),
      };
      metaTemp = (await this.writeTemp([JSON.stringify(sidecar)], 'json')).file;
      const metaTarget = this.sidecarPath(key);
      // Data first: a crash before the sidecar lands leaves the new data with an old sidecar, which
      // the inode check below ignores (metadata lost, never wrong).
      await this.withLock(key, async () => {
        await this.moveInto(data.file, target, key);
        await this.moveInto(metaTemp!, metaTarget, key);
      });
      return this.infoOf(key, data.st, sidecar);
    } finally {
      await ignoring(['ENOENT'], unlink(data.file));
      if (metaTemp) await ignoring(['ENOENT'], unlink(metaTemp));
    }
  }

  private infoOf(key: string, st: BigIntStats, sidecar: Sidecar | undefined): ObjectInfo {
    return {
      key,
      size: Number(st.size),
      lastModified: new Date(Number(st.mtimeMs)),
      ...(sidecar?.contentType !== undefined ? { contentType: sidecar.contentType } : {}),
      ...(sidecar ? { etag: sidecar.etag, metadata: { ...sidecar.metadata } } : {}),
    };
  }

  /** The sidecar for `key`, only if it describes exactly this version of the data file. */
  private async readSidecar(key: string, st: BigIntStats): Promise<Sidecar | undefined> {
    const raw = await ignoring(['ENOENT'], readFile(this.sidecarPath(key), 'utf8'));
    if (raw === undefined) return undefined;
    let s: Sidecar;
    try {
      s = JSON.parse(raw) as Sidecar;
    } catch {
      return undefined; // unreadable sidecar: serve the bytes without metadata rather than fail
    }
    const matches = s.key === key && s.ino === String(st.ino) && s.mtimeNs === String(st.mtimeNs) && s.size === Number(st.size);
    return matches ? s : undefined;
  }

  /**
   * Opens the object's current version with its sidecar. Waits out an in-flight commit of the same
   * key, and retries when an overwrite lands between opening the data and reading the sidecar.
   */
  private async openObject(key: string) {
    const file = await this.locate(key);
    for (let attempt = 0; ; attempt++) {
      await this.locks.get(key);
      // O_NONBLOCK: opening a FIFO someone left in the folder must not hang the call.
      const h = await ignoring(['ENOENT', 'ENOTDIR', 'EISDIR'], open(file, fsc.O_RDONLY | fsc.O_NONBLOCK));
      if (!h) return undefined;
      const st = await h.stat({ bigint: true });
      if (!st.isFile()) {
        await h.close();
        return undefined; // the key names a folder of other objects, not an object
      }
      const sidecar = await this.readSidecar(key, st);
      if (sidecar || attempt >= 2) return { h, st, sidecar };
      const current = await ignoring(['ENOENT'], stat(file, { bigint: true }));
      // Still the current file and nobody committing: it simply has no (valid) sidecar.
      if (current?.ino === st.ino && !this.locks.has(key)) return { h, st, sidecar };
      await h.close();
    }
  }

  async get(key: string, opts: GetOptions = {}) {
    const o = await this.openObject(key);
    if (!o) return undefined;
    const size = Number(o.st.size);
    let start = 0;
    let end = Math.max(size - 1, 0);
    if (opts.range) {
      const r = opts.range;
      if (!Number.isInteger(r.start) || r.start < 0 || (r.end !== undefined && (!Number.isInteger(r.end) || r.end < r.start))) {
        await o.h.close();
        throw new InvalidInputError(`range ${JSON.stringify(r)} must have whole numbers with 0 <= start <= end`);
      }
      if (r.start >= size && size > 0) {
        await o.h.close();
        throw new InvalidInputError(`range start ${r.start} is past the end of "${key}" (${size} bytes)`);
      }
      start = r.start;
      if (r.end !== undefined) end = Math.min(r.end, end);
    }
    // Reading from the open handle: a concurrent overwrite renames a new file in, this reader keeps the old one.
    const body = size === 0 ? o.h.createReadStream() : o.h.createReadStream({ start, end, highWaterMark: 256 * 1024 });
    return { ...this.infoOf(key, o.st, o.sidecar), body };
  }

  async head(key: string) {
    const o = await this.openObject(key);
    if (!o) return undefined;
    await o.h.close();
    return this.infoOf(key, o.st, o.sidecar);
  }

  async delete(key: string) {
    const file = await this.locate(key);
    return this.withLock(key, async () => {
      try {
        await unlink(file);
      } catch (err) {
        // Missing, or a folder of other objects rather than an object: nothing to delete.
        if (['ENOENT', 'ENOTDIR', 'EISDIR', 'EPERM'].includes(errno(err) ?? '')) return false;
        throw err;
      }
      await ignoring(['ENOENT'], unlink(this.sidecarPath(key)));
      await fsyncDir(path.dirname(file));
      await this.pruneEmptyDirs(path.dirname(file));
      return true;
    });
  }

  /** Removes folders left empty, so the key of a former folder can become an object. */
  private async pruneEmptyDirs(dir: string): Promise<void> {
    while (dir.startsWith(this.objectsDir + path.sep)) {
      const removed = await ignoring(
        ['ENOTEMPTY', 'EEXIST', 'ENOENT'],
        rmdir(dir).then(() => true),
      );
      if (!removed) return;
      dir = path.dirname(dir);
    }
  }

  async list(opts: ListOptions = {}): Promise<ListResult> {
    const prefix = opts.prefix ?? '';
    assertStoragePrefix(prefix);
    if (prefix.replace(/\/$/, '').split('/').includes('') && prefix !== '') {
      throw new InvalidInputError('storage prefix must not have empty segments on disk storage');
    }
    const limit = opts.limit ?? MAX_LIST_LIMIT;
    if (!Number.isInteger(limit) || limit < 1) throw new InvalidInputError('list limit must be a whole number of at least 1');
    const pageSize = Math.min(limit, MAX_LIST_LIMIT);
    const cursor = opts.cursor;
    if (cursor !== undefined && typeof cursor !== 'string') throw new InvalidInputError('list cursor must be a string');

    // Start in the deepest folder the prefix names; nothing above it can match.
    const base = prefix.slice(0, prefix.lastIndexOf('/') + 1);
    const items: ObjectInfo[] = [];
    let more = false;
    for await (const item of this.walk(base, prefix, cursor)) {
      if (items.length === pageSize) {
        more = true;
        break;
      }
      items.push(item);
    }
    return more ? { items, cursor: items[items.length - 1]!.key } : { items };
  }

  /**
   * Objects in key order under the folder for `dirKey` (a key prefix ending in "/", or ""),
   * depth first, reading one folder at a time and skipping folders that lie wholly before the
   * cursor or outside the prefix. Never holds more than one folder listing per level.
   */
  private async *walk(dirKey: string, prefix: string, cursor: string | undefined): AsyncGenerator<ObjectInfo> {
    const dir = dirKey ? path.join(this.objectsDir, ...dirKey.slice(0, -1).split('/')) : this.objectsDir;
    const real = await ignoring(['ENOENT', 'ENOTDIR'], realpath(dir));
    if (real === undefined || (real !== this.objectsReal && !this.inside(real))) return;
    const entries = await ignoring(['ENOENT', 'ENOTDIR'], readdir(dir, { withFileTypes: true }));
    if (!entries) return;
    // Sorting by name + "/" for folders gives the order of the full keys ("a-b" < "a/x" < "a0").
    const sorted = entries
      .map((e: Dirent) => ({ e, sortKey: e.name + (e.isDirectory() ? '/' : '') }))
      .sort((a, b) => compareStorageKeys(a.sortKey, b.sortKey));
    for (const { e } of sorted) {
      const key = dirKey + e.name;
      if (e.isDirectory()) {
        const sub = `${key}/`;
        const overlapsPrefix = sub.startsWith(prefix) || prefix.startsWith(sub);
        const afterCursor = cursor === undefined || cursor.startsWith(sub) || compareStorageKeys(sub, cursor) > 0;
        if (overlapsPrefix && afterCursor) yield* this.walk(sub, prefix, cursor);
        continue;
      }
      if (!key.startsWith(prefix) || (cursor !== undefined && compareStorageKeys(key, cursor) <= 0)) continue;
      const file = path.join(dir, e.name);
      if (e.isSymbolicLink()) {
        // Only links to files inside the root count; anything else is not ours to serve.
        const target = await ignoring(['ENOENT', 'ELOOP'], realpath(file));
        if (!target || !this.inside(target)) continue;
      } else if (!e.isFile()) continue;
      const st = await ignoring(['ENOENT'], stat(file));
      if (!st?.isFile()) continue;
      yield { key, size: st.size, lastModified: st.mtime };
    }
  }

  async check(signal: AbortSignal): Promise<Health> {
    try {
      await Promise.all([
        access(this.objectsDir, fsc.R_OK | fsc.W_OK),
        access(this.tmpDir, fsc.R_OK | fsc.W_OK),
        access(this.metaDir, fsc.W_OK),
      ]);
      signal.throwIfAborted();
      const fs = await statfs(this.root);
      const free = fs.bavail * fs.bsize;
      const detail = `${Math.floor(free / (1024 * 1024))} MiB free`;
      return free < LOW_SPACE_BYTES
        ? { status: 'degraded', detail, error: 'storage disk is almost full' }
        : { status: 'connected', detail };
    } catch (err) {
      return { status: 'error', error: `storage folder ${this.root}: ${(err as Error).message}` };
    }
  }

  async close(): Promise<void> {
    // Nothing held open between calls: each call opens and closes its own files.
  }
}
