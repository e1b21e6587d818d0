import { describe, expect, it } from 'vitest';
import { compareStorageKeys } from '../src/storage-keys.js';

describe('compareStorageKeys', () => {
  it('orders by code point, which is UTF-8 byte order', () => {
    const keys = ['a/b', 'a0', 'a-b', 'a', 'B', '\u{1F680}', '\uFF5E', 'é', 'a.txt', ''];
    const byBytes = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    expect([...keys].sort(compareStorageKeys)).toEqual(byBytes);
    // Plain string order puts U+FF5E after the rocket (a surrogate pair); code point order does not.
    expect(byBytes.indexOf('\uFF5E')).toBeLessThan(byBytes.indexOf('\u{1F680}'));
    expect(compareStorageKeys('x', 'x')).toBe(0);
  });
});
