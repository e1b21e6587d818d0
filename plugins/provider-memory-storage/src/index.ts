import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  compareStorageKeys,
  defineProvider,
  fields,
  type GetOptions,
  InvalidInputError,
  type ListOptions,
  type ListResult,
  type ObjectInfo,
  type PutOptions,
  type StorageProvider,
  z,
} from '@apigate/kernel';

interface StoredObject {
  data: Buffer;
  contentType?: string;
  metadata: Record<string, string>;
  etag: string;
  lastModified: Date;
}

const MAX_LIST_LIMIT = 1000;

/** A failure that will not go away on retry (the kernel reads `retryable`). */
class FinalError extends Error {
  readonly retryable = false;
}

async function readBody(body: Uint8Array | string | Readable, maxBytes: number): Promise<Buffer> {
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (body instanceof Uint8Array) return Buffer.from(body); // a copy: the caller may reuse its array
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk as Uint8Array);
    total += b.byteLength;
    // Stop reading early instead of filling memory with an object that cannot fit anyway.
    if (total > maxBytes) throw new FinalError(`memory storage holds at most ${maxBytes} bytes (MEMORY_STORAGE_MAX_BYTES)`);
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

const infoOf = (key: string, o: StoredObject): ObjectInfo => ({
  key,
  size: o.data.byteLength,
  ...(o.contentType !== undefined ? { contentType: o.contentType } : {}),
  etag: o.etag,
  lastModified: new Date(o.lastModified),
  metadata: { ...o.metadata },
});

/** Objects in a Map, bounded by total bytes. For tests and development: nothing survives a restart. */
export class MemoryStorage implements StorageProvider {
  private readonly objects = new Map<string, StoredObject>();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  async put(key: string, body: Uint8Array | string | Readable, opts: PutOptions = {}): Promise<ObjectInfo> {
    const data = await readBody(body, this.maxBytes);
    if (opts.contentLength !== undefined && opts.contentLength !== data.byteLength) {
      throw new FinalError(`body of "${key}" was ${data.byteLength} bytes but contentLength said ${opts.contentLength}`);
    }
    const previous = this.objects.get(key)?.data.byteLength ?? 0;
    if (this.bytes - previous + data.byteLength > this.maxBytes) {
      throw new FinalError(`memory storage holds at most ${this.maxBytes} bytes (MEMORY_STORAGE_MAX_BYTES); "${key}" does not fit`);
    }
    const stored: StoredObject = {
      data,
      ...(opts.contentType !== undefined ? { contentType: opts.contentType } : {}),
      metadata: { ...opts.metadata },
      etag: createHash('sha256').update(data).digest('hex'),
      lastModified: new Date(),
    };
    this.objects.set(key, stored);
    this.bytes += data.byteLength - previous;
    return infoOf(key, stored);
  }

  async get(key: string, opts: GetOptions = {}) {
    const o = this.objects.get(key);
    if (!o) return undefined;
    let data = o.data;
    if (opts.range) {
      const { start, end } = opts.range;
      if (!Number.isInteger(start) || start < 0 || (end !== undefined && (!Number.isInteger(end) || end < start))) {
        throw new InvalidInputError(`range ${JSON.stringify(opts.range)} must have whole numbers with 0 <= start <= end`);
      }
      if (start >= data.byteLength && data.byteLength > 0) {
        throw new InvalidInputError(`range start ${start} is past the end of "${key}" (${data.byteLength} bytes)`);
      }
      data = data.subarray(start, end === undefined ? undefined : end + 1);
    }
    // One chunk, not Readable.from(buffer), which would iterate byte by byte.
    return { ...infoOf(key, o), body: Readable.from([data]) };
  }

  async head(key: string) {
    const o = this.objects.get(key);
    return o ? infoOf(key, o) : undefined;
  }

  async delete(key: string) {
    const o = this.objects.get(key);
    if (!o) return false;
    this.objects.delete(key);
    this.bytes -= o.data.byteLength;
    return true;
  }

  async list(opts: ListOptions = {}): Promise<ListResult> {
    const limit = Math.min(opts.limit ?? MAX_LIST_LIMIT, MAX_LIST_LIMIT);
    if (!Number.isInteger(limit) || limit < 1) throw new InvalidInputError(`list limit must be a whole number of at least 1`);
    const prefix = opts.prefix ?? '';
    // The cursor is the last key of the previous page, so writes between pages never shift it.
    const keys = [...this.objects.keys()]
      .filter((key) => key.startsWith(prefix) && (opts.cursor === undefined || compareStorageKeys(key, opts.cursor) > 0))
      .sort(compareStorageKeys);
    const page = keys.slice(0, limit);
    const items = page.map((key) => infoOf(key, this.objects.get(key)!));
    return keys.length > limit ? { items, cursor: page[page.length - 1]! } : { items };
  }

  async check() {
    return { status: 'connected' as const, detail: `${this.objects.size} objects, ${this.bytes} bytes` };
  }

  async close() {}
}

export default defineProvider({
  capability: 'storage',
  name: 'memory',
  description: 'In-process object storage (testing only; lost on restart)',
  config: z.object({
    maxBytes: fields
      .int({ min: 1 })
      .default(512 * 1024 * 1024)
      .describe('the most bytes of object data kept in memory'),
  }),
  env: { maxBytes: 'MEMORY_STORAGE_MAX_BYTES' },
  features: { signedUrls: false, persistent: false },
  create: (config) => new MemoryStorage(config.maxBytes),
});
