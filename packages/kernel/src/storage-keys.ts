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
