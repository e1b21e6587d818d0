import pg from 'pg';
import { afterAll, afterEach } from 'vitest';
import { openStore, type Store } from '../../src/index.js';
import { KEY_A, tempDir } from '../helpers.js';
import { tempPostgres } from './postgres.js';

const open: Store[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

/** The dialects the store tests run on: `describe.each(DIALECTS)('%s', (dialect) => ...)`. */
export const DIALECTS = ['sqlite', 'postgres'] as const;
export type TestDialect = (typeof DIALECTS)[number];

// PostgreSQL: one database per test file (made on first use, dropped after the file), emptied
// for each fresh store, so the pg runs cost one CREATE DATABASE and migration per file.
let pgDatabase: ReturnType<typeof tempPostgres> | undefined;
afterAll(async () => {
  const db = pgDatabase;
  pgDatabase = undefined;
  if (db) await (await db).drop();
});

/** The URL of this test file's PostgreSQL database (created and migrated on first use). */
export async function testPostgresUrl(): Promise<string> {
  pgDatabase ??= tempPostgres('apigate_store');
  return (await pgDatabase).url;
}

/** Empties every table of the file's PostgreSQL database (migrations stay applied). */
async function emptyPostgres(url: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<{ t: string }>("SELECT quote_ident(tablename) AS t FROM pg_tables WHERE schemaname = 'public'");
    if (rows.length) await c.query(`TRUNCATE ${rows.map((r) => r.t).join(', ')} CASCADE`);
  } finally {
    await c.end();
  }
}

/** The file's PostgreSQL database, emptied: for a store a test opens itself. */
export async function freshPostgresUrl(): Promise<string> {
  const url = await testPostgresUrl();
  await emptyPostgres(url);
  return url;
}

/**
 * A store (closed after the test) with an empty database: SQLite in a fresh temp folder, or the
 * file's PostgreSQL database emptied. Pass the `dataDir` of an earlier one for a second
 * connection to the same database (another process, another instance). `clock.now` can be moved.
 */
export async function domainStore(opts: { dataDir?: string; start?: Date; dialect?: TestDialect } = {}) {
  const dialect = opts.dialect ?? 'sqlite';
  const dataDir = opts.dataDir ?? (await tempDir());
  let databaseUrl: string | undefined;
  if (dialect === 'postgres') {
    databaseUrl = await testPostgresUrl();
    if (opts.dataDir === undefined) await emptyPostgres(databaseUrl);
  }
  const clock = { now: opts.start ?? new Date('2025-03-10T12:00:00Z') };
  const store = await openStore({ dataDir, secretKey: KEY_A, now: () => clock.now, ...(databaseUrl ? { databaseUrl } : {}) });
  open.push(store);
  return { store, d: store.domain, dataDir, clock, dialect };
}
