// PostgreSQL store foundation (issue 13): schema.pg.ts generated from the one schema definition,
// migrations applied once under an advisory lock when instances start together, and the column
// mapping (timestamptz, boolean, jsonb, bytea, bigint, the partial unique index) round-tripping
// through drizzle on a real PostgreSQL in a database this file creates and drops.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { eq, is } from 'drizzle-orm';
import { PgTable } from 'drizzle-orm/pg-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toPgSchema } from '../scripts/pg-schema.mjs';
import { openPostgres, type OpenedPostgres, PG_MIGRATIONS_DIR, postgresMigrationStatus } from '../src/store/pg.js';
import * as t from '../src/store/schema.pg.js';
import { tempPostgres } from './helpers/postgres.js';

const PKG = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let database: Awaited<ReturnType<typeof tempPostgres>>;
const opened: OpenedPostgres[] = [];

beforeAll(async () => {
  database = await tempPostgres();
});
afterAll(async () => {
  for (const o of opened.splice(0)) await o.close();
  await database?.drop();
});

describe('one schema definition, two dialects', () => {
  it('the committed schema.pg.ts is what the generator makes from schema.ts', () => {
    const r = spawnSync(process.execPath, ['scripts/pg-schema.mjs', '--check'], { cwd: PKG, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(readFileSync(path.join(PKG, 'src/store/schema.pg.ts'), 'utf8')).toBe(
      toPgSchema(readFileSync(path.join(PKG, 'src/store/schema.ts'), 'utf8')),
    );
  });

  it('maps each SQLite column type and refuses one it has no mapping for', () => {
    const src = `import { blob, integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';
export const x = sqliteTable('x', { at: integer('at', { mode: 'timestamp_ms' }), on: integer('on', { mode: 'boolean' }), n: integer('n'), j: text('j', { mode: 'json' }), b: blob('b', { mode: 'buffer' }) });`;
    const out = toPgSchema(src);
    expect(out).toContain("at: timestamp('at', { mode: 'date', withTimezone: true, precision: 3 })");
    expect(out).toContain("on: boolean('on')");
    expect(out).toContain("n: bigint('n', { mode: 'number' })");
    expect(out).toContain("j: jsonb('j')");
    expect(out).toContain("b: bytea('b')");
    expect(out).toContain("import { bigint, boolean, jsonb, pgTable, timestamp } from 'drizzle-orm/pg-core';");
    expect(out).toContain("import { bytea } from './pg-types.js';");
    expect(() => toPgSchema(src.replace("integer('n')", "integer('n', { mode: 'number' })"))).toThrow(
      /no PostgreSQL mapping for "integer\("/,
    );
  });
});

describe('PostgreSQL migrations', () => {
  it('two instances opening a new database together apply each migration once', async () => {
    const [a, b] = await Promise.all([openPostgres(database.url, { max: 2 }), openPostgres(database.url, { max: 2 })]);
    opened.push(a!, b!);
    const journal = JSON.parse(readFileSync(path.join(PG_MIGRATIONS_DIR, 'meta/_journal.json'), 'utf8')) as { entries: unknown[] };
    const rows = await a!.pool.query('SELECT hash FROM drizzle.__drizzle_migrations');
    expect(rows.rowCount).toBe(journal.entries.length);
    expect(await postgresMigrationStatus(b!.db)).toEqual({ applied: journal.entries.length, pending: [] });
    const tables = await a!.pool.query("SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'public'");
    expect(tables.rows[0].n).toBe(Object.values(t).filter((v) => is(v, PgTable)).length);
    expect(tables.rows[0].n).toBeGreaterThanOrEqual(20);
  });

  it('an unreachable database is one line with the password masked', async () => {
    const err = await openPostgres('postgres://apigate:hunter2secret@127.0.0.1:1/nope').catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(
      /^cannot prepare the PostgreSQL database postgres:\/\/apigate:\*+@127\.0\.0\.1:1\/nope: .*ECONNREFUSED/,
    );
    expect((err as Error).message).not.toContain('hunter2secret');
  });
});

describe('column mapping round trip', () => {
  it('dates (ms), booleans, jsonb, bytea and bigint counters come back as written; one default plan at most', async () => {
    const { db } = opened[0]!;
    const at = new Date('2026-12-03T11:22:33.456Z');
    await db.insert(t.plans).values({ id: 'plan_a', name: 'free', isDefault: true, requestsPerMonth: 10, createdAt: at, updatedAt: at });
    await expect(db.insert(t.plans).values({ id: 'plan_b', name: 'pro', isDefault: true, createdAt: at, updatedAt: at })).rejects.toThrow();
    await db.insert(t.plans).values({ id: 'plan_b', name: 'pro', isDefault: false, createdAt: at, updatedAt: at });
    await db
      .insert(t.routes)
      .values({ id: 'rt_1', pathPrefix: '/w', upstreamUrl: 'http://x', methods: ['GET', 'POST'], createdAt: at, updatedAt: at });
    const body = Buffer.from([0, 1, 2, 255, 0x7b]);
    await db
      .insert(t.paymentEvents)
      .values({ provider: 'dummy', eventId: 'evt_1', type: 'x', occurredAt: at, receivedAt: at, rawBody: body });
    await db
      .insert(t.usageMonthly)
      .values({ keyId: 'key_1', userId: 'usr_1', month: '2026-12', requests: 1, bytesIn: 2 ** 40, bytesOut: 3 });

    const [plan] = await db.select().from(t.plans).where(eq(t.plans.id, 'plan_a'));
    expect(plan).toMatchObject({ isDefault: true, requestsPerMonth: 10, requestsPerMinute: null, priceCents: 0 });
    expect(plan!.createdAt.getTime()).toBe(at.getTime());
    const [route] = await db.select().from(t.routes);
    expect(route).toMatchObject({ methods: ['GET', 'POST'], stripPrefix: false, enabled: true });
    const [event] = await db.select().from(t.paymentEvents);
    expect(Buffer.compare(event!.rawBody!, body)).toBe(0);
    expect(event!.status).toBe('queued');
    const [usage] = await db.select().from(t.usageMonthly);
    expect(usage!.bytesIn).toBe(2 ** 40);
  });
});
