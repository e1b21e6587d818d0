// The async transaction helper the dialect-neutral repositories use on SQLite (issue 13):
// drizzle's better-sqlite3 driver refuses an async transaction function, this one commits,
// rolls back on a throw, and queues concurrent callers on the single connection.
import Database from 'better-sqlite3';
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import { describe, expect, it } from 'vitest';
import { sqliteTransactions } from '../src/store/sqlite-tx.js';

function setUp() {
  const sqlite = new Database(':memory:');
  const db = drizzle({ client: sqlite });
  sqlite.exec('CREATE TABLE t (x INTEGER NOT NULL UNIQUE)');
  const rows = () => sqlite.prepare('SELECT x FROM t ORDER BY x').pluck().all();
  return { sqlite, db, tx: sqliteTransactions(sqlite), rows };
}

describe('sqliteTransactions', () => {
  it("drizzle's own driver refuses an async transaction (why the helper exists)", async () => {
    const { db } = setUp();
    expect(() => db.transaction(async () => undefined)).toThrow(/cannot return a promise/);
  });

  it('commits awaited drizzle statements and returns the result', async () => {
    const { db, tx, rows } = setUp();
    const out = await tx(async () => {
      await db.run(sql`INSERT INTO t VALUES (1)`);
      await db.run(sql`INSERT INTO t VALUES (2)`);
      return (await db.all<{ n: number }>(sql`SELECT count(*) AS n FROM t`))[0]!.n;
    });
    expect(out).toBe(2);
    expect(rows()).toEqual([1, 2]);
  });

  it('rolls back everything when the function throws, and the connection is usable after', async () => {
    const { db, sqlite, tx, rows } = setUp();
    await expect(
      tx(async () => {
        await db.run(sql`INSERT INTO t VALUES (1)`);
        await db.run(sql`INSERT INTO t VALUES (1)`); // unique violation
      }),
    ).rejects.toThrow(/Failed to run the query 'INSERT INTO t VALUES \(1\)'/);
    expect(rows()).toEqual([]);
    expect(sqlite.inTransaction).toBe(false);
    await tx(async () => db.run(sql`INSERT INTO t VALUES (3)`));
    expect(rows()).toEqual([3]);
  });

  it('queues concurrent callers: each sees the one before committed, none nests', async () => {
    const { db, tx, rows } = setUp();
    const next = () =>
      tx(async () => {
        const [{ m }] = (await db.all<{ m: number | null }>(sql`SELECT max(x) AS m FROM t`)) as [{ m: number | null }];
        await new Promise((r) => setTimeout(r, 5)); // yield: another caller must still wait
        await db.run(sql`INSERT INTO t VALUES (${(m ?? 0) + 1})`);
      });
    const results = await Promise.allSettled([next(), next(), next(), next()]);
    expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
    expect(rows()).toEqual([1, 2, 3, 4]);
  });
});
