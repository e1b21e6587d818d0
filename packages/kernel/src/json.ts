import type { CacheProvider, CacheSetOptions } from './capabilities/cache.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export const utf8 = {
  encode: (s: string): Uint8Array => encoder.encode(s),
  decode: (b: Uint8Array): string => decoder.decode(b),
};

/** JSON on top of any cache provider, written once here instead of in every provider. */
export async function getJSON<T>(cache: CacheProvider, key: string): Promise<T | undefined> {
  const raw = await cache.get(key);
  return raw === undefined ? undefined : (JSON.parse(decoder.decode(raw)) as T);
}

export async function setJSON(cache: CacheProvider, key: string, value: unknown, opts?: CacheSetOptions): Promise<void> {
  await cache.set(key, JSON.stringify(value), opts);
}
