import { hkdfSync, randomBytes } from 'node:crypto';
import { ApigateError, type Logger, silentLogger } from '@apigate/kernel';
import { eq } from 'drizzle-orm';
import { Domain } from '../domain/domain.js';
import { decrypt, encrypt, loadSecretKey, SECRET_KEY_ENV, type SecretKey } from './crypto.js';
import { type AppDatabase, openDatabase } from './db.js';
import { type MappingStore, SqliteMappingStore } from './mappings.js';
import { meta, settings } from './schema.js';
import { type SettingsStore, SqliteSettingsStore } from './settings.js';

export interface StoreOptions {
  /** Folder for apigate.db and secret.key; created if missing. The app reads APIGATE_DATA_DIR. */
  dataDir: string;
  /** APIGATE_SECRET_KEY: at least 32 characters. Without it, `<dataDir>/secret.key` is used. */
  secretKey?: string;
  logger?: Logger;
  /** The domain's clock (tests move it to check expiry); default the system clock. */
  now?: () => Date;
}

export interface Store {
  readonly settings: SettingsStore;
  readonly mappings: MappingStore;
  /** Users, plans, keys, routes, usage, subscriptions, webhooks and admin tokens; `domain.changes` tells caches what changed. */
  readonly domain: Domain;
  /** The drizzle database, for the gateway's domain tables. */
  readonly db: AppDatabase;
  /** Absolute path of the SQLite file. */
  readonly file: string;
  /**
   * This database's identity: 16 random hex characters made at its first open and kept in `meta`.
   * The app derives the default Redis key and queue prefixes from it, so deployments with
   * different databases never share keys or consume each other's jobs on one Redis.
   */
  readonly installId: string;
  /**
   * A 256-bit key for one purpose (e.g. signing a cookie), derived from the settings key: every
   * instance sharing the database and key derives the same one, and it is never the settings key.
   */
  deriveKey(purpose: string): Buffer;
  /** Closes the database; safe to call twice. */
  close(): Promise<void>;
}

const KEY_CHECK = 'secret_key_check';
const INSTALL_ID = 'install_id';
const KEY_CHECK_PLAINTEXT = 'apigate secret key check';
const KEY_CHECK_CONTEXT = `meta:${KEY_CHECK}`;

/**
 * Opens `<dataDir>/apigate.db`, runs pending migrations, loads the settings key and proves it
 * decrypts what was stored before, then loads the settings snapshot. Fails with one line
 * (an ApigateError) rather than opening half-usable.
 */
export async function openStore(opts: StoreOptions): Promise<Store> {
  const logger = opts.logger ?? silentLogger();
  const { db, sqlite, file, looseMode } = openDatabase(opts.dataDir);
  try {
    if (looseMode) logger.warn(`the database ${file} is readable by group or others; chmod 600 it (and its -wal and -shm files)`);
    // Two processes opening a new database at once: the first insert wins and both read it back.
    db.insert(meta).values({ key: INSTALL_ID, value: randomBytes(8).toString('hex') }).onConflictDoNothing().run();
    const installId = db.select().from(meta).where(eq(meta.key, INSTALL_ID)).get()!.value;
    const check = db.select().from(meta).where(eq(meta.key, KEY_CHECK)).get();
    const firstSecret = db.select().from(settings).where(eq(settings.secret, true)).limit(1).get();
    const key = await loadSecretKey({
      dataDir: opts.dataDir,
      secretKey: opts.secretKey,
      logger,
      mustExist: check !== undefined || firstSecret !== undefined,
    });
    const mismatch = (cause: unknown) =>
      new ApigateError(
        'SECRET_KEY_MISMATCH',
        `${SECRET_KEY_ENV} does not decrypt the stored settings (${key.source}, database ${file}); set the key they were written with`,
        { cause },
      );
    if (check) {
      tryDecrypt(key, check.value, KEY_CHECK_CONTEXT, mismatch);
    } else {
      // A database from before the check value existed: prove the key on a stored secret instead.
      if (firstSecret) tryDecrypt(key, firstSecret.value, firstSecret.key, mismatch);
      db.insert(meta).values({ key: KEY_CHECK, value: encrypt(key.key, KEY_CHECK_PLAINTEXT, KEY_CHECK_CONTEXT) }).onConflictDoNothing().run();
    }

    const settingsStore = new SqliteSettingsStore(db, key);
    settingsStore.load();
    let closed = false;
    return {
      settings: settingsStore,
      mappings: new SqliteMappingStore(db),
      domain: new Domain({ db, secretKey: key, ...(opts.now ? { now: opts.now } : {}) }),
      db,
      file,
      installId,
      deriveKey: (purpose) => Buffer.from(hkdfSync('sha256', key.key, Buffer.alloc(0), `apigate purpose key: ${purpose}`, 32)),
      async close() {
        if (closed) return;
        closed = true;
        sqlite.close();
      },
    };
  } catch (err) {
    sqlite.close();
    throw err;
  }
}

function tryDecrypt(key: SecretKey, value: string, context: string, fail: (cause: unknown) => Error): void {
  try {
    decrypt(key.key, value, context);
  } catch (cause) {
    throw fail(cause);
  }
}
