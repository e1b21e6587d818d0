import { InvalidInputError } from './errors.js';

// Control characters are exactly what is rejected.
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Throws InvalidInputError unless `key` is a safe `/`-separated relative path. */
export function assertStorageKey(key: unknown, what = 'storage key'): asserts key is string {
  if (typeof key !== 'string' || key.length === 0) throw new InvalidInputError(`${what} must be a non-empty string`);
  if (key.length > 1024) throw new InvalidInputError(`${what} must be at most 1024 characters`);
  if (CONTROL.test(key)) throw new InvalidInputError(`${what} must not contain NUL or control characters`);
  if (key.startsWith('/')) throw new InvalidInputError(`${what} must be relative (no leading "/")`);
  if (key.includes('\\')) throw new InvalidInputError(`${what} must use "/" as separator, not "\\"`);
  for (const seg of key.split('/')) {
    if (seg === '..' || seg === '.') throw new InvalidInputError(`${what} must not contain "." or ".." segments`);
  }
}

/** A list prefix may be empty; otherwise the same rules as a key, except a trailing "/" is fine. */
export function assertStoragePrefix(prefix: unknown): void {
  if (prefix === undefined || prefix === '') return;
  assertStorageKey(String(prefix).replace(/\/+$/, '') || 'x', 'storage prefix');
  if (typeof prefix !== 'string') throw new InvalidInputError('storage prefix must be a string');
}

/**
 * The order `StorageProvider.list` returns keys in: by Unicode code point, which is also UTF-8
 * byte order (the order S3 uses). Plain `<` on JS strings differs for characters past U+FFFF.
 */
export function compareStorageKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // A surrogate starts a code point above U+FFFF, so it sorts after any other UTF-16 unit.
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? 1 : -1;
    return x < y ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}
