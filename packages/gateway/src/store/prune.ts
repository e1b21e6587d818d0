import { type SQL, sql } from 'drizzle-orm';
import type { SQLiteColumn, SQLiteTable } from 'drizzle-orm/sqlite-core';
import { affectedRows, type StoreDb } from './dialect.js';

/** Rows one housekeeping delete removes at most (SQLite answers synchronously: a few milliseconds of the event loop). */
export const PRUNE_CHUNK = 2000;

/**
 * Deletes the rows of `table` matching `where`, at most `chunk` at a time, each chunk in a short
 * transaction of its own, until a chunk finds fewer: a large backlog never holds the write lock (or
 * the SQLite connection) for long, and requests are served between chunks. `key` is the table's
 * primary key: the chunk is `DELETE ... WHERE (key) IN (SELECT key ... WHERE where LIMIT chunk)`,
 * the same SQL on SQLite and PostgreSQL. Returns the rows removed.
 */
export async function deleteInChunks(
  s: StoreDb,
  table: SQLiteTable,
  key: readonly SQLiteColumn[],
  where: SQL | undefined,
  chunk = PRUNE_CHUNK,
): Promise<number> {
  const fields = Object.fromEntries(key.map((c) => [c.name, c]));
  let removed = 0;
  for (;;) {
    const n = await s.tx(async (tx) => {
      const picked = tx.select(fields).from(table).where(where).limit(chunk);
      return affectedRows(await tx.delete(table).where(sql`(${sql.join([...key], sql`, `)}) in ${picked}`));
    });
    removed += n;
    if (n < chunk) return removed;
    await new Promise((resolve) => setImmediate(resolve));
  }
}
