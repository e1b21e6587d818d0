// Scheduled jobs run once across instances on PostgreSQL (issue 13): of two instances starting
// the same job together one runs it and the other skips; different jobs do not block each other;
// the lock is free again after a run, also after one that threw.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectPostgres, type OpenedPostgres } from '../src/store/pg.js';
import { runExclusive } from '../src/store/pg-locks.js';
import { tempPostgres } from './helpers/postgres.js';

let database: Awaited<ReturnType<typeof tempPostgres>>;
let a: OpenedPostgres;
let b: OpenedPostgres;
beforeAll(async () => {
  database = await tempPostgres();
  [a, b] = await Promise.all([connectPostgres(database.url, { max: 2 }), connectPostgres(database.url, { max: 2 })]);
});
afterAll(async () => {
  await a?.close();
  await b?.close();
  await database?.drop();
});

describe('runExclusive', () => {
  it('two instances, one job: exactly one runs it; another job runs beside it; free again afterwards', async () => {
    const runs: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const first = runExclusive(a.pool, 'renewals', async () => {
      runs.push('a');
      await gate;
      return 'done';
    });
    await new Promise((r) => setTimeout(r, 100)); // a holds the lock now
    expect(await runExclusive(b.pool, 'renewals', async () => runs.push('b'))).toEqual({ ran: false });
    expect(await runExclusive(b.pool, 'plan-sync', async () => 'other')).toEqual({ ran: true, result: 'other' });
    release();
    expect(await first).toEqual({ ran: true, result: 'done' });
    expect(runs).toEqual(['a']);
    expect(await runExclusive(b.pool, 'renewals', async () => 'b later')).toEqual({ ran: true, result: 'b later' });
  });

  it('a run that throws releases the lock', async () => {
    await expect(runExclusive(a.pool, 'reconcile', async () => Promise.reject(new Error('provider down')))).rejects.toThrow(
      'provider down',
    );
    expect(await runExclusive(b.pool, 'reconcile', async () => 1)).toEqual({ ran: true, result: 1 });
  });
});
