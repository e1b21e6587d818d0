import { z } from '@apigate/kernel';
import { and, asc, desc, eq, gte, inArray, isNull, lt, lte, or, type SQL, sql } from 'drizzle-orm';
import type { SQLiteColumn } from 'drizzle-orm/sqlite-core';
import type { Tables } from '../store/dialect.js';
import { deleteInChunks } from '../store/prune.js';
import type { DomainContext, Tx } from './context.js';
import { DomainError } from './errors.js';
import { addTraffic } from './traffic.js';
import { parseInput } from './validate.js';

export interface UsageCounts {
  requests: number;
  bytesIn: number;
  bytesOut: number;
  /** Requests the metering counted as errors. */
  errors: number;
}

/** Counts for one key at one moment (or pre-summed over a minute), as metering batches them. */
export interface UsageEntry extends Partial<UsageCounts> {
  keyId: string;
  userId: string;
  /** When the requests happened: picks the minute and month buckets (UTC). */
  at: Date | number;
  /** The matched route (null: refused before one matched); absent: not counted per route. */
  routeId?: string | null;
  /** Added-latency histogram over OVERHEAD_BUCKETS_MS (metering/types.ts), for the traffic overview. */
  overhead?: number[];
}

export interface KeyUsage extends UsageCounts {
  keyId: string;
}
export interface UserUsage extends UsageCounts {
  userId: string;
}
export interface MinuteUsage extends UsageCounts {
  minute: Date;
}

export interface UsageSummary {
  month: string;
  totals: UsageCounts;
  /** Per key, most requests first. */
  keys: KeyUsage[];
}

const MONTH_RE = /^\d{4}-(0[1-9]|1[0-2])$/;
const MINUTE_MS = 60_000;

/** The UTC month of a time, `YYYY-MM`: the quota period. */
export const monthOf = (at: Date | number) => new Date(at).toISOString().slice(0, 7);

/** Start (inclusive) and end (exclusive) of a `YYYY-MM` month in UTC; the end is when its quota resets. */
export function monthBounds(month: string): { start: Date; end: Date } {
  assertMonth(month);
  const [y, m] = month.split('-').map(Number) as [number, number];
  return { start: new Date(Date.UTC(y, m - 1, 1)), end: new Date(Date.UTC(y, m, 1)) };
}

export function assertMonth(month: string): void {
  if (!MONTH_RE.test(month))
    throw new DomainError('invalid', 'INVALID_INPUT', `usage: month: expected YYYY-MM such as 2025-01, got "${month}"`, 'month');
}

const count = z.number().int().min(0).optional();
const batchSchema = z.object({
  batchId: z.string({ error: 'expected a batch id' }).min(1, { error: 'expected a batch id' }).max(200),
  entries: z.array(
    z.object({
      keyId: z.string().min(1),
      userId: z.string().min(1),
      at: z.union([z.date(), z.number().int().nonnegative()]),
      requests: count,
      bytesIn: count,
      bytesOut: count,
      errors: count,
      routeId: z.string().nullable().optional(),
      overhead: z.array(z.number().int().min(0)).max(64).optional(),
    }),
  ),
});

const zero = (): UsageCounts => ({ requests: 0, bytesIn: 0, bytesOut: 0, errors: 0 });
function add(to: UsageCounts, e: Partial<UsageCounts>, requestsDefault: number): void {
  to.requests += e.requests ?? requestsDefault;
  to.bytesIn += e.bytesIn ?? 0;
  to.bytesOut += e.bytesOut ?? 0;
  to.errors += e.errors ?? 0;
}

const sums = (t: Tables['usageMonthly'] | Tables['usageMinutely']) => ({
  requests: sql<number>`coalesce(sum(${t.requests}), 0)`.mapWith(Number),
  bytesIn: sql<number>`coalesce(sum(${t.bytesIn}), 0)`.mapWith(Number),
  bytesOut: sql<number>`coalesce(sum(${t.bytesOut}), 0)`.mapWith(Number),
  errors: sql<number>`coalesce(sum(${t.errors}), 0)`.mapWith(Number),
});

// On a bucket that exists, add to it: what makes batches composable.
const addExcluded = (t: Tables['usageMonthly'] | Tables['usageMinutely']) => {
  const inc = (c: SQLiteColumn) => sql`${c} + excluded.${sql.identifier(c.name)}`;
  return { requests: inc(t.requests), bytesIn: inc(t.bytesIn), bytesOut: inc(t.bytesOut), errors: inc(t.errors) };
};

export class UsageRepository {
  constructor(private readonly ctx: DomainContext) {}

  /**
   * Adds a metering batch to the per-minute and per-month aggregates and moves the keys'
   * `last_used_at`, in one transaction. The batch id is recorded with it, so a batch
   * delivered twice (a queue redelivery, a replay after a crash) is counted once:
   * `applied` is false the second time. An entry without `requests` counts as one request.
   *
   * Entries whose key this database does not have, or whose user is not that key's owner, are left
   * out and returned as `dropped` (absent when none): a batch from another deployment sharing the
   * queue, or for a key deleted since, is never attributed to anyone here.
   */
  async applyBatch(batchId: string, entries: readonly UsageEntry[]): Promise<{ applied: boolean; dropped?: UsageEntry[] }> {
    parseInput(batchSchema, { batchId, entries }, 'usage batch');
    const { usageBatches, apiKeys } = this.ctx.t;
    // A batch another instance is applying right now: the insert waits for its commit, then finds the id taken.
    return this.ctx.tx(async (tx) => {
      const fresh = await tx
        .insert(usageBatches)
        .values({ id: batchId, entries: entries.length, appliedAt: this.ctx.now() })
        .onConflictDoNothing()
        .returning({ id: usageBatches.id });
      if (fresh.length === 0) return { applied: false };
      const keyIds = [...new Set(entries.map((e) => e.keyId))];
      const owners = new Map(
        keyIds.length === 0
          ? []
          : (await tx.select({ id: apiKeys.id, userId: apiKeys.userId }).from(apiKeys).where(inArray(apiKeys.id, keyIds))).map((k) => [
              k.id,
              k.userId,
            ]),
      );
      const known = entries.filter((e) => owners.get(e.keyId) === e.userId);
      await this.addEntries(tx, known);
      await addTraffic(tx, this.ctx.t, known);
      return known.length === entries.length
        ? { applied: true }
        : { applied: true, dropped: entries.filter((e) => owners.get(e.keyId) !== e.userId) };
    });
  }

  private async addEntries(tx: Tx, entries: readonly UsageEntry[]): Promise<void> {
    const { usageMinutely, usageMonthly, apiKeys } = this.ctx.t;
    const minutes = new Map<string, { keyId: string; userId: string; minute: number } & UsageCounts>();
    const months = new Map<string, { keyId: string; userId: string; month: string } & UsageCounts>();
    const lastUsed = new Map<string, number>();
    for (const e of entries) {
      const at = typeof e.at === 'number' ? e.at : e.at.getTime();
      const minute = at - (at % MINUTE_MS);
      const month = monthOf(at);
      const mk = `${e.keyId}\0${minute}`;
      const Mk = `${e.keyId}\0${month}`;
      if (!minutes.has(mk)) minutes.set(mk, { keyId: e.keyId, userId: e.userId, minute, ...zero() });
      if (!months.has(Mk)) months.set(Mk, { keyId: e.keyId, userId: e.userId, month, ...zero() });
      add(minutes.get(mk)!, e, 1);
      add(months.get(Mk)!, e, 1);
      if (at > (lastUsed.get(e.keyId) ?? 0)) lastUsed.set(e.keyId, at);
    }
    for (const b of minutes.values()) {
      await tx
        .insert(usageMinutely)
        .values({ ...b, minute: new Date(b.minute) })
        .onConflictDoUpdate({ target: [usageMinutely.keyId, usageMinutely.minute], set: addExcluded(usageMinutely) });
    }
    for (const b of months.values()) {
      await tx
        .insert(usageMonthly)
        .values(b)
        .onConflictDoUpdate({ target: [usageMonthly.keyId, usageMonthly.month], set: addExcluded(usageMonthly) });
    }
    for (const [keyId, at] of lastUsed) {
      await tx
        .update(apiKeys)
        .set({ lastUsedAt: new Date(at) })
        .where(and(eq(apiKeys.id, keyId), or(isNull(apiKeys.lastUsedAt), lt(apiKeys.lastUsedAt, new Date(at)))));
    }
  }

  /** True when this batch id was already applied. */
  async batchApplied(batchId: string): Promise<boolean> {
    const { usageBatches } = this.ctx.t;
    return (await this.ctx.db.select({ id: usageBatches.id }).from(usageBatches).where(eq(usageBatches.id, batchId))).length > 0;
  }

  /** One user's month: totals and each key's share. */
  async forUser(userId: string, month: string): Promise<UsageSummary> {
    return this.summary(eq(this.ctx.t.usageMonthly.userId, userId), month);
  }

  /** One key's month. */
  async forKey(keyId: string, month: string): Promise<UsageSummary> {
    return this.summary(eq(this.ctx.t.usageMonthly.keyId, keyId), month);
  }

  /** Every user's totals for a month, most requests first (e.g. to seed quota counters at start). */
  async byUser(month: string): Promise<UserUsage[]> {
    assertMonth(month);
    const { usageMonthly } = this.ctx.t;
    return this.ctx.db
      .select({ userId: usageMonthly.userId, ...sums(usageMonthly) })
      .from(usageMonthly)
      .where(eq(usageMonthly.month, month))
      .groupBy(usageMonthly.userId)
      .orderBy(desc(sql`sum(${usageMonthly.requests})`), asc(usageMonthly.userId));
  }

  /** Per-minute counts of a user or a key in [from, to), oldest first. */
  async minutes(q: { userId?: string; keyId?: string; from: Date; to: Date }): Promise<MinuteUsage[]> {
    const { usageMinutely } = this.ctx.t;
    const who =
      q.keyId !== undefined ? eq(usageMinutely.keyId, q.keyId) : q.userId !== undefined ? eq(usageMinutely.userId, q.userId) : undefined;
    if (!who) throw new DomainError('invalid', 'INVALID_INPUT', 'usage: give a user_id or a key_id', 'user_id');
    return this.ctx.db
      .select({ minute: usageMinutely.minute, ...sums(usageMinutely) })
      .from(usageMinutely)
      .where(and(who, gte(usageMinutely.minute, q.from), lt(usageMinutely.minute, q.to)))
      .groupBy(usageMinutely.minute)
      .orderBy(asc(usageMinutely.minute));
  }

  /** Per-minute counts of all traffic in [from, to), oldest first (the admin overview). */
  async allMinutes(q: { from: Date; to: Date }): Promise<MinuteUsage[]> {
    const { usageMinutely } = this.ctx.t;
    return this.ctx.db
      .select({ minute: usageMinutely.minute, ...sums(usageMinutely) })
      .from(usageMinutely)
      .where(and(gte(usageMinutely.minute, q.from), lt(usageMinutely.minute, q.to)))
      .groupBy(usageMinutely.minute)
      .orderBy(asc(usageMinutely.minute));
  }

  /** The month's busiest keys across all users, most requests first. */
  async topKeys(month: string, limit = 10): Promise<(KeyUsage & { userId: string })[]> {
    assertMonth(month);
    const { usageMonthly } = this.ctx.t;
    return this.ctx.db
      .select({
        keyId: usageMonthly.keyId,
        userId: usageMonthly.userId,
        requests: usageMonthly.requests,
        bytesIn: usageMonthly.bytesIn,
        bytesOut: usageMonthly.bytesOut,
        errors: usageMonthly.errors,
      })
      .from(usageMonthly)
      .where(eq(usageMonthly.month, month))
      .orderBy(desc(usageMonthly.requests), asc(usageMonthly.keyId))
      .limit(limit);
  }

  /**
   * Drops per-minute rows older than `before` and applied batch ids older than `batchesBefore`
   * (default `before`); monthly totals stay. Returns the rows removed. Deletes go in chunks
   * (`deleteInChunks`), the minutes key by key through the primary key (key_id, minute), since no
   * index has the minute alone: every key with minutes that old has a monthly row of that month or
   * an earlier one (a batch writes both in one transaction).
   */
  async prune(before: Date, batchesBefore: Date = before): Promise<{ minutes: number; batches: number }> {
    const { usageMinutely: m, usageMonthly, usageBatches: b } = this.ctx.t;
    const keys = await this.ctx.db
      .selectDistinct({ keyId: usageMonthly.keyId })
      .from(usageMonthly)
      .where(lte(usageMonthly.month, monthOf(before)));
    let minutes = 0;
    for (const { keyId } of keys) {
      minutes += await deleteInChunks(this.ctx, m, [m.keyId, m.minute], and(eq(m.keyId, keyId), lt(m.minute, before)));
    }
    const batches = await deleteInChunks(this.ctx, b, [b.id], lt(b.appliedAt, batchesBefore));
    return { minutes, batches };
  }

  private async summary(who: SQL, month: string): Promise<UsageSummary> {
    assertMonth(month);
    const { usageMonthly } = this.ctx.t;
    const keys = await this.ctx.db
      .select({
        keyId: usageMonthly.keyId,
        requests: usageMonthly.requests,
        bytesIn: usageMonthly.bytesIn,
        bytesOut: usageMonthly.bytesOut,
        errors: usageMonthly.errors,
      })
      .from(usageMonthly)
      .where(and(who, eq(usageMonthly.month, month)))
      .orderBy(desc(usageMonthly.requests), asc(usageMonthly.keyId));
    const totals = zero();
    for (const k of keys) add(totals, k, 0);
    return { month, totals, keys };
  }
}
