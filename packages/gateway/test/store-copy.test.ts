// `apigate db copy --to postgres://...` underneath (issue 13): every table of a SQLite store copied
// into a new PostgreSQL database in foreign-key order, values intact (dates, booleans, JSON, bytes,
// encrypted settings), migrations status on both sides, and a target with rows refused.
import { eq, getTableName } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copySqliteToPostgres, sqliteMigrationStatus, tablesInCopyOrder } from '../src/store/db-admin.js';
import { openPostgres } from '../src/store/pg.js';
import * as s from '../src/store/schema.js';
import * as p from '../src/store/schema.pg.js';
import { openStore } from '../src/domain/open-store.js';
import { tempDir } from './helpers.js';
import { tempPostgres } from './helpers/postgres.js';

let database: Awaited<ReturnType<typeof tempPostgres>>;
beforeAll(async () => {
  database = await tempPostgres();
});
afterAll(async () => {
  await database?.drop();
});

describe('SQLite -> PostgreSQL copy', () => {
  it('tables come parents first', () => {
    const names = tablesInCopyOrder().map((t) => getTableName(t));
    expect(names.indexOf('plans')).toBeLessThan(names.indexOf('users'));
    expect(names.indexOf('users')).toBeLessThan(names.indexOf('api_keys'));
    expect(names.indexOf('subscriptions')).toBeLessThan(names.indexOf('usage_reports'));
    expect(names.indexOf('webhook_endpoints')).toBeLessThan(names.indexOf('webhook_deliveries'));
    expect(new Set(names).size).toBe(names.length);
  });

  it('copies every row with its values, reports counts, and refuses a target that has rows', async () => {
    const dataDir = await tempDir();
    expect(sqliteMigrationStatus(dataDir)).toMatchObject({ exists: false, applied: 0 });
    const store = await openStore({ dataDir, secretKey: 'k'.repeat(40) });
    const at = new Date('2026-12-03T10:00:00.123Z');
    await store.settings.set('payment.stripe.secret_key', 'sk_test_copy_me', { secret: true });
    store.db
      .insert(s.plans)
      .values({ id: 'plan_1', name: 'free', isDefault: true, requestsPerMinute: 10, createdAt: at, updatedAt: at })
      .run();
    store.db.insert(s.users).values({ id: 'usr_1', email: 'a@example.com', planId: 'plan_1', createdAt: at, updatedAt: at }).run();
    store.db.insert(s.apiKeys).values({ id: 'key_1', userId: 'usr_1', prefix: 'ag_x', hash: 'h1', createdAt: at }).run();
    store.db
      .insert(s.routes)
      .values({ id: 'rt_1', pathPrefix: '/w', upstreamUrl: 'http://u', methods: ['GET'], stripPrefix: true, createdAt: at, updatedAt: at })
      .run();
    store.db
      .insert(s.paymentEvents)
      .values({ provider: 'dummy', eventId: 'evt_1', type: 't', occurredAt: at, receivedAt: at, rawBody: Buffer.from('{"a":1}\u0000') })
      .run();
    const rows = 1200; // more than one insert batch
    store.db
      .insert(s.usageMinutely)
      .values(
        Array.from({ length: rows }, (_, i) => ({
          keyId: 'key_1',
          userId: 'usr_1',
          minute: new Date(at.getTime() + i * 60_000),
          requests: i,
        })),
      )
      .run();
    const installId = store.installId;
    await store.close();
    const status = sqliteMigrationStatus(dataDir);
    expect(status.exists).toBe(true);
    expect(status.pending).toEqual([]);
    expect(status.applied).toBeGreaterThan(0);

    const counts = await copySqliteToPostgres({ dataDir, to: database.url });
    const by = Object.fromEntries(counts.map((c) => [c.table, c.rows]));
    expect(by).toMatchObject({ plans: 1, users: 1, api_keys: 1, routes: 1, payment_events: 1, usage_minutely: rows, settings: 1 });
    expect(by.meta).toBeGreaterThanOrEqual(2); // install id and the settings-key check

    const pg = await openPostgres(database.url, { max: 1 });
    try {
      const [route] = await pg.db.select().from(p.routes);
      expect(route).toMatchObject({ methods: ['GET'], stripPrefix: true, enabled: true });
      expect(route!.createdAt.getTime()).toBe(at.getTime());
      const [event] = await pg.db.select().from(p.paymentEvents);
      expect(event!.rawBody!.toString()).toBe('{"a":1}\u0000');
      const [setting] = await pg.db.select().from(p.settings);
      expect(setting).toMatchObject({ key: 'payment.stripe.secret_key', secret: true });
      expect(setting!.value).not.toContain('sk_test_copy_me'); // still the ciphertext
      const [id] = await pg.db.select().from(p.meta).where(eq(p.meta.key, 'install_id'));
      expect(id!.value).toBe(installId);
      const [{ n }] = (await pg.pool.query('SELECT count(*)::int AS n FROM usage_minutely')).rows as [{ n: number }];
      expect(n).toBe(rows);
    } finally {
      await pg.close();
    }

    await expect(copySqliteToPostgres({ dataDir, to: database.url })).rejects.toThrow(
      /already has rows in \w+: copy into a new, empty database/,
    );
  });
});
