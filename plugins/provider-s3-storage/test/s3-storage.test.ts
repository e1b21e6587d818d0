import { createHash } from 'node:crypto';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import {
  ConfigError,
  InvalidInputError,
  ProviderError,
  resolveProviderConfig,
  type StorageProvider,
  settingsFromRecord,
} from '@apigate/kernel';
import { assertValidManifest, createForTest } from '@apigate/provider-testkit';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import pkg from '../package.json' with { type: 'json' };
import provider, { type S3Storage } from '../src/index.js';
import { type LocalS3, startS3rver } from './s3rver.js';

const MiB = 1024 * 1024;
const WRONG_SECRET = 'wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY';
const WRONG_KEY = 'WRONGACCESSKEYEXAMPLE0';

/** Deterministic pseudo-random bytes in 64 KiB chunks, hashed as they are produced. */
function generated(total: number): { stream: Readable; digest: () => string } {
  const hash = createHash('sha256');
  let seed = 12345;
  async function* chunks() {
    for (let sent = 0; sent < total; ) {
      const words = Buffer.alloc(64 * 1024);
      for (let i = 0; i < words.length; i += 4) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        words.writeUInt32LE(seed, i);
      }
      const chunk = words.subarray(0, Math.min(words.length, total - sent));
      hash.update(chunk);
      sent += chunk.length;
      yield chunk;
    }
  }
  return { stream: Readable.from(chunks()), digest: () => hash.digest('hex') };
}

async function sha256Of(body: Readable): Promise<{ hex: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of body) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { hex: hash.digest('hex'), bytes };
}

const text = async (body: Readable) => Buffer.concat(await body.toArray()).toString('utf8');

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

let s3: LocalS3;
let storage: StorageProvider;

beforeAll(async () => {
  s3 = await startS3rver();
  storage = (await createForTest(provider, { ...s3.config, partSizeMb: '5' })).provider;
});

afterAll(async () => {
  await storage?.close();
  await s3?.close();
});

describe('provider-s3-storage', () => {
  it('has a valid manifest', () => {
    assertValidManifest(pkg, provider);
  });

  describe('config', () => {
    const resolve = (env: Record<string, string>, settings: Record<string, string> = {}) =>
      resolveProviderConfig(provider, env, settingsFromRecord(settings));

    it('reads the spec env vars, defaults the region and marks both keys secret', () => {
      const r = resolve({ S3_BUCKET: 'b', S3_ACCESS_KEY: 'AKIAEXAMPLE', S3_SECRET_KEY: 'shh-very-secret', S3_ENDPOINT: '' });
      expect(r.config).toMatchObject({ bucket: 'b', region: 'us-east-1', accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 'shh-very-secret' });
      expect(r.config.endpoint).toBeUndefined();
      expect(r.secretValues.sort()).toEqual(['AKIAEXAMPLE', 'shh-very-secret']);
    });

    it('requires S3_BUCKET and names it', () => {
      let thrown: unknown;
      try {
        resolve({});
      } catch (err) {
        thrown = err;
      }
      const errors = thrown as ConfigError[];
      expect(errors[0]).toBeInstanceOf(ConfigError);
      expect(errors[0]!.message).toContain('S3_BUCKET (setting storage.s3.bucket): is required');
    });

    it('rejects one access key without the other, without echoing it', () => {
      let thrown: unknown;
      try {
        resolve({ S3_BUCKET: 'b', S3_ACCESS_KEY: 'AKIAONLYKEY' });
      } catch (err) {
        thrown = err;
      }
      const [error] = thrown as ConfigError[];
      expect(error!.message).toContain('S3_SECRET_KEY (setting storage.s3.secret_access_key)');
      expect(error!.message).not.toContain('AKIAONLYKEY');
    });

    it('takes the key prefix and part size from settings and normalises the prefix', () => {
      const r = resolve({ S3_BUCKET: 'b' }, { 'storage.s3.key_prefix': '/tenants/a/', 'storage.s3.part_size_mb': '16' });
      expect(r.config).toMatchObject({ keyPrefix: 'tenants/a/', partSizeMb: 16 });
      expect(() => resolve({ S3_BUCKET: 'b' }, { 'storage.s3.key_prefix': 'a/../b' })).toThrow();
      expect(() => resolve({ S3_BUCKET: 'b' }, { 'storage.s3.part_size_mb': '4' })).toThrow();
    });
  });

  it('uploads a >10 MiB stream of unknown length as multipart and reads back the same bytes', async () => {
    const client = (storage as unknown as S3Storage).client;
    const commands: string[] = [];
    client.middlewareStack.add(
      (next, context) => async (args) => {
        commands.push(context.commandName as string);
        return next(args);
      },
      { step: 'initialize', name: 'recordCommands' },
    );
    try {
      const size = 12 * MiB + 12_345;
      const source = generated(size);
      const info = await storage.put('big/stream.bin', source.stream, { contentType: 'application/x-test' });
      expect(info.size).toBe(size);
      expect(commands.filter((c) => c === 'UploadPartCommand')).toHaveLength(3);
      expect(commands).toContain('CompleteMultipartUploadCommand');
      expect(commands).not.toContain('PutObjectCommand');

      const got = await storage.get('big/stream.bin');
      expect(got?.size).toBe(size);
      expect(got?.contentType).toBe('application/x-test');
      expect(await sha256Of(got!.body)).toEqual({ hex: source.digest(), bytes: size });
    } finally {
      client.middlewareStack.remove('recordCommands');
    }
  });

  it('round-trips content type and metadata, including non-ASCII values', async () => {
    const metadata = { owner: 'alice', note: 'naïve café ✓', padded: '  spaced  ', tricky: '=?not encoded?=' };
    const put = await storage.put('meta/doc.json', '{"a":1}', { contentType: 'application/json', metadata });
    expect(put).toMatchObject({ key: 'meta/doc.json', size: 7, contentType: 'application/json', metadata });

    const head = await storage.head('meta/doc.json');
    expect(head).toMatchObject({ key: 'meta/doc.json', size: 7, contentType: 'application/json', metadata, etag: put.etag });
    expect(head?.lastModified).toBeInstanceOf(Date);

    const got = await storage.get('meta/doc.json');
    expect(got?.metadata).toEqual(metadata);
    expect(await text(got!.body)).toBe('{"a":1}');
  });

  it('rejects metadata names that cannot be HTTP headers', async () => {
    await expect(storage.put('meta/bad', 'x', { metadata: { 'has space': 'v' } })).rejects.toBeInstanceOf(InvalidInputError);
  });

  it('reads a byte range and reports the whole object size', async () => {
    await storage.put('range/abc', 'abcdefghij');
    const mid = await storage.get('range/abc', { range: { start: 2, end: 4 } });
    expect(await text(mid!.body)).toBe('cde');
    expect(mid!.size).toBe(10);
    const tail = await storage.get('range/abc', { range: { start: 7 } });
    expect(await text(tail!.body)).toBe('hij');
  });

  it('fails a stream whose length differs from contentLength and leaves no object behind', async () => {
    const err = await storage
      .put('short/stream', Readable.from([Buffer.from('only ten b')]), { contentLength: 20 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidInputError);
    expect((err as Error).message).toContain('contentLength is 20');
    expect(await storage.head('short/stream')).toBeUndefined();
  });

  it('says whether delete removed something (HEAD first: S3 DeleteObject is idempotent)', async () => {
    await storage.put('del/one', 'x');
    expect(await storage.delete('del/one')).toBe(true);
    expect(await storage.delete('del/one')).toBe(false);
    expect(await storage.get('del/one')).toBeUndefined();
  });

  it('presigns PUT and GET URLs that work with plain fetch', async () => {
    const signer = storage.signedUrl!.bind(storage);
    const putUrl = await signer('signed/hello.txt', { method: 'PUT', expiresInSeconds: 300 });
    expect(putUrl).toContain('X-Amz-Signature=');
    expect(putUrl).not.toContain('x-amz-checksum-crc32');
    const put = await fetch(putUrl, { method: 'PUT', body: 'hello via presigned PUT' });
    expect(put.status).toBe(200);

    const getUrl = await signer('signed/hello.txt', { method: 'GET', expiresInSeconds: 300 });
    const got = await fetch(getUrl);
    expect(got.status).toBe(200);
    expect(await got.text()).toBe('hello via presigned PUT');

    await expect(signer('signed/hello.txt', { method: 'GET', expiresInSeconds: 8 * 24 * 3600 })).rejects.toBeInstanceOf(InvalidInputError);
  });

  it('keeps every key under the key prefix and hides it from callers', async () => {
    const { provider: scoped } = await createForTest(provider, { ...s3.config, keyPrefix: 'tenant-a' });
    try {
      await scoped.put('x/1.txt', 'one');
      await scoped.put('x/2.txt', 'two');
      const page = await scoped.list({ prefix: 'x/' });
      expect(page.items.map((i) => i.key)).toEqual(['x/1.txt', 'x/2.txt']);
      expect(await storage.head('tenant-a/x/1.txt')).toMatchObject({ size: 3 });

      const raw = await (scoped as unknown as S3Storage).client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: 'x/' }));
      expect(raw.Contents ?? []).toEqual([]);
    } finally {
      await scoped.close();
    }
  });

  it('reports healthy with a latency against a reachable bucket', async () => {
    const health = await storage.check(AbortSignal.timeout(10_000));
    expect(health.status).toBe('connected');
    expect(health.latencyMs).toBeGreaterThanOrEqual(0);
    expect(health.detail).toContain(s3.bucket);
  });

  describe('wrong credentials', () => {
    let wrong: StorageProvider;
    beforeAll(async () => {
      wrong = (await createForTest(provider, { ...s3.config, accessKeyId: WRONG_KEY, secretAccessKey: WRONG_SECRET })).provider;
    });
    afterAll(() => wrong.close());

    it('health is an error that names the problem and no secret', async () => {
      const health = await wrong.check(AbortSignal.timeout(10_000));
      expect(health.status).toBe('error');
      expect(health.error).toContain('access denied');
      expect(health.error).toContain('HTTP 403');
      expect(health.error).not.toContain(WRONG_SECRET);
      expect(health.error).not.toContain(WRONG_KEY);
    });

    it('calls throw a non-retryable ProviderError without the secret', async () => {
      const err = await wrong.put('nope.txt', 'x').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProviderError);
      expect(err).toMatchObject({ retryable: false, status: 403, code: 'InvalidAccessKeyId', operation: 'put' });
      expect((err as Error).message).not.toContain(WRONG_SECRET);
      expect((err as Error).message).not.toContain(WRONG_KEY);
    });
  });

  it('reports a missing bucket as an error and a non-retryable failure', async () => {
    const { provider: missing } = await createForTest(provider, { ...s3.config, bucket: 'no-such-bucket' });
    try {
      const health = await missing.check(AbortSignal.timeout(10_000));
      expect(health).toMatchObject({ status: 'error' });
      expect(health.error).toContain('bucket does not exist');
      await expect(missing.list()).rejects.toMatchObject({ retryable: false, code: 'NoSuchBucket' });
    } finally {
      await missing.close();
    }
  });

  it('treats an unreachable endpoint as retryable', async () => {
    const endpoint = `http://127.0.0.1:${await closedPort()}`;
    const { provider: down } = await createForTest(provider, { ...s3.config, endpoint });
    try {
      const err = await down.head('any').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProviderError);
      expect(err).toMatchObject({ retryable: true, code: 'ECONNREFUSED' });
      const health = await down.check(AbortSignal.timeout(10_000));
      expect(health.status).toBe('error');
      expect(health.error).toContain('endpoint unreachable');
    } finally {
      await down.close();
    }
  });

  it('check() gives up when its abort signal fires, even if the server never answers', async () => {
    // Accepts connections and never replies: only the signal can end the check.
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const endpoint = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    const { provider: stuck } = await createForTest(provider, { ...s3.config, endpoint });
    try {
      const controller = new AbortController();
      const pending = stuck.check(controller.signal);
      await vi.waitFor(() => expect(sockets.size).toBeGreaterThan(0));
      controller.abort(new Error('health check timed out'));
      const health = await pending;
      expect(health.status).toBe('error');
      expect(health.error).toMatch(/abort/i);
    } finally {
      await stuck.close();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('close() can be called twice', async () => {
    const { provider: extra } = await createForTest(provider, s3.config);
    await extra.close();
    await expect(extra.close()).resolves.toBeUndefined();
  });
});
