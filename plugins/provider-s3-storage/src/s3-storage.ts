import { pipeline, Readable, Transform, type TransformCallback } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import {
  type GetOptions,
  type Health,
  InvalidInputError,
  type ListOptions,
  type ListResult,
  type ObjectInfo,
  type PutOptions,
  type SignedUrlOptions,
  type StorageProvider,
} from '@apigate/kernel';
import { describeS3Error, isMissingObject, s3Code, s3Status, toS3ProviderError } from './errors.js';
import { decodeMetadata, encodeMetadata } from './metadata.js';

export interface S3StorageOptions {
  bucket: string;
  region: string;
  accessKeyId?: string | undefined;
  secretAccessKey?: string | undefined;
  /** Empty means AWS itself; anything else is an S3-compatible service, addressed path-style. */
  endpoint?: string | undefined;
  /** Normalised: empty, or ends with "/". */
  keyPrefix: string;
  partSizeBytes: number;
  queueSize: number;
}

const MAX_PARTS = 10_000;
const MAX_LIST = 1000;
const MAX_PRESIGN_SECONDS = 7 * 24 * 3600;
const DEFAULT_CONTENT_TYPE = 'application/octet-stream';

/** Counts bytes on their way to the uploader and enforces a declared length, so a short or long stream fails the upload. */
class ByteCounter extends Transform {
  bytes = 0;
  constructor(private readonly expected: number | undefined) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.expected !== undefined && this.bytes > this.expected) {
      done(new InvalidInputError(`stream body is longer than contentLength ${this.expected}`));
    } else done(null, chunk);
  }
  override _flush(done: TransformCallback): void {
    if (this.expected !== undefined && this.bytes !== this.expected) {
      done(new InvalidInputError(`stream body has ${this.bytes} bytes but contentLength is ${this.expected}`));
    } else done();
  }
}

const unquote = (etag: string | undefined) => etag?.replace(/^"|"$/g, '');

function toBuffer(body: Uint8Array | string): Buffer {
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  return Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}

/** Total object size from `Content-Range: bytes 0-9/1234`, else the body length. */
function totalSize(contentRange: string | undefined, contentLength: number | undefined): number {
  const m = contentRange && /\/(\d+)$/.exec(contentRange);
  return m ? Number(m[1]) : (contentLength ?? 0);
}

export class S3Storage implements StorageProvider {
  readonly client: S3Client;

  constructor(private readonly opts: S3StorageOptions) {
    this.client = new S3Client({
      region: opts.region,
      ...(opts.endpoint ? { endpoint: opts.endpoint, forcePathStyle: true } : {}),
      // Without keys the SDK's default chain applies (env, shared config, SSO, container/instance roles).
      ...(opts.accessKeyId && opts.secretAccessKey
        ? { credentials: { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey } }
        : {}),
      // Flexible checksums only where S3 demands them: the default (WHEN_SUPPORTED) sends streamed
      // bodies aws-chunked with a CRC32 trailer, which many S3-compatible servers store verbatim,
      // and bakes the CRC32 of an empty body into presigned PUT URLs. See README.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: { connectionTimeout: 10_000 },
    });
  }

  private full(key: string): string {
    return this.opts.keyPrefix + key;
  }

  private fail(err: unknown, operation: string, key?: string): never {
    if (err instanceof InvalidInputError) throw err;
    const what = key === undefined ? `bucket "${this.opts.bucket}"` : `"${key}" in bucket "${this.opts.bucket}"`;
    throw toS3ProviderError(err, operation, what);
  }

  async put(key: string, body: Uint8Array | string | Readable, opts: PutOptions = {}): Promise<ObjectInfo> {
    const contentType = opts.contentType ?? DEFAULT_CONTENT_TYPE;
    const metadata = encodeMetadata(opts.metadata);
    const params = { Bucket: this.opts.bucket, Key: this.full(key), ContentType: contentType, ...(metadata ? { Metadata: metadata } : {}) };
    const info = (size: number, etag: string | undefined): ObjectInfo => ({
      key,
      size,
      contentType,
      ...(etag ? { etag: unquote(etag) } : {}),
      metadata: opts.metadata ? { ...opts.metadata } : {},
    });
    try {
      if (!(body instanceof Readable)) {
        const buf = toBuffer(body);
        if (buf.length <= this.opts.partSizeBytes) {
          const res = await this.client.send(new PutObjectCommand({ ...params, Body: buf, ContentLength: buf.length }));
          return info(buf.length, res.ETag);
        }
        // Large buffers go multipart too: parts are views of the buffer, not copies.
        const res = await new Upload({
          client: this.client,
          params: { ...params, Body: buf },
          partSize: this.partSizeFor(buf.length),
          queueSize: this.opts.queueSize,
        }).done();
        return info(buf.length, res.ETag);
      }
      return await this.putStream(key, body, params, opts.contentLength, info);
    } catch (err) {
      this.fail(err, 'put', key);
    }
  }

  /**
   * Streams of unknown length go through lib-storage's Upload: one PutObject when the stream ends
   * within the first part, otherwise multipart with at most `queueSize` parts of `partSize` in memory.
   */
  private async putStream(
    key: string,
    body: Readable,
    params: { Bucket: string; Key: string; ContentType: string; Metadata?: Record<string, string> },
    contentLength: number | undefined,
    info: (size: number, etag: string | undefined) => ObjectInfo,
  ): Promise<ObjectInfo> {
    if (contentLength !== undefined && (!Number.isSafeInteger(contentLength) || contentLength < 0)) {
      throw new InvalidInputError(`contentLength for "${key}" must be a whole number of bytes`);
    }
    const counter = new ByteCounter(contentLength);
    let streamError: unknown;
    pipeline(body, counter, (err) => {
      streamError = err;
    });
    const upload = new Upload({
      client: this.client,
      params: { ...params, Body: counter },
      partSize: this.partSizeFor(contentLength),
      queueSize: this.opts.queueSize,
    });
    try {
      const res = await upload.done();
      return info(counter.bytes, res.ETag);
    } catch (err) {
      // Stop reading the caller's stream when S3 refused the upload.
      counter.destroy();
      // The caller's own stream failure (or a length mismatch) explains more than the SDK's echo of it.
      throw streamError ?? err;
    }
  }

  /** Parts stay at the configured size unless a known length needs bigger ones to fit S3's 10,000-part limit. */
  private partSizeFor(length: number | undefined): number {
    return Math.max(this.opts.partSizeBytes, length ? Math.ceil(length / MAX_PARTS) : 0);
  }

  async get(key: string, opts: GetOptions = {}): Promise<(ObjectInfo & { body: Readable }) | undefined> {
    let range: string | undefined;
    if (opts.range) {
      const { start, end } = opts.range;
      if (!Number.isSafeInteger(start) || start < 0 || (end !== undefined && (!Number.isSafeInteger(end) || end < start))) {
        throw new InvalidInputError(`range for "${key}" must have 0 <= start <= end (whole numbers)`);
      }
      range = `bytes=${start}-${end ?? ''}`;
    }
    try {
      const res = await this.client.send(
        new GetObjectCommand({ Bucket: this.opts.bucket, Key: this.full(key), ...(range ? { Range: range } : {}) }),
      );
      return {
        key,
        size: totalSize(res.ContentRange, res.ContentLength),
        ...(res.ContentType ? { contentType: res.ContentType } : {}),
        ...(res.ETag ? { etag: unquote(res.ETag) } : {}),
        ...(res.LastModified ? { lastModified: res.LastModified } : {}),
        metadata: decodeMetadata(res.Metadata),
        body: res.Body as Readable,
      };
    } catch (err) {
      if (isMissingObject(err)) return undefined;
      if (s3Status(err) === 416) throw new InvalidInputError(`range start ${opts.range?.start} is past the end of "${key}"`);
      this.fail(err, 'get', key);
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.opts.bucket, Key: this.full(key) }));
      return {
        key,
        size: res.ContentLength ?? 0,
        ...(res.ContentType ? { contentType: res.ContentType } : {}),
        ...(res.ETag ? { etag: unquote(res.ETag) } : {}),
        ...(res.LastModified ? { lastModified: res.LastModified } : {}),
        metadata: decodeMetadata(res.Metadata),
      };
    } catch (err) {
      if (isMissingObject(err)) return undefined;
      this.fail(err, 'head', key);
    }
  }

  /**
   * S3's DeleteObject answers 204 whether or not the key existed, so a HEAD first tells the caller
   * which it was. Two requests, and not atomic: a concurrent writer can slip in between.
   */
  async delete(key: string): Promise<boolean> {
    if (!(await this.head(key))) return false;
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.opts.bucket, Key: this.full(key) }));
      return true;
    } catch (err) {
      this.fail(err, 'delete', key);
    }
  }

  /** One ListObjectsV2 page; S3's continuation token is the cursor. Keys come sorted as S3 sorts them (UTF-8 bytes). */
  async list(opts: ListOptions = {}): Promise<ListResult> {
    const limit = opts.limit ?? MAX_LIST;
    if (!Number.isSafeInteger(limit) || limit < 1) throw new InvalidInputError('list limit must be a whole number of at least 1');
    try {
      const res = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.opts.bucket,
          Prefix: this.full(opts.prefix ?? ''),
          MaxKeys: Math.min(limit, MAX_LIST),
          ...(opts.cursor ? { ContinuationToken: opts.cursor } : {}),
        }),
      );
      const strip = this.opts.keyPrefix.length;
      const items: ObjectInfo[] = (res.Contents ?? []).map((o) => ({
        key: (o.Key ?? '').slice(strip),
        size: o.Size ?? 0,
        ...(o.ETag ? { etag: unquote(o.ETag) } : {}),
        ...(o.LastModified ? { lastModified: o.LastModified } : {}),
      }));
      return { items, ...(res.IsTruncated && res.NextContinuationToken ? { cursor: res.NextContinuationToken } : {}) };
    } catch (err) {
      this.fail(err, 'list');
    }
  }

  async signedUrl(key: string, opts: SignedUrlOptions): Promise<string> {
    const { method, expiresInSeconds } = opts;
    if (method !== 'GET' && method !== 'PUT') throw new InvalidInputError('signed URL method must be GET or PUT');
    if (!Number.isSafeInteger(expiresInSeconds) || expiresInSeconds < 1 || expiresInSeconds > MAX_PRESIGN_SECONDS) {
      throw new InvalidInputError(`signed URL expiry must be 1 to ${MAX_PRESIGN_SECONDS} seconds (7 days, the SigV4 limit)`);
    }
    const input = { Bucket: this.opts.bucket, Key: this.full(key) };
    try {
      const command = method === 'GET' ? new GetObjectCommand(input) : new PutObjectCommand(input);
      return await getSignedUrl(this.client, command, { expiresIn: expiresInSeconds });
    } catch (err) {
      this.fail(err, 'signedUrl', key);
    }
  }

  /** HeadBucket: proves the endpoint answers, the bucket exists and the credentials may use it. */
  async check(signal: AbortSignal): Promise<Health> {
    const where = this.opts.endpoint ? `${this.opts.endpoint}` : `AWS ${this.opts.region}`;
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.opts.bucket }), { abortSignal: signal });
      return { status: 'connected', detail: `bucket "${this.opts.bucket}" at ${where}` };
    } catch (err) {
      return { status: 'error', error: this.healthError(err, where) };
    }
  }

  private healthError(err: unknown, where: string): string {
    const status = s3Status(err);
    let hint: string | undefined;
    if (status === 403)
      hint = 'access denied: check S3_ACCESS_KEY and S3_SECRET_KEY (or the default credential chain) and the bucket policy';
    else if (status === 404) hint = 'bucket does not exist';
    else if (status === 301) hint = 'bucket is in another region: set S3_REGION';
    else if (status === undefined && /^E[A-Z]+$/.test(s3Code(err) ?? '')) hint = 'endpoint unreachable';
    const detail = describeS3Error(err);
    return `bucket "${this.opts.bucket}" at ${where}: ${hint ? `${hint} ${detail}` : detail}`;
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
