import { Writable } from 'node:stream';
import { createLogger } from '@apigate/kernel';
import { lt, sql } from 'drizzle-orm';
import pg from 'pg';
import { describe, expect, it, vi } from 'vitest';
import {
  DEFAULT_USAGE_RETENTION_DAYS,
  GATEWAY_SETTINGS,
  runHousekeeping,
  startHousekeeping,
  USAGE_RETENTION_SETTING,
} from '../src/index.js';
import { PortalStore } from '../src/portal/store.js';
import { deleteInChunks } from '../src/store/prune.js';
import { DIALECTS, domainStore, type TestDialect, testPostgresUrl } from './helpers/domain.js';

const DAY = 86_400_000;
const NOW = Date.parse('2025-06-30T12:00:00Z');
/** The default cutoff: 90 days before NOW, a whole minute. */
const CUTOFF = NOW - DEFAULT_USAGE_RETENTION_DAYS * DAY;

/** A pino logger whose lines land in an array. */
function captureLogger() {
  const lines: { level: number; msg: string; housekeeping?: Record<string, unknown> }[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { logger: createLogger({ level: 'debug', destination }), lines };
}

async function setup(dialect: TestDialect, dataDir?: string) {
  const s = await domainStore({ dialect, start: new Date(NOW), ...(dataDir ? { dataDir } : {}) });
  await s.d.plans.create({ name: 'Free' });
  const user = await s.d.users.create({ email: 'ada@example.com' });
  const k1 = (await s.d.keys.create({ userId: user.id, name: 'one' })).apiKey;
  const k2 = (await s.d.keys.create({ userId: user.id, name: 'two' })).apiKey;
  /** Applies a batch as it would have been when it happened (`applied_at` is the clock). */
  const applyAt = async (batchId: string, at: number, keyId = k1.id) => {
    s.clock.now = new Date(at);
    await s.d.usage.applyBatch(batchId, [{ keyId, userId: user.id, at, routeId: 'rt_1', overhead: [0, 2, 1] }]);
    s.clock.now = new Date(NOW);
  };
  const rows = async () => {
    const { db, t } = s.store;
    const minutes = await db.select({ keyId: t.usageMinutely.keyId, minute: t.usageMinutely.minute }).from(t.usageMinutely);
    const routeMinutes = await db.select({ minute: t.usageRouteMinutely.minute }).from(t.usageRouteMinutely);
    const overhead = await db.select({ minute: t.usageOverheadMinutely.minute }).from(t.usageOverheadMinutely);
    const batches = await db.select({ id: t.usageBatches.id }).from(t.usageBatches);
    const times = (r: { minute: Date }[]) => r.map((x) => x.minute.toISOString()).sort();
    return {
      minutes: minutes.map((m) => `${m.keyId === k1.id ? 'k1' : 'k2'} ${m.minute.toISOString()}`).sort(),
      routeMinutes: times(routeMinutes),
      overhead: times(overhead),
      batches: batches.map((b) => b.id).sort(),
    };
  };
  const iso = (at: number) => new Date(at).toISOString();
  return { ...s, user, k1, k2, applyAt, rows, iso, now: () => s.clock.now };
}

describe.each(DIALECTS)('housekeeping (%s)', (dialect) => {
  it('removes per-minute usage and traffic older than 90 days by default, keeps newer rows and the monthly totals, logs the counts', async () => {
    const s = await setup(dialect);
    await s.applyAt('b-old-1', CUTOFF - 60_000);
    await s.applyAt('b-old-2', CUTOFF - 30 * DAY, s.k2.id); // a key with nothing newer
    await s.applyAt('b-edge', CUTOFF); // exactly the cutoff: kept
    await s.applyAt('b-new', NOW - DAY);
    const monthsBefore = await Promise.all(['2025-03', '2025-04', '2025-06'].map((m) => s.d.usage.forUser(s.user.id, m)));

    const { logger, lines } = captureLogger();
    const result = await runHousekeeping({ store: s.store, logger, now: s.now });

    expect(result).toEqual({ retentionDays: 90, minutes: 2, routeMinutes: 2, overheadMinutes: 4, batches: 2, sessions: 0, tokens: 0 });
    expect(await s.rows()).toEqual({
      minutes: [`k1 ${s.iso(CUTOFF)}`, `k1 ${s.iso(NOW - DAY)}`],
      routeMinutes: [s.iso(CUTOFF), s.iso(NOW - DAY)],
      overhead: [s.iso(CUTOFF), s.iso(CUTOFF), s.iso(NOW - DAY), s.iso(NOW - DAY)],
      batches: ['b-edge', 'b-new'],
    });
    // Billing, quotas and `usage show` read the monthly totals: untouched.
    expect(await Promise.all(['2025-03', '2025-04', '2025-06'].map((m) => s.d.usage.forUser(s.user.id, m)))).toEqual(monthsBefore);
    expect(monthsBefore.map((m) => m.totals.requests)).toEqual([1, 2, 1]);
    const info = lines.filter((l) => l.msg === 'housekeeping: old rows removed');
    expect(info).toHaveLength(1);
    expect(info[0]!.housekeeping).toMatchObject({ minutes: 2, routeMinutes: 2, overheadMinutes: 4, batches: 2 });

    // A second round finds nothing and logs nothing.
    expect(await runHousekeeping({ store: s.store, logger, now: s.now })).toMatchObject({ minutes: 0, routeMinutes: 0, batches: 0 });
    expect(lines.filter((l) => l.msg === 'housekeeping: old rows removed')).toHaveLength(1);
  });

  it('follows usage.minute_retention_days; 0 keeps every usage row (expired portal sessions and used tokens still go)', async () => {
    const s = await setup(dialect);
    await s.applyAt('b-2y', NOW - 730 * DAY);
    await s.applyAt('b-10d', NOW - 10 * DAY);
    const portal = new PortalStore(s.store, s.now);
    const live = await portal.createSession(s.user.id, DAY);
    s.clock.now = new Date(NOW - 2 * DAY);
    await portal.createSession(s.user.id, DAY); // expired yesterday
    const used = await portal.issueToken(s.user.id, 'reset_password', s.user.email, 7 * DAY);
    expect((await portal.consumeToken(used.token, 'reset_password')).ok).toBe(true);
    s.clock.now = new Date(NOW);
    const before = await s.rows();

    await s.store.settings.set(USAGE_RETENTION_SETTING, '0', { secret: false });
    const { logger, lines } = captureLogger();
    expect(await runHousekeeping({ store: s.store, logger, now: s.now })).toEqual({
      retentionDays: 0,
      minutes: 0,
      routeMinutes: 0,
      overheadMinutes: 0,
      batches: 0,
      sessions: 1,
      tokens: 1,
    });
    expect(await s.rows()).toEqual(before);
    expect(before.batches).toEqual(['b-10d', 'b-2y']);
    expect(await portal.findSession(live.token)).toMatchObject({ id: live.session.id });
    expect(lines.filter((l) => l.msg === 'housekeeping: old rows removed')).toHaveLength(1);

    // Read at each round: 5 days now removes the 10-day-old minute too.
    await s.store.settings.set(USAGE_RETENTION_SETTING, '5', { secret: false });
    expect(await runHousekeeping({ store: s.store, logger, now: s.now })).toMatchObject({ retentionDays: 5, minutes: 2, batches: 2 });
    expect((await s.rows()).minutes).toEqual([]);
  });

  it('keeps applied batch ids at least 7 days whatever the retention, so a redelivered batch still counts once', async () => {
    const s = await setup(dialect);
    await s.store.settings.set(USAGE_RETENTION_SETTING, '1', { secret: false });
    await s.applyAt('b-3d', NOW - 3 * DAY);
    await s.applyAt('b-8d', NOW - 8 * DAY);
    const { logger } = captureLogger();
    expect(await runHousekeeping({ store: s.store, logger, now: s.now })).toMatchObject({ retentionDays: 1, minutes: 2, batches: 1 });
    expect(await s.rows()).toMatchObject({ minutes: [], batches: ['b-3d'] });
    // The queue redelivers the 3-day-old batch: its id is still known, nothing is counted twice.
    expect(await s.d.usage.applyBatch('b-3d', [{ keyId: s.k1.id, userId: s.user.id, at: NOW - 3 * DAY }])).toEqual({ applied: false });
    expect((await s.d.usage.forUser(s.user.id, '2025-06')).totals.requests).toBe(2);
  });

  it('removes no usage with a stored value the setting check refuses, and says so', async () => {
    const s = await setup(dialect);
    await s.applyAt('b-old', NOW - 400 * DAY);
    await s.store.settings.set(USAGE_RETENTION_SETTING, '30d', { secret: false });
    const { logger, lines } = captureLogger();
    expect(await runHousekeeping({ store: s.store, logger, now: s.now })).toMatchObject({
      retentionDays: undefined,
      minutes: 0,
      batches: 0,
    });
    expect((await s.rows()).batches).toEqual(['b-old']);
    expect(lines.map((l) => l.msg)).toContain(
      'setting usage.minute_retention_days: expected a whole number of days from 0 (keep forever) to 36500; no usage rows are removed until it is fixed',
    );
  });

  it('deletes in chunks until a chunk finds fewer rows', async () => {
    const s = await setup(dialect);
    for (let i = 0; i < 7; i++) await s.applyAt(`b${i}`, NOW - (20 + i) * DAY);
    await s.applyAt('b-new', NOW - DAY);
    const { usageBatches: b } = s.store.t;
    const tx = vi.spyOn(s.store, 'tx');
    expect(await deleteInChunks(s.store, b, [b.id], lt(b.appliedAt, new Date(NOW - 10 * DAY)), 3)).toBe(7);
    expect(tx).toHaveBeenCalledTimes(3); // 3 + 3 + 1
    expect((await s.rows()).batches).toEqual(['b-new']);
  });

  it("finds old batch ids through usage_batches' applied_at index, not by scanning the table", async () => {
    const s = await setup(dialect);
    const { usageBatches: b } = s.store.t;
    const { sql: query, params } = s.store.db
      .select({ id: b.id })
      .from(b)
      .where(lt(b.appliedAt, new Date(NOW - 10 * DAY)))
      .limit(2000)
      .toSQL();
    let plan: string;
    if (dialect === 'sqlite') {
      const raw = (s.store.db as unknown as { $client: import('better-sqlite3').Database }).$client;
      plan = JSON.stringify(raw.prepare(`EXPLAIN QUERY PLAN ${query}`).all(...(params as unknown[])));
    } else {
      // With sequential scans priced out, the planner takes the index whenever there is one.
      type Pg = { execute(q: unknown): Promise<{ rows: unknown[] }> };
      plan = await s.store.tx(async (tx) => {
        const pgTx = tx as unknown as Pg;
        await pgTx.execute(sql.raw('SET LOCAL enable_seqscan = off'));
        const literal = (v: unknown) => `'${v instanceof Date ? v.toISOString() : String(v)}'`;
        const inlined = query.replace(/\$(\d+)/g, (_, i) => literal(params[Number(i) - 1]));
        return JSON.stringify((await pgTx.execute(sql.raw(`EXPLAIN ${inlined}`))).rows);
      });
    }
    expect(plan).toContain('usage_batches_applied_at_idx');
  });

  it('startHousekeeping runs a first round shortly after the start', async () => {
    const s = await setup(dialect);
    await s.applyAt('b-old', CUTOFF - DAY);
    const { logger } = captureLogger();
    const job = startHousekeeping({ store: s.store, logger, now: s.now, firstRunMs: 10 });
    try {
      await vi.waitFor(async () => expect((await s.rows()).batches).toEqual([]), { timeout: 2000, interval: 20 });
      expect((await s.rows()).minutes).toEqual([]);
    } finally {
      await job.stop();
    }
  });
});

describe('the retention setting', () => {
  it('is a gateway setting: whole days from 0 to 36500', () => {
    const { validate } = GATEWAY_SETTINGS[USAGE_RETENTION_SETTING]!;
    for (const ok of ['0', '7', '90', ' 365 ', '36500']) expect(validate(ok)).toBeUndefined();
    for (const bad of ['-1', '30d', '1.5', '', '36501']) expect(validate(bad)).toMatch(/^expected a whole number of days/);
  });
});

describe('two instances on one PostgreSQL database', () => {
  it('run a housekeeping round once: the other skips while one is inside its round', async () => {
    const a = await setup('postgres');
    const b = await domainStore({ dialect: 'postgres', dataDir: a.dataDir, start: new Date(NOW) });
    await a.applyAt('b-old', CUTOFF - DAY);
    const { logger } = captureLogger();
    const long = { intervalMs: DAY, firstRunMs: DAY };
    const jobA = startHousekeeping({ store: a.store, logger, now: a.now, ...long });
    const jobB = startHousekeeping({ store: b.store, logger, now: () => b.clock.now, ...long });
    // Hold a row a's round deletes, so the round stays inside its lock until released.
    const holder = new pg.Client({ connectionString: await testPostgresUrl() });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query("SELECT id FROM usage_batches WHERE id = 'b-old' FOR UPDATE");
      const roundA = jobA.runOnce();
      await vi.waitFor(
        async () => {
          const { rows } = await holder.query(`SELECT count(*)::int AS n FROM pg_locks
             WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`);
          expect(rows[0].n).toBeGreaterThan(0);
        },
        { timeout: 5000, interval: 20 },
      );
      expect(await jobB.runOnce()).toBeUndefined(); // skipped: a holds the job
      await holder.query('COMMIT');
      expect(await roundA).toMatchObject({ minutes: 1, batches: 1, routeMinutes: 1 });
      // The next round may run on b; there is nothing left to remove.
      expect(await jobB.runOnce()).toMatchObject({ minutes: 0, batches: 0, routeMinutes: 0 });
      expect((await a.rows()).batches).toEqual([]);
    } finally {
      await holder.end();
      await Promise.all([jobA.stop(), jobB.stop()]);
    }
  });
});
