import type { Readable } from 'node:stream';
import type { ProviderInstance } from './common.js';

export interface ObjectInfo {
  key: string;
  size: number;
  contentType?: string;
  etag?: string;
  lastModified?: Date;
  metadata?: Record<string, string>;
}

export interface PutOptions {
  contentType?: string;
  metadata?: Record<string, string>;
  /** Known length of a stream body; lets backends skip buffering. */
  contentLength?: number;
}

export interface GetOptions {
  /** Inclusive byte range, as in HTTP `Range: bytes=start-end`. */
  range?: { start: number; end?: number };
}

export interface ListOptions {
  prefix?: string;
  cursor?: string;
  limit?: number;
}

export interface ListResult {
  items: ObjectInfo[];
  /** Present when more items follow; pass it back as `cursor`. */
  cursor?: string;
}

export interface SignedUrlOptions {
  method: 'GET' | 'PUT';
  expiresInSeconds: number;
}

/**
 * Keys are `/`-separated relative paths. The kernel rejects `..` segments, a leading `/`,
 * NUL and control characters before any provider sees them.
 */
export interface StorageProvider extends ProviderInstance {
  put(key: string, body: Uint8Array | string | Readable, opts?: PutOptions): Promise<ObjectInfo>;
  get(key: string, opts?: GetOptions): Promise<(ObjectInfo & { body: Readable }) | undefined>;
  head(key: string): Promise<ObjectInfo | undefined>;
  delete(key: string): Promise<boolean>;
  /** Items come sorted by key. */
  list(opts?: ListOptions): Promise<ListResult>;
  /** Present only where the backend can sign URLs (feature `signedUrls`). */
  signedUrl?(key: string, opts: SignedUrlOptions): Promise<string>;
}

export interface StorageFeatures {
  signedUrls?: boolean;
  /** Objects survive a restart of the process. */
  persistent?: boolean;
}
