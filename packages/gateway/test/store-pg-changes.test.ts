// Change notifications between instances on PostgreSQL (issue 13): a change committed through
// one connection reaches another instance's listener well within a second, a rolled-back one
// never does, and a listener whose connection is killed reconnects and says "re-read everything".
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChangeListener, listenForChanges, notifyChangeSql } from '../src/store/pg-changes.js';
import { connectPostgres, type OpenedPostgres } from '../src/store/pg.js';
import { tempPostgres } from './helpers/postgres.js';

let database: Awaited<ReturnType<typeof tempPostgres>>;
let writer: OpenedPostgres;
const listeners: ChangeListener[] = [];

beforeAll(async () => {
  database = await tempPostgres();
  writer = await connectPostgres(database.url, { max: 2 });
});
afterAll(async () => {
  for (const l of listeners.splice(0)) await l.close();
  await writer?.close();
  await database?.drop();
});

function listen(retryMs = 100) {
  const seen: { entity: string | undefined; at: number }[] = [];
  const l = listenForChanges(database.url, (entity) => seen.push({ entity, at: Date.now() }), { retryMs });
  listeners.push(l);
  return { l, seen };
}

const until = async (what: string, test: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!test()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('change notifications over LISTEN/NOTIFY', () => {
  it('a committed change reaches another listener within a second; a rolled-back one never', async () => {
    const { l, seen } = listen();
    await l.ready;
    await expect(
      writer.db.transaction(async (tx) => {
        await tx.execute(notifyChangeSql('plans'));
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    const sent = Date.now();
    await writer.db.transaction(async (tx) => {
      await tx.execute(notifyChangeSql('keys'));
    });
    await until('the keys notification', () => seen.length > 0, 1000);
    expect(seen[0]!.entity).toBe('keys');
    expect(seen[0]!.at - sent).toBeLessThan(1000);
    await new Promise((r) => setTimeout(r, 200));
    expect(seen.map((s) => s.entity)).toEqual(['keys']);
  });

  it('reconnects after its connection is killed, reports "anything may have changed", and hears later changes', async () => {
    const { l, seen } = listen();
    await l.ready;
    const killed = await writer.pool.query(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN apigate_changes'",
    );
    expect(killed.rowCount).toBeGreaterThanOrEqual(1);
    await until('the reconnect', () => seen.some((s) => s.entity === undefined));
    await writer.db.execute(notifyChangeSql('routes'));
    await until('the routes notification', () => seen.some((s) => s.entity === 'routes'));
  });
});
