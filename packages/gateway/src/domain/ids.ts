import { createHash, hash, randomBytes, timingSafeEqual } from 'node:crypto';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** `n` uniformly random base62 characters (rejection sampling: no modulo bias). */
export function randomBase62(n: number): string {
  let out = '';
  while (out.length < n) {
    for (const b of randomBytes(Math.ceil((n - out.length) * 1.3) + 4)) {
      if (b < 248) out += BASE62[b % 62]; // 248 = 4 * 62: the largest multiple below 256
      if (out.length === n) break;
    }
  }
  return out;
}

/** Entity ids: `usr_`, `plan_`, `key_`, `rt_`... followed by 16 base62 characters (95 bits). */
export const newId = (prefix: string) => `${prefix}_${randomBase62(16)}`;

/** Hex SHA-256. Keys and tokens carry 190+ random bits, so a fast hash is enough; lookups go by this. */
export const sha256Hex = (secret: string) => hash('sha256', secret, 'hex'); // one-shot: a third of createHash's cost on the hot path

/** Constant-time string equality (compares the hashes, so lengths may differ). */
export function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

export const API_KEY_PREFIX = 'ak_';
export const API_KEY_RANDOM_LENGTH = 40;
export const ADMIN_TOKEN_PREFIX = 'agt_';
/** Characters of a secret kept (with its `ak_`/`agt_` prefix) to show which key is which. */
const SHOWN_CHARS = 8;

export interface NewSecret {
  /** The full secret: shown once, never stored. */
  secret: string;
  /** What is shown later, e.g. `ak_Ab3dE9xZ`. */
  prefix: string;
  hash: string;
}

/** A fresh secret `<prefix><40 base62>` (238 random bits) with its display prefix and hash. */
export function newSecret(prefix: string): NewSecret {
  const secret = prefix + randomBase62(API_KEY_RANDOM_LENGTH);
  return { secret, prefix: secret.slice(0, prefix.length + SHOWN_CHARS), hash: sha256Hex(secret) };
}
