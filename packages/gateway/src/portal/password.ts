import { randomBytes, type ScryptOptions, scrypt, timingSafeEqual } from 'node:crypto';

/** scrypt cost: N = 2^ln, block size r, parallelism p. */
export interface ScryptParams {
  ln: number;
  r: number;
  p: number;
}

/**
 * N = 2^16, r = 8, p = 2: one of OWASP's equivalent scrypt minimums (Password Storage Cheat
 * Sheet): 64 MiB per hash rather than the 128 MiB of N = 2^17, p = 1, for the same work per
 * guess, so a burst of log ins stays affordable in memory.
 */
export const DEFAULT_SCRYPT: ScryptParams = { ln: 16, r: 8, p: 2 };

const KEY_LENGTH = 32;
const SALT_LENGTH = 16;
/** `$scrypt$ln=16,r=8,p=2$<salt>$<hash>` (PHC string format, base64 without padding). */
const FORMAT = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;

function derive(password: string, salt: Buffer, { ln, r, p }: ScryptParams, length: number): Promise<Buffer> {
  const N = 2 ** ln;
  // Node refuses over 32 MiB by default; OpenSSL needs 128 * r * (N + 2 + p) bytes, plus slack.
  const opts: ScryptOptions = { N, r, p, maxmem: 128 * r * (N + 2 + p) + 1024 * 1024 };
  return new Promise((resolve, reject) =>
    scrypt(password.normalize('NFKC'), salt, length, opts, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

const b64 = (b: Buffer) => b.toString('base64').replace(/=+$/, '');

/** A salted scrypt hash with its parameters, as one string to store. Passwords are NFKC-normalised first. */
export async function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  const salt = randomBytes(SALT_LENGTH);
  const key = await derive(password, salt, params, KEY_LENGTH);
  return `$scrypt$ln=${params.ln},r=${params.r},p=${params.p}$${b64(salt)}$${b64(key)}`;
}

function parse(stored: string): { params: ScryptParams; salt: Buffer; key: Buffer } | undefined {
  const m = FORMAT.exec(stored);
  if (!m) return undefined;
  const params = { ln: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  // Bounds keep a tampered row from asking for gigabytes.
  if (params.ln < 10 || params.ln > 20 || params.r < 1 || params.r > 32 || params.p < 1 || params.p > 16) return undefined;
  return { params, salt: Buffer.from(m[4]!, 'base64'), key: Buffer.from(m[5]!, 'base64') };
}

/**
 * True when `password` matches `stored`, compared in constant time with the parameters stored
 * alongside the hash. A malformed or missing hash is false after the same work as a real check,
 * (with `params`, the ones new hashes get), so the answer time does not tell whether the
 * account exists or has a password.
 */
export async function verifyPassword(
  password: string,
  stored: string | null | undefined,
  params: ScryptParams = DEFAULT_SCRYPT,
): Promise<boolean> {
  const parsed = stored ? parse(stored) : undefined;
  const target = parsed ?? { params, salt: Buffer.alloc(SALT_LENGTH), key: Buffer.alloc(KEY_LENGTH) };
  const key = await derive(password, target.salt, target.params, target.key.length);
  return timingSafeEqual(key, target.key) && parsed !== undefined;
}

/** True when the stored hash was made with weaker parameters than today's (rehash it after a good log in). */
export function needsRehash(stored: string, params: ScryptParams = DEFAULT_SCRYPT): boolean {
  const parsed = parse(stored);
  if (!parsed) return true;
  const cost = (x: ScryptParams) => 2 ** x.ln * x.r * x.p;
  return cost(parsed.params) < cost(params) || parsed.key.length < KEY_LENGTH;
}
