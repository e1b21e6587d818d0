import { chmodSync, existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApigateError, describeError } from '@apigate/kernel';
import Database from 'better-sqlite3';
import { type BetterSQLite3Database, drizzle } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import * as schema from './schema.js';

export type AppSchema = typeof schema;
/** The drizzle database the gateway's tables live in. */
export type AppDatabase = BetterSQLite3Database<AppSchema>;

export const DATABASE_FILE = 'apigate.db';

/**
 * The committed migrations, found from this module's own location: src/store and dist/store
 * both sit two levels below the package root, where `drizzle/` ships (see "files").
 */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../drizzle', import.meta.url));

export interface OpenedDatabase {
  db: AppDatabase;
  sqlite: Database.Database;
  file: string;
  /** An existing database file readable or writable by group or others (left as it is; worth a warning). */
  looseMode: boolean;
}

/** The database and the WAL files SQLite keeps next to it. */
const databaseFiles = (file: string) => [file, `${file}-wal`, `${file}-shm`];

/**
 * Opens (creating the folder and file if needed) `<dataDir>/apigate.db` in WAL mode and migrates it.
 * A new database is created owner-only (0600: it holds key hashes, usage and encrypted secrets):
 * under a 077 umask, then chmod'ed; SQLite gives its -wal and -shm files the database's mode.
 */
export function openDatabase(dataDir: string): OpenedDatabase {
  const file = path.join(path.resolve(dataDir), DATABASE_FILE);
  let sqlite: Database.Database;
  const existed = existsSync(file);
  try {
    mkdirSync(path.dirname(file), { recursive: true });
    const umask = existed ? undefined : process.umask(0o077);
    try {
      sqlite = new Database(file);
    } finally {
      if (umask !== undefined) process.umask(umask);
    }
  } catch (cause) {
    throw new ApigateError('STORE_OPEN_FAILED', `cannot open the database ${file}: ${describeError(cause)}`, { cause });
  }
  try {
    sqlite.pragma('journal_mode = WAL');
    if (!existed) for (const f of databaseFiles(file)) if (existsSync(f)) chmodSync(f, 0o600);
    // The CLI and the server may write at once: wait for the other writer instead of failing.
    sqlite.pragma('busy_timeout = 5000');
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('foreign_keys = ON');
    const db = drizzle({ client: sqlite, schema });
    migrate(db, { migrationsFolder: MIGRATIONS_DIR });
    return { db, sqlite, file, looseMode: existed && (statSync(file).mode & 0o077) !== 0 };
  } catch (cause) {
    sqlite.close();
    throw new ApigateError('STORE_MIGRATION_FAILED', `cannot prepare the database ${file}: ${describeError(cause)}`, { cause });
  }
}
