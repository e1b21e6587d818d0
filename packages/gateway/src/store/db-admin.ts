import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ApigateError } from '@apigate/kernel';
import Database from 'better-sqlite3';
import { getTableName, is } from 'drizzle-orm';
import { PgTable } from 'drizzle-orm/pg-core';
import { getTableConfig, SQLiteTable } from 'drizzle-orm/sqlite-core';
import { DATABASE_FILE, MIGRATIONS_DIR, openDatabase } from './db.js';
import { type MigrationStatus, openPostgres } from './pg.js';
import * as sqliteSchema from './schema.js';
import * as pgSchema from './schema.pg.js';

/** Tags of the committed migrations in a drizzle folder, with the `when` drizzle records as applied. */
function journal(folder: string): { tag: string; when: number }[] {
  return (JSON.parse(readFileSync(path.join(folder, 'meta', '_journal.json'), 'utf8')) as { entries: { tag: string; when: number }[] })
    .entries;
}

/** Applied and pending migrations of `<dataDir>/apigate.db`, read-only (a missing file has every migration pending). */
export function sqliteMigrationStatus(dataDir: string): MigrationStatus & { file: string; exists: boolean } {
  const file = path.join(path.resolve(dataDir), DATABASE_FILE);
  const all = journal(MIGRATIONS_DIR);
  if (!existsSync(file)) return { file, exists: false, applied: 0, pending: all.map((e) => e.tag) };
  const sqlite = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const has = sqlite.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '__drizzle_migrations'").get();
    const done = new Set(has ? sqlite.prepare('SELECT created_at FROM __drizzle_migrations').pluck().all().map(Number) : []);
    return { file, exists: true, applied: done.size, pending: all.filter((e) => !done.has(e.when)).map((e) => e.tag) };
  } finally {
    sqlite.close();
  }
}

/** Every table of the schema, parents before the tables whose foreign keys point at them. */
export function tablesInCopyOrder(): SQLiteTable[] {
  const tables = (Object.values(sqliteSchema) as unknown[]).filter((v): v is SQLiteTable => is(v, SQLiteTable));
  const ordered: SQLiteTable[] = [];
  const visit = (t: SQLiteTable, path: Set<SQLiteTable>) => {
    if (ordered.includes(t) || path.has(t)) return;
    path.add(t);
    for (const fk of getTableConfig(t).foreignKeys) visit(fk.reference().foreignTable as SQLiteTable, path);
    ordered.push(t);
  };
  for (const t of tables.sort((a, b) => getTableName(a).localeCompare(getTableName(b)))) visit(t, new Set());
  return ordered;
}

const BATCH = 500;

/**
 * Copies every row of `<dataDir>/apigate.db` into the PostgreSQL database at `to` (migrated first),
 * in one transaction: all or nothing. Refuses a target that already holds rows, so a copy is never
 * merged into a running deployment. Settings stay encrypted as they are: the instances on
 * PostgreSQL need the same settings key (APIGATE_SECRET_KEY, or this data dir's secret.key).
 */
export async function copySqliteToPostgres(o: { dataDir: string; to: string }): Promise<{ table: string; rows: number }[]> {
  const file = path.join(path.resolve(o.dataDir), DATABASE_FILE);
  if (!existsSync(file)) throw new ApigateError('STORE_OPEN_FAILED', `no SQLite database to copy at ${file} (set APIGATE_DATA_DIR)`);
  const source = openDatabase(o.dataDir);
  const target = await openPostgres(o.to, { max: 2 }).catch((err: unknown) => {
    source.sqlite.close();
    throw err;
  });
  const pgTables = new Map(
    (Object.values(pgSchema) as unknown[]).filter((v): v is PgTable => is(v, PgTable)).map((t) => [getTableName(t), t]),
  );
  try {
    const order = tablesInCopyOrder();
    for (const t of order) {
      const name = getTableName(t);
      const r = await target.pool.query(`SELECT EXISTS (SELECT 1 FROM "${name}") AS full`);
      if (r.rows[0]?.full)
        throw new ApigateError(
          'STORE_COPY_REFUSED',
          `the target database ${target.where} already has rows in ${name}: copy into a new, empty database`,
        );
    }
    const counts: { table: string; rows: number }[] = [];
    await target.db.transaction(async (tx) => {
      for (const t of order) {
        const name = getTableName(t);
        const to = pgTables.get(name);
        if (!to) throw new ApigateError('STORE_COPY_REFUSED', `schema.pg.ts has no table ${name}: run pnpm db:generate`);
        const rows = source.db.select().from(t).all();
        for (let i = 0; i < rows.length; i += BATCH) await tx.insert(to as never).values(rows.slice(i, i + BATCH) as never);
        counts.push({ table: name, rows: rows.length });
      }
    });
    return counts;
  } finally {
    source.sqlite.close();
    await target.close();
  }
}
