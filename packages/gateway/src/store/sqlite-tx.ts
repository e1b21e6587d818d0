import type Database from 'better-sqlite3';

/** Transaction queues by database file (see sqliteTransactions). */
const queues = new Map<string, { tail: Promise<unknown> }>();

/**
 * Async transactions on the one better-sqlite3 connection, which drizzle's better-sqlite3 driver
 * refuses ("Transaction function cannot return a promise"): the dialect-neutral repositories
 * write `await store.tx(async (tx) => ...)` for SQLite and PostgreSQL alike.
 *
 * BEGIN IMMEDIATE takes the write lock up front (another process waits busy_timeout instead of
 * failing mid-way); callers in this process queue behind a promise chain, since every query runs
 * on the same connection. `fn` must await only the database: better-sqlite3 answers in the same
 * tick, so no other request's queries interleave; network I/O inside would let them in.
 */
export function sqliteTransactions(sqlite: Database.Database): <T>(fn: () => Promise<T>) => Promise<T> {
  // One queue per database file in this process: a second connection to the same file (two
  // stores, as the tests open) would otherwise block the event loop in BEGIN IMMEDIATE for
  // busy_timeout while the first one's transaction waits for its next tick.
  const file = sqlite.memory ? undefined : sqlite.name;
  const queue =
    file !== undefined
      ? (queues.get(file) ?? { tail: Promise.resolve() as Promise<unknown> })
      : { tail: Promise.resolve() as Promise<unknown> };
  if (file !== undefined) queues.set(file, queue);
  return <T>(fn: () => Promise<T>): Promise<T> => {
    const run = async (): Promise<T> => {
      sqlite.exec('BEGIN IMMEDIATE');
      try {
        const result = await fn();
        sqlite.exec('COMMIT');
        return result;
      } catch (err) {
        if (sqlite.inTransaction) sqlite.exec('ROLLBACK');
        throw err;
      }
    };
    const next = queue.tail.then(run, run);
    queue.tail = next.catch(() => undefined);
    return next;
  };
}
