import { mkdirSync } from 'node:fs';
import { hkdfSync, randomBytes } from 'node:crypto';
import path from 'node:path';
import { ApigateError, type Logger, silentLogger } from '@apigate/kernel';
import { eq } from 'drizzle-orm';
import { Domain } from './domain.js';
import { decrypt, encrypt, loadSecretKey, SECRET_KEY_ENV, type SecretKey } from '../store/crypto.js';
import { openDatabase } from '../store/db.js';
import { postgresStoreDb, type StoreDb, sqliteStoreDb } from '../store/dialect.js';
import { DbMappingStore, type MappingStore } from '../store/mappings.js';
import { isPostgresUrl, openPostgres } from '../store/pg.js';
import { type ChangeListener, listenForChanges } from '../store/pg-changes.js';
import { runExclusive } from '../store/pg-locks.js';
import { DbSettingsStore, type SettingsStore } from '../store/settings.js';

/** The environment variable the app reads for the PostgreSQL URL (`postgres://user:password@host/db`). */
export const DATABASE_URL_ENV = 'APIGATE_DATABASE_URL';

export interface StoreOptions {
  /** Folder for apigate.db and secret.key; created if missing. The app reads APIGATE_DATA_DIR. */
  dataDir: string;
  /**
   * APIGATE_DATABASE_URL: a `postgres://` URL selects PostgreSQL (nothing is written to the data
   * dir then, except secret.key when no secretKey is given); unset or empty: SQLite in dataDir.
   */
  databaseUrl?: string | undefined;
  /** APIGATE_SECRET_KEY: at least 32 characters. Without it, `<dataDir>/secret.key` is used. */
  secretKey?: string;
  logger?: Logger;
  /** The domain's clock (tests move it to check expiry); default the system clock. */
  now?: () => Date;
}

export interface Store extends StoreDb {
  readonly settings: SettingsStore;
  readonly mappings: MappingStore;
  /** Users, plans, keys, routes, usage, subscriptions, webhooks and admin tokens; `domain.changes` tells caches what changed. */
  readonly domain: Domain;
  /** Where the data is, for messages: the SQLite file's absolute path, or the PostgreSQL URL with its password masked. */
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
  /**
   * Runs `fn` unless another instance sharing the database runs the job `name` right now
   * (PostgreSQL: a session advisory lock, `runExclusive`); `ran: false` when it was skipped.
   * SQLite has one host's processes on the file: it just runs `fn`.
   */
  exclusive<T>(name: string, fn: () => Promise<T>): Promise<{ ran: true; result: T } | { ran: false }>;
  /** Closes the database; safe to call twice. */
  close(): Promise<void>;
}

const KEY_CHECK = 'secret_key_check';
const INSTALL_ID = 'install_id';
const KEY_CHECK_PLAINTEXT = 'apigate secret key check';
const KEY_CHECK_CONTEXT = `meta:${KEY_CHECK}`;

/**
 * Opens the database (PostgreSQL when `databaseUrl` is a postgres:// URL, else `<dataDir>/apigate.db`),
 * runs pending migrations, loads the settings key and proves it decrypts what was stored before,
 * then loads the settings snapshot. Fails with one line (an ApigateError) rather than opening half-usable.
 */
export async function openStore(opts: StoreOptions): Promise<Store> {
  const logger = opts.logger ?? silentLogger();
  const url = opts.databaseUrl?.trim();
  let s: StoreDb;
  let where: string;
  let closeDb: () => Promise<void>;
  let exclusive: Store['exclusive'] = async (_name, fn) => ({ ran: true, result: await fn() });
  let listener: ChangeListener | undefined;
  if (url) {
    if (!isPostgresUrl(url)) {
      throw new ApigateError(
        'STORE_URL_INVALID',
        `${DATABASE_URL_ENV} must be a postgres:// or postgresql:// URL (or unset for SQLite in the data dir)`,
      );
    }
    const pg = await openPostgres(url);
    s = postgresStoreDb(pg.db);
    where = pg.where;
    closeDb = () => pg.close();
    exclusive = (name, fn) => runExclusive(pg.pool, name, fn);
  } else {
    const opened = openDatabase(opts.dataDir);
    if (opened.looseMode)
      logger.warn(`the database ${opened.file} is readable by group or others; chmod 600 it (and its -wal and -shm files)`);
    s = sqliteStoreDb(opened.db, opened.sqlite);
    where = opened.file;
    closeDb = async () => {
      opened.sqlite.close();
    };
  }
  try {
    const { db } = s;
    const { meta, settings } = s.t;
    // Two processes opening a new database at once: the first insert wins and both read it back.
    await db
      .insert(meta)
      .values({ key: INSTALL_ID, value: randomBytes(8).toString('hex') })
      .onConflictDoNothing();
    const [install] = await db.select().from(meta).where(eq(meta.key, INSTALL_ID));
    const installId = install!.value;
    const [check] = await db.select().from(meta).where(eq(meta.key, KEY_CHECK));
    const [firstSecret] = await db.select().from(settings).where(eq(settings.secret, true)).limit(1);
    // On PostgreSQL the data dir is only needed for secret.key (APIGATE_SECRET_KEY unset).
    if (url && !opts.secretKey) mkdirSync(path.resolve(opts.dataDir), { recursive: true, mode: 0o700 });
    const key = await loadSecretKey({
      dataDir: opts.dataDir,
      secretKey: opts.secretKey,
      logger,
      mustExist: check !== undefined || firstSecret !== undefined,
    });
    const mismatch = (cause: unknown) =>
      new ApigateError(
        'SECRET_KEY_MISMATCH',
        `${SECRET_KEY_ENV} does not decrypt the stored settings (${key.source}, database ${where}); set the key they were written with`,
        { cause },
      );
    if (check) {
      tryDecrypt(key, check.value, KEY_CHECK_CONTEXT, mismatch);
    } else {
      // A database from before the check value existed: prove the key on a stored secret instead.
      if (firstSecret) tryDecrypt(key, firstSecret.value, firstSecret.key, mismatch);
      await db
        .insert(meta)
        .values({ key: KEY_CHECK, value: encrypt(key.key, KEY_CHECK_PLAINTEXT, KEY_CHECK_CONTEXT) })
        .onConflictDoNothing();
    }

    const domain = new Domain({ store: s, secretKey: key, ...(opts.now ? { now: opts.now } : {}) });
    await domain.changes.load();
    // set/unset bump the `settings` change version: running instances reload (see startApiGate).
    const settingsStore = new DbSettingsStore(s, key, domain.changes);
    await settingsStore.load();
    // Another instance's writes reach this one's caches at its commit (the version poll stays the fallback).
    if (url) {
      listener = listenForChanges(url, () => void domain.changes.poll().catch(() => undefined), { logger });
      // Open only once the LISTEN is in place (so no write committed after this is missed), but never
      // hang on it: the version poll covers a listener that is slow to connect.
      await Promise.race([listener.ready, new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
    }
    let closed = false;
    return {
      dialect: s.dialect,
      db: s.db,
      t: s.t,
      tx: s.tx,
      settings: settingsStore,
      mappings: new DbMappingStore(s),
      domain,
      file: where,
      installId,
      exclusive,
      deriveKey: (purpose) => Buffer.from(hkdfSync('sha256', key.key, Buffer.alloc(0), `apigate purpose key: ${purpose}`, 32)),
      async close() {
        if (closed) return;
        closed = true;
        await listener?.close();
        await closeDb();
      },
    };
  } catch (err) {
    await listener?.close();
    await closeDb();
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
