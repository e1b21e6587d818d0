import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ApigateError, type Logger } from '@apigate/kernel';

/** Env var the app reads into `StoreOptions.secretKey`. */
export const SECRET_KEY_ENV = 'APIGATE_SECRET_KEY';
export const KEY_FILE_NAME = 'secret.key';
export const MIN_SECRET_KEY_LENGTH = 32;

// Fixed HKDF inputs: changing either changes every derived key, so they are part of the v1 format.
const HKDF_SALT = Buffer.from('apigate', 'utf8');
const HKDF_INFO = Buffer.from('apigate settings encryption v1', 'utf8');
const VERSION = 'v1';
const IV_BYTES = 12;

/** The 32-byte AES key and where its material came from (for error messages; never the key). */
export interface SecretKey {
  readonly key: Buffer;
  readonly source: string;
}

/** Stretches any string of at least 32 characters into a 256-bit key. */
export function deriveKey(material: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(material, 'utf8'), HKDF_SALT, HKDF_INFO, 32));
}

/**
 * AES-256-GCM with a fresh 12-byte IV per value, as `v1:<iv>:<tag>:<ciphertext>` (base64url).
 * `context` is bound as associated data (the setting key), so a ciphertext copied onto
 * another row does not decrypt.
 */
export function encrypt(key: Buffer, plaintext: string, context: string): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(context, 'utf8'));
  const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return [VERSION, iv, cipher.getAuthTag(), ct].map((p) => (typeof p === 'string' ? p : p.toString('base64url'))).join(':');
}

/** Inverse of `encrypt`; throws when the key, the context or the bytes are wrong. */
export function decrypt(key: Buffer, stored: string, context: string): string {
  const parts = stored.split(':');
  if (parts.length !== 4 || parts[0] !== VERSION) {
    throw new Error(`not a ${VERSION} ciphertext`);
  }
  const [, iv, tag, ct] = parts.map((p) => Buffer.from(p!, 'base64url')) as [Buffer, Buffer, Buffer, Buffer];
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAAD(Buffer.from(context, 'utf8'));
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(ct), decipher.final()]).toString('utf8');
}

/**
 * The settings key: APIGATE_SECRET_KEY when given, else `<dataDir>/secret.key`, created on
 * first run (mode 0600). The file holds 32 random bytes written as base64url text, derived
 * like an env key, so `APIGATE_SECRET_KEY=$(cat data/secret.key)` is the same key.
 *
 * `mustExist` is set when the database already holds encrypted data: a missing key file
 * then means the key was lost or moved, and making a new one would only hide that.
 */
export async function loadSecretKey(opts: {
  dataDir: string;
  secretKey?: string | undefined;
  logger: Logger;
  mustExist: boolean;
}): Promise<SecretKey> {
  if (opts.secretKey !== undefined && opts.secretKey !== '') {
    if (opts.secretKey.length < MIN_SECRET_KEY_LENGTH) {
      throw new ApigateError(
        'SECRET_KEY_INVALID',
        `${SECRET_KEY_ENV} is too short (${opts.secretKey.length} characters): expected at least ${MIN_SECRET_KEY_LENGTH} characters, e.g. the output of \`openssl rand -base64 32\``,
      );
    }
    return { key: deriveKey(opts.secretKey), source: `key from ${SECRET_KEY_ENV}` };
  }

  const file = path.join(opts.dataDir, KEY_FILE_NAME);
  const source = `key from ${file}`;
  let material = await readKeyFile(file, opts.logger);
  if (material === undefined) {
    if (opts.mustExist) {
      throw new ApigateError(
        'SECRET_KEY_MISSING',
        `the database holds encrypted settings but ${SECRET_KEY_ENV} is not set and ${file} does not exist; restore the key file or set ${SECRET_KEY_ENV} to the key the settings were written with`,
      );
    }
    material = randomBytes(32).toString('base64url');
    try {
      // 'wx': never overwrite a key another process created a moment ago.
      await writeFile(file, `${material}\n`, { mode: 0o600, flag: 'wx' });
      await chmod(file, 0o600); // the umask may have narrowed it further, never widened; be exact
      opts.logger.info({ file }, `created the settings encryption key file ${file}; back it up with the database`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw keyFileError(file, err);
      material = (await readKeyFile(file, opts.logger))!;
    }
  }
  return { key: deriveKey(material), source };
}

async function readKeyFile(file: string, logger: Logger): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw keyFileError(file, err);
  }
  const material = text.trim();
  if (material.length < MIN_SECRET_KEY_LENGTH) {
    throw new ApigateError(
      'SECRET_KEY_INVALID',
      `key file ${file} holds ${material.length} characters: expected at least ${MIN_SECRET_KEY_LENGTH} (delete it only if no settings were encrypted with it)`,
    );
  }
  // Refusing would stop a server over a permissions slip; the key still works, so say so loudly.
  const { mode } = await stat(file);
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
    logger.warn({ file, mode: `0${(mode & 0o777).toString(8)}` }, `key file ${file} is readable by group or others; run chmod 600 ${file}`);
  }
  return material;
}

function keyFileError(file: string, cause: unknown): ApigateError {
  return new ApigateError('SECRET_KEY_FILE', `cannot use key file ${file}: ${(cause as Error)?.message ?? cause}`, { cause });
}
