import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';

/**
 * A prefix no other run shares (`tk-<label>-<time>-<random>`), so suites can run against a
 * shared Redis or S3 bucket in parallel with other runs and clean up only their own keys.
 */
export function uniquePrefix(label: string): string {
  return `tk-${label}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

/** Reads a whole stream (or any async iterable of chunks) into one Buffer. */
export async function streamToBuffer(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

/** Hex sha256 of bytes, a string (as UTF-8) or a whole stream, without buffering the stream. */
export async function sha256(data: Uint8Array | string | AsyncIterable<unknown>): Promise<string> {
  const hash = createHash('sha256');
  if (typeof data === 'string' || data instanceof Uint8Array) return hash.update(data).digest('hex');
  for await (const chunk of data) hash.update(typeof chunk === 'string' ? chunk : (chunk as Uint8Array));
  return hash.digest('hex');
}

/**
 * A stream of `data` cut into uneven chunks (sizes cycle through `chunkSizes`), so providers
 * see chunk boundaries that line up with nothing.
 */
export function chunkedStream(data: Uint8Array, chunkSizes: readonly number[] = [1, 7919, 65_537, 3, 131_071]): Readable {
  let offset = 0;
  let i = 0;
  return Readable.from(
    (function* () {
      while (offset < data.byteLength) {
        const size = chunkSizes[i++ % chunkSizes.length]!;
        yield Buffer.from(data.subarray(offset, offset + size));
        offset += size;
      }
    })(),
    { objectMode: false },
  );
}

/** A stream that yields `good` and then fails with `error`, to test that failed uploads leave nothing behind. */
export function failingStream(good: Uint8Array, error = new Error('body stream failed on purpose')): Readable {
  return Readable.from(
    (async function* () {
      yield Buffer.from(good);
      // Let the provider start writing before the failure arrives.
      await new Promise<void>((resolve) => setImmediate(resolve));
      throw error;
    })(),
    { objectMode: false },
  );
}

/** Bytes as a Buffer view (no copy), for comparisons with `Buffer#equals`. */
export const asBuffer = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
