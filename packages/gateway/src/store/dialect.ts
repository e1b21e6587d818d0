import type Database from 'better-sqlite3';
import type { AppDatabase } from './db.js';
import type { PgDatabase } from './pg.js';
import * as schema from './schema.js';
import * as pgSchema from './schema.pg.js';
import { sqliteTransactions } from './sqlite-tx.js';

export type Dialect = 'sqlite' | 'postgres';

/** The gateway's tables, typed as the SQLite schema; on PostgreSQL they are schema.pg's (same names, same JS row shapes). */
export type Tables = typeof schema;

/** A database handle or an open transaction: repositories run the same queries on both. */
export type Tx = AppDatabase;

/**
 * What repositories need to run on either dialect: the drizzle database (typed as the SQLite one;
 * on PostgreSQL the node-postgres database, whose builders have the same surface for what the
 * repositories use: select/insert/update/delete, returning, onConflict*, sql``), the tables to
 * query, and async transactions. Repositories always `await` queries (never `.get()/.all()/.run()`)
 * and take tables from `t`, never from schema.ts.
 */
export interface StoreDb {
  readonly dialect: Dialect;
  readonly db: AppDatabase;
  readonly t: Tables;
  /**
   * Runs `fn` in one transaction: all of its writes or none. SQLite: BEGIN IMMEDIATE on the one
   * connection (callers queue); PostgreSQL: a pooled connection of its own. `fn` must use `tx`
   * for every query and await only the database; never nest `tx` calls.
   */
  tx<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
}

export function sqliteStoreDb(db: AppDatabase, sqlite: Database.Database): StoreDb {
  const run = sqliteTransactions(sqlite);
  return { dialect: 'sqlite', db, t: schema, tx: (fn) => run(() => fn(db)) };
}

export function postgresStoreDb(db: PgDatabase): StoreDb {
  return {
    dialect: 'postgres',
    db: db as unknown as AppDatabase,
    t: pgSchema as unknown as Tables,
    tx: (fn) => db.transaction((tx) => fn(tx as unknown as AppDatabase)),
  };
}

/** How many rows a write without `returning` changed: better-sqlite3's `changes`, node-postgres' `rowCount`. */
export function affectedRows(result: unknown): number {
  const r = result as { changes?: number; rowCount?: number | null };
  return r.changes ?? r.rowCount ?? 0;
}
