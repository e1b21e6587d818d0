import { describe, expect, it } from 'vitest';
import { hashPassword, verifyPassword } from '../src/index.js';
import { DEFAULT_SCRYPT, needsRehash } from '../src/portal/password.js';

const LOW = { ln: 10, r: 8, p: 1 };

describe('portal password hashes', () => {
  it(
    'hashes with the default scrypt cost, a fresh salt each time, and verifies with the stored parameters',
    { timeout: 60_000 },
    async () => {
      const a = await hashPassword('correct horse battery');
      const b = await hashPassword('correct horse battery');
      expect(a).toMatch(/^\$scrypt\$ln=16,r=8,p=2\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
      expect(a).not.toBe(b);
      expect(await verifyPassword('correct horse battery', a)).toBe(true);
      expect(await verifyPassword('correct horse batterY', a)).toBe(false);
      expect(needsRehash(a)).toBe(false);
      expect(DEFAULT_SCRYPT).toEqual({ ln: 16, r: 8, p: 2 });
    },
  );

  it('verifies an older, cheaper hash by its own parameters and says it needs a rehash', async () => {
    const old = await hashPassword('pässwörd-1', LOW);
    expect(old.startsWith('$scrypt$ln=10,r=8,p=1$')).toBe(true);
    expect(await verifyPassword('pässwörd-1', old, LOW)).toBe(true);
    expect(needsRehash(old)).toBe(true);
    expect(needsRehash(old, LOW)).toBe(false);
  });

  it('normalises Unicode, so the same password typed as composed or decomposed characters matches', async () => {
    const h = await hashPassword('caf\u00e9 au lait', LOW);
    expect(await verifyPassword('cafe\u0301 au lait', h, LOW)).toBe(true);
  });

  it('answers false, never throws, for a missing, malformed or tampered hash', async () => {
    const h = await hashPassword('secret-123', LOW);
    // One character early in the hash part flipped (the last one only carries padding bits).
    const at = h.lastIndexOf('$') + 1;
    const tampered = h.slice(0, at) + (h[at] === 'A' ? 'B' : 'A') + h.slice(at + 1);
    for (const stored of [null, undefined, '', 'plaintext', '$scrypt$ln=40,r=8,p=1$AAAA$AAAA', tampered]) {
      expect(await verifyPassword('secret-123', stored, LOW)).toBe(false);
    }
    expect(needsRehash('plaintext')).toBe(true);
  });
});
