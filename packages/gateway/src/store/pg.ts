import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApigateError, describeError, maskUrlCredentials, registerSecrets, urlCredentials } from '@apigate/kernel';
import { sql } from 'drizzle-orm';
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import * as schema from './schema.pg.js';

/** The drizzle database over PostgreSQL (tables from schema.pg.ts, generated from schema.ts). */
export type PgDatabase = NodePgDatabase<typeof schema>;

/** The committed PostgreSQL migrations (drizzle-kit, drizzle.pg.config.ts), shipped with the package. */
export const PG_MIGRATIONS_DIR = fileURLToPath(new URL('../../drizzle/pg', import.meta.url));

/**
 * Key of the session advisory lock migrations run under: instances starting together against one
 * database take turns, and the second finds nothing left to apply. ('apigate' as ASCII, 48 bits.)
 */
export const MIGRATION_LOCK_KEY = 0x617069676174n;

export const isPostgresUrl = (url: string | undefined): url is string => /^postgres(?:ql)?:\/\//i.test(url?.trim() ?? '');

export interface OpenedPostgres {
  db: PgDatabase;
  pool: pg.Pool;
  /** The URL with its password masked, for logs and errors. */
  where: string;
  close(): Promise<void>;
}

/** Opens a pool on `url`, checks the connection and applies pending migrations (once, under the advisory lock). */
export async function openPostgres(url: string, opts: { max?: number } = {}): Promise<OpenedPostgres> {
  return connectPostgres(url, { ...opts, migrate: true });
}

/** A pool on `url` with the connection checked; `migrate`: pending migrations applied first. */
export async function connectPostgres(url: string, opts: { max?: number; migrate?: boolean } = {}): Promise<OpenedPostgres> {
  registerSecrets(urlCredentials(url));
  const where = maskUrlCredentials(url);
  const pool = new pg.Pool({ connectionString: url, max: opts.max ?? 10 });
  // An idle client that loses its connection must not crash the process; the next query reports it.
  pool.on('error', () => undefined);
  try {
    if (opts.migrate) await migratePostgres(pool);
    else await pool.query('SELECT 1');
  } catch (cause) {
    await pool.end().catch(() => undefined);
    throw new ApigateError('STORE_OPEN_FAILED', `cannot prepare the PostgreSQL database ${where}: ${describeError(cause)}`, { cause });
  }
  return { db: drizzle({ client: pool, schema }), pool, where, close: () => pool.end() };
}

/** Applies the pending migrations on one connection holding the advisory lock. */
export async function migratePostgres(pool: pg.Pool): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY.toString()]);
    try {
      await migrate(drizzle({ client }), { migrationsFolder: PG_MIGRATIONS_DIR });
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY.toString()]);
    }
  } finally {
    client.release();
  }
}

export interface MigrationStatus {
  applied: number;
  /** Tags of the committed migrations not applied yet, in order. */
  pending: string[];
}

/** Which committed migrations the database has (drizzle's own bookkeeping table), for `apigate db status`. */
export async function postgresMigrationStatus(db: PgDatabase): Promise<MigrationStatus> {
  const journal = JSON.parse(readFileSync(path.join(PG_MIGRATIONS_DIR, 'meta', '_journal.json'), 'utf8')) as {
    entries: { tag: string; when: number }[];
  };
  const exists = await db.execute(sql`SELECT to_regclass('drizzle.__drizzle_migrations') AS t`);
  const rows = exists.rows[0]?.t ? (await db.execute(sql`SELECT created_at FROM drizzle.__drizzle_migrations`)).rows : [];
  const done = new Set(rows.map((r) => Number(r.created_at)));
  return { applied: done.size, pending: journal.entries.filter((e) => !done.has(e.when)).map((e) => e.tag) };
}
