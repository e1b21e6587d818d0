import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { type FileHandle, mkdir, open, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { compareStorageKeys } from '@apigate/kernel';

/**
 * s3rver 3.7 (the last release) differs from S3 in ways the storage contract can see. The test
 * server fixes them here, in the server, so the provider is tested against S3's behaviour:
 *
 * - ListObjectsV2 walks directories, so keys come out of order across "/" ("a/b" before "a-c"),
 *   and its continuation tokens use DES, which OpenSSL 3 (Node >= 17) refuses: every second page
 *   is a 500. Replaced by a listing sorted by code point (UTF-8 byte order, as S3) with a plain token.
 * - A Range of `bytes=0-0` returns the whole object (end 0 is read as "no end").
 * - PUT writes straight into the object file and answers before the data is flushed: concurrent
 *   puts to one key interleave, and a read right after a put can see a short file. Writes now go
 *   to a temp file, renamed into place with the metadata under a per-key lock (S3 puts are atomic).
 * - SigV4 signatures are not verified at all. Presigned (query-string) signatures are verified
 *   here, so a tampered or expired presigned URL is refused as S3 refuses it.
 */
const require = createRequire(import.meta.url);
const S3rver = require('s3rver');
const bucketController = require('s3rver/lib/controllers/bucket');
const S3Error = require('s3rver/lib/models/error');
const S3Object = require('s3rver/lib/models/object');
const AWSAccount = require('s3rver/lib/models/account');
const FilesystemStore = require('s3rver/lib/stores/filesystem');
const { walk } = require('s3rver/lib/utils');

/** s3rver accepts only its built-in dummy account's key id (secret: the same string). */
export const S3RVER_KEY = 'S3RVER';

const OBJECT_SUFFIX = '._S3rver_object';

interface Store {
  getBucketPath(bucket: string): string;
  getResourcePath(bucket: string, key: string | undefined, resource: string): string;
  getMetadata(bucket: string, key: string): Promise<Record<string, string>>;
}

/** Every key in a bucket, sorted as S3 sorts them. Fine for test-sized buckets. */
function sortedKeys(store: Store, bucket: string): string[] {
  const root = store.getBucketPath(bucket);
  const keys: string[] = [];
  for (const file of walk(root) as Iterable<string>) {
    if (file.endsWith(OBJECT_SUFFIX)) keys.push(file.slice(root.length + 1, -OBJECT_SUFFIX.length));
  }
  return keys.sort(compareStorageKeys);
}

const originalGetBucket = bucketController.getBucket;
bucketController.getBucket = async function listObjectsV2(ctx: any) {
  if (ctx.query['list-type'] !== '2' || ctx.query.delimiter) return originalGetBucket(ctx);
  const bucket: string = ctx.params.bucket;
  const prefix: string = ctx.query.prefix ?? '';
  const token: string | undefined = ctx.query['continuation-token'];
  const startAfter = token ? Buffer.from(token, 'base64url').toString('utf8') : (ctx.query['start-after'] ?? '');
  const maxKeys = Math.min(1000, Number(ctx.query['max-keys'] ?? 1000));
  const matching = sortedKeys(ctx.store, bucket).filter((k) => k.startsWith(prefix) && compareStorageKeys(k, startAfter) > 0);
  const page = matching.slice(0, maxKeys);
  const truncated = matching.length > page.length;
  const objects = await Promise.all(page.map(async (key) => new S3Object(bucket, key, null, await ctx.store.getMetadata(bucket, key))));
  ctx.body = {
    ListBucketResult: {
      '@': { xmlns: 'http://doc.s3.amazonaws.com/2006-03-01/' },
      Name: bucket,
      Prefix: prefix,
      ContinuationToken: token,
      NextContinuationToken: truncated ? Buffer.from(page.at(-1)!, 'utf8').toString('base64url') : undefined,
      KeyCount: objects.length,
      MaxKeys: maxKeys,
      IsTruncated: truncated,
      Contents: objects.map((o: any) => ({
        Key: o.key,
        LastModified: o.lastModifiedDate.toISOString(),
        ETag: o.metadata.etag,
        Size: o.size,
        StorageClass: 'STANDARD',
      })),
    },
  };
};

FilesystemStore.prototype.getObject = async function getObject(
  this: Store,
  bucket: string,
  key: string,
  options: { start?: number; end?: number } = {},
) {
  let metadata: Record<string, string>;
  try {
    metadata = await this.getMetadata(bucket, key);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const size = Number(metadata['content-length']);
  const ranged = options.start !== undefined || options.end !== undefined;
  const start = options.start ?? 0;
  const end = Math.min(options.end ?? Number.POSITIVE_INFINITY, size - 1);
  if (ranged && (start >= size || end < start)) {
    return Object.assign(new S3Object(bucket, key, null, metadata), { range: { start, end } });
  }
  // Opened here, not lazily by the stream: an object deleted between the metadata read and the open
  // is a 404, instead of an ENOENT the stream would emit after the response is gone (uncaught).
  let handle: FileHandle;
  try {
    handle = await open(this.getResourcePath(bucket, key, 'object'), 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  if (size === 0) await handle.close();
  const content = size === 0 ? Readable.from([]) : handle.createReadStream({ start, end: Math.max(end, 0) });
  const object = new S3Object(bucket, key, content, metadata);
  if (ranged) object.range = { start, end };
  return object;
};

const locks = new Map<string, Promise<unknown>>();
/** Runs `fn` after every earlier call for the same `id` has finished. */
function serialized<T>(id: string, fn: () => Promise<T>): Promise<T> {
  const run = (locks.get(id) ?? Promise.resolve()).then(fn, fn);
  const tail = run.catch(() => undefined);
  locks.set(id, tail);
  void tail.then(() => locks.get(id) === tail && locks.delete(id));
  return run;
}

let tempCounter = 0;
FilesystemStore.prototype.putObject = async function putObject(this: Store, object: any) {
  const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
  const metadataPath = this.getResourcePath(object.bucket, object.key, 'metadata.json');
  const md5Path = this.getResourcePath(object.bucket, object.key, 'object.md5');
  const temp = path.join(this.getBucketPath(object.bucket), `.tmp-${process.pid}-${++tempCounter}`);
  const hash = createHash('md5');
  let size = 0;
  try {
    const content: Readable = Buffer.isBuffer(object.content) ? Readable.from([object.content]) : object.content;
    await pipeline(
      content,
      async function* (chunks: AsyncIterable<Buffer>) {
        for await (const chunk of chunks) {
          hash.update(chunk);
          size += chunk.length;
          yield chunk;
        }
      },
      createWriteStream(temp),
    );
    const md5 = hash.digest('hex');
    const json = Object.fromEntries(
      Object.entries(object.metadata as Record<string, string>).filter(
        ([k]) => S3Object.ALLOWED_METADATA.includes(k) || k.startsWith('x-amz-meta-'),
      ),
    );
    await serialized(objectPath, async () => {
      await mkdir(path.dirname(objectPath), { recursive: true });
      await rename(temp, objectPath);
      await writeFile(`${temp}.meta`, JSON.stringify(json));
      await rename(`${temp}.meta`, metadataPath);
      await writeFile(md5Path, md5);
    });
    return { size, md5 };
  } finally {
    await rm(temp, { force: true });
  }
};

const rfc3986 = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data, 'utf8').digest();

/** Checks a presigned (query-string SigV4) request as S3 does; throws S3Error when it does not verify. */
function verifyPresigned(ctx: any): void {
  const [rawPath, rawQuery = ''] = (ctx.req.url as string).split('?');
  const params = rawQuery
    .split('&')
    .filter(Boolean)
    .map((pair) => {
      const [k, v = ''] = pair.split('=');
      return [decodeURIComponent(k!), decodeURIComponent(v)] as [string, string];
    });
  const get = (name: string) => params.find(([k]) => k === name)?.[1];
  const [accessKeyId, ...scopeParts] = (get('X-Amz-Credential') ?? '').split('/');
  const secret: string | undefined = AWSAccount.registry.get(accessKeyId)?.accessKeys.get(accessKeyId);
  if (!secret) throw new S3Error('InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.');
  const amzDate = get('X-Amz-Date') ?? '';
  const signedAt = Date.parse(amzDate.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, '$1-$2-$3T$4:$5:$6Z'));
  if (!(signedAt + Number(get('X-Amz-Expires')) * 1000 > Date.now())) throw new S3Error('AccessDenied', 'Request has expired');

  const canonicalQuery = params
    .filter(([k]) => k !== 'X-Amz-Signature')
    .map(([k, v]) => [rfc3986(k), rfc3986(v)])
    .sort(([a, x], [b, y]) => (a! < b! ? -1 : a! > b! ? 1 : x! < y! ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const signedHeaders = get('X-Amz-SignedHeaders') ?? '';
  const canonicalHeaders = signedHeaders
    .split(';')
    .map((h) => `${h}:${String(ctx.get(h)).trim().replace(/\s+/g, ' ')}\n`)
    .join('');
  const canonicalRequest = [
    ctx.method,
    rawPath,
    canonicalQuery,
    canonicalHeaders,
    signedHeaders,
    get('X-Amz-Content-Sha256') ?? 'UNSIGNED-PAYLOAD',
  ].join('\n');
  const scope = scopeParts.join('/');
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, createHash('sha256').update(canonicalRequest).digest('hex')].join('\n');
  let key: Buffer = hmac(`AWS4${secret}`, scopeParts[0] ?? '');
  for (const part of scopeParts.slice(1)) key = hmac(key, part);
  const expected = Buffer.from(hmac(key, stringToSign).toString('hex'));
  const given = Buffer.from(get('X-Amz-Signature') ?? '');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new S3Error('SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided.');
  }
}

export interface LocalS3 {
  endpoint: string;
  bucket: string;
  /** Config strings for the provider, as env vars would give them. */
  config: Record<string, string>;
  close(): Promise<void>;
}

/** An in-process s3rver on a free port with a fresh temp directory and one bucket. */
export async function startS3rver(bucket = 'apigate-test'): Promise<LocalS3> {
  const directory = mkdtempSync(path.join(tmpdir(), 'apigate-s3rver-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: [{ name: bucket }] });
  // First in the chain, ahead of s3rver's own (non-verifying) authentication.
  server.middleware.unshift(async (ctx: any, next: () => Promise<void>) => {
    if ('X-Amz-Signature' in ctx.query) verifyPresigned(ctx);
    return next();
  });
  const { port } = (await server.run()) as AddressInfo;
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    bucket,
    config: { bucket, endpoint, accessKeyId: S3RVER_KEY, secretAccessKey: S3RVER_KEY },
    async close() {
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
