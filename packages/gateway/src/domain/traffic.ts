import { and, asc, desc, eq, gte, inArray, lt, sql } from 'drizzle-orm';
import type { SQLiteColumn } from 'drizzle-orm/sqlite-core';
import { addOverhead, OVERHEAD_BUCKETS_MS, overheadQuantile } from '../metering/types.js';
import type { Tables } from '../store/dialect.js';
import { deleteInChunks } from '../store/prune.js';
import type { DomainContext, Tx } from './context.js';
import { DomainError } from './errors.js';

const MINUTE_MS = 60_000;
/** The longest window one overview reads (per-minute rows: 31 days is ~45k minutes). */
export const MAX_TRAFFIC_WINDOW_MS = 31 * 24 * 60 * MINUTE_MS;

/** What a metering batch entry carries for the traffic tables (see UsageEntry). */
export interface TrafficEntry {
  /** The matched route; null or absent: refused before a route matched. */
  routeId?: string | null | undefined;
  at: Date | number;
  requests?: number | undefined;
  bytesIn?: number | undefined;
  bytesOut?: number | undefined;
  errors?: number | undefined;
  /** Added-latency histogram over OVERHEAD_BUCKETS_MS (metering/types.ts); absent in older batches. */
  overhead?: readonly number[] | undefined;
}

/** Added latency of a set of requests: quantiles as bucket upper bounds in ms. */
export interface OverheadSummary {
  /** Counts per bucket of OVERHEAD_BUCKETS_MS; sums to the requests that reported an overhead. */
  overhead: number[];
  /** Median added latency, "at most X ms"; null when no request reported one, or above the last finite bound (256 ms). */
  p50Ms: number | null;
  /** 99th percentile, same reading as p50Ms. */
  p99Ms: number | null;
}

export interface TrafficMinute extends OverheadSummary {
  minute: Date;
  requests: number;
  errors: number;
}

export interface RouteTraffic extends OverheadSummary {
  /** null: requests refused before a route matched. */
  routeId: string | null;
  /** The route's path prefix now; null when the route was deleted (or routeId is null). */
  pathPrefix: string | null;
  requests: number;
  errors: number;
  bytesIn: number;
  bytesOut: number;
}

export interface KeyTraffic {
  keyId: string;
  userId: string;
  requests: number;
  errors: number;
}

export interface TrafficOverview {
  from: Date;
  to: Date;
  /** Upper bounds (ms) of the histogram buckets; the last is open (Infinity, sent as null). */
  bucketsMs: readonly number[];
  totals: { requests: number; errors: number } & OverheadSummary;
  /** Minutes with traffic only, oldest first. */
  minutes: TrafficMinute[];
  /** Busiest routes of the window, most requests first. */
  routes: RouteTraffic[];
  /** Busiest keys of the window, most requests first. */
  keys: KeyTraffic[];
}

const quantile = (hist: readonly number[], q: number): number | null => {
  const v = overheadQuantile(hist, q);
  return hist.some((n) => n > 0) && Number.isFinite(v) ? v : null;
};

/** p50/p99 of a histogram. */
export function summarizeOverhead(hist: readonly number[]): OverheadSummary {
  return { overhead: [...hist], p50Ms: quantile(hist, 0.5), p99Ms: quantile(hist, 0.99) };
}

const emptyHist = () => new Array<number>(OVERHEAD_BUCKETS_MS.length).fill(0);

/** Adds one summed histogram row to the histogram of `key`. */
function addBucket<K>(into: Map<K, number[]>, key: K, b: { bucket: number; count: number }): void {
  let h = into.get(key);
  if (!h) into.set(key, (h = emptyHist()));
  if (b.bucket >= 0 && b.bucket < h.length) h[b.bucket]! += b.count;
}

/**
 * Adds a batch's entries to the per-route minute counters and the added-latency histogram rows,
 * inside the caller's transaction (the one that records the batch id, so a replayed batch adds
 * nothing). Buckets add with an upsert (`count = count + excluded.count`), so two instances
 * applying batches for the same minute never lose counts.
 */
export async function addTraffic(tx: Tx, t: Tables, entries: readonly TrafficEntry[]): Promise<void> {
  const routes = new Map<
    string,
    { routeId: string; minute: number; requests: number; bytesIn: number; bytesOut: number; errors: number; hist: number[] }
  >();
  for (const e of entries) {
    const at = typeof e.at === 'number' ? e.at : e.at.getTime();
    const minute = at - (at % MINUTE_MS);
    const routeId = e.routeId ?? '';
    const k = `${routeId}\0${minute}`;
    let r = routes.get(k);
    if (!r) routes.set(k, (r = { routeId, minute, requests: 0, bytesIn: 0, bytesOut: 0, errors: 0, hist: emptyHist() }));
    r.requests += e.requests ?? 1;
    r.bytesIn += e.bytesIn ?? 0;
    r.bytesOut += e.bytesOut ?? 0;
    r.errors += e.errors ?? 0;
    if (e.overhead) addOverhead(r.hist, e.overhead);
  }
  // The stored column qualified by its table (PostgreSQL finds a bare name ambiguous next to `excluded`).
  const inc = (c: SQLiteColumn) => sql`${c} + excluded.${sql.identifier(c.name)}`;
  const rm = t.usageRouteMinutely;
  for (const r of routes.values()) {
    const minute = new Date(r.minute);
    await tx
      .insert(t.usageRouteMinutely)
      .values({ routeId: r.routeId, minute, requests: r.requests, bytesIn: r.bytesIn, bytesOut: r.bytesOut, errors: r.errors })
      .onConflictDoUpdate({
        target: [t.usageRouteMinutely.routeId, t.usageRouteMinutely.minute],
        set: { requests: inc(rm.requests), bytesIn: inc(rm.bytesIn), bytesOut: inc(rm.bytesOut), errors: inc(rm.errors) },
      });
    const buckets = r.hist.flatMap((count, bucket) => (count > 0 ? [{ routeId: r.routeId, minute, bucket, count }] : []));
    if (buckets.length === 0) continue;
    await tx
      .insert(t.usageOverheadMinutely)
      .values(buckets)
      .onConflictDoUpdate({
        target: [t.usageOverheadMinutely.routeId, t.usageOverheadMinutely.minute, t.usageOverheadMinutely.bucket],
        set: { count: inc(t.usageOverheadMinutely.count) },
      });
  }
}

/** Reads for the admin traffic overview: requests, errors and added latency per minute, top routes and keys. */
export class TrafficRepository {
  constructor(private readonly ctx: DomainContext) {}

  /** Drops the per-route minutes and latency histograms older than `before`, in chunks through their minute index. Returns rows removed. */
  async prune(before: Date): Promise<{ routeMinutes: number; overheadMinutes: number }> {
    const { usageRouteMinutely: r, usageOverheadMinutely: o } = this.ctx.t;
    return {
      routeMinutes: await deleteInChunks(this.ctx, r, [r.routeId, r.minute], lt(r.minute, before)),
      overheadMinutes: await deleteInChunks(this.ctx, o, [o.routeId, o.minute, o.bucket], lt(o.minute, before)),
    };
  }

  /** The window [from, to) (at most 31 days): per-minute series, totals, and the `limit` busiest routes and keys. */
  async overview(q: { from: Date; to: Date; limit?: number }): Promise<TrafficOverview> {
    const { from, to } = q;
    if (!(from < to) || to.getTime() - from.getTime() > MAX_TRAFFIC_WINDOW_MS) {
      throw new DomainError('invalid', 'INVALID_INPUT', 'traffic: from: expected a time before to, at most 31 days earlier', 'from');
    }
    const limit = Math.min(Math.max(q.limit ?? 10, 1), 100);
    const { db, t } = this.ctx;
    const r = t.usageRouteMinutely;
    const o = t.usageOverheadMinutely;
    const m = t.usageMinutely;
    const sum = (c: SQLiteColumn) => sql<number>`coalesce(sum(${c}), 0)`.mapWith(Number);

    const [minuteRows, minuteBuckets, routeRows, keyRows] = await Promise.all([
      db
        .select({ minute: r.minute, requests: sum(r.requests), errors: sum(r.errors) })
        .from(r)
        .where(and(gte(r.minute, from), lt(r.minute, to)))
        .groupBy(r.minute)
        .orderBy(asc(r.minute)),
      db
        .select({ minute: o.minute, bucket: o.bucket, count: sum(o.count) })
        .from(o)
        .where(and(gte(o.minute, from), lt(o.minute, to)))
        .groupBy(o.minute, o.bucket),
      db
        .select({
          routeId: r.routeId,
          pathPrefix: t.routes.pathPrefix,
          requests: sum(r.requests),
          errors: sum(r.errors),
          bytesIn: sum(r.bytesIn),
          bytesOut: sum(r.bytesOut),
        })
        .from(r)
        .leftJoin(t.routes, eq(t.routes.id, r.routeId))
        .where(and(gte(r.minute, from), lt(r.minute, to)))
        .groupBy(r.routeId, t.routes.pathPrefix)
        .orderBy(desc(sum(r.requests)), asc(r.routeId))
        .limit(limit),
      db
        .select({ keyId: m.keyId, userId: m.userId, requests: sum(m.requests), errors: sum(m.errors) })
        .from(m)
        .where(and(gte(m.minute, from), lt(m.minute, to)))
        .groupBy(m.keyId, m.userId)
        .orderBy(desc(sum(m.requests)), asc(m.keyId))
        .limit(limit),
    ]);

    const routeIds = routeRows.map((x) => x.routeId);
    const routeBuckets =
      routeIds.length === 0
        ? []
        : await db
            .select({ routeId: o.routeId, bucket: o.bucket, count: sum(o.count) })
            .from(o)
            .where(and(inArray(o.routeId, routeIds), gte(o.minute, from), lt(o.minute, to)))
            .groupBy(o.routeId, o.bucket);

    const perMinute = new Map<number, number[]>();
    for (const b of minuteBuckets) addBucket(perMinute, b.minute.getTime(), b);
    const perRoute = new Map<string, number[]>();
    for (const b of routeBuckets) addBucket(perRoute, b.routeId, b);
    const total = emptyHist();
    for (const h of perMinute.values()) addOverhead(total, h);

    const minutes = minuteRows.map((x) => ({ ...x, ...summarizeOverhead(perMinute.get(x.minute.getTime()) ?? emptyHist()) }));
    return {
      from,
      to,
      bucketsMs: OVERHEAD_BUCKETS_MS,
      totals: {
        requests: minutes.reduce((n, x) => n + x.requests, 0),
        errors: minutes.reduce((n, x) => n + x.errors, 0),
        ...summarizeOverhead(total),
      },
      minutes,
      routes: routeRows.map((x) => ({
        ...x,
        routeId: x.routeId === '' ? null : x.routeId,
        pathPrefix: x.routeId === '' ? null : (x.pathPrefix ?? null),
        ...summarizeOverhead(perRoute.get(x.routeId) ?? emptyHist()),
      })),
      keys: keyRows,
    };
  }
}
