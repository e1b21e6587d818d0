import type pg from 'pg';

/**
 * Runs `fn` only if no other instance is running the job `name` right now: a session advisory lock
 * (`pg_try_advisory_lock(hashtext(name))`) held on one pooled connection for the run. Scheduled jobs
 * (renewals, reconciliation, plan sync, certificate renewal) every instance starts on its timer
 * then run once per tick, whichever instance takes it; the others skip (`ran: false`) and wait for
 * their next tick. A crashed instance's lock goes with its connection.
 */
export async function runExclusive<T>(
  pool: pg.Pool,
  name: string,
  fn: () => Promise<T>,
): Promise<{ ran: true; result: T } | { ran: false }> {
  const client = await pool.connect();
  try {
    const got = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS ok', [`apigate:job:${name}`]);
    if (!got.rows[0]?.ok) return { ran: false };
    try {
      return { ran: true, result: await fn() };
    } finally {
      await client.query('SELECT pg_advisory_unlock(hashtext($1))', [`apigate:job:${name}`]);
    }
  } finally {
    client.release();
  }
}
