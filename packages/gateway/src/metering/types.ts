import { z } from '@apigate/kernel';

/** One proxied request, as the hot path reports it. */
export interface UsageRecord {
  keyId: string;
  userId: string;
  /** The matched route; null for requests refused before a route matched. */
  routeId: string | null;
  status: number;
  bytesIn: number;
  bytesOut: number;
  /** From arrival at the gateway to the last byte of the answer. */
  latencyMs: number;
  /**
   * Time spent in APIGate itself, ms (fractional): arrival to the request handed to the upstream's
   * connection, plus the upstream's response head to the client's response head written. The wait
   * for the upstream (connect, its answer, the bodies' pace) is left out. For an answer the gateway
   * made itself (405, 502, 503, 504) it is the whole time except the wait for the upstream.
   */
  overheadMs: number;
  /** When the request arrived, epoch ms. */
  at: number;
}

/**
 * Upper bounds (ms, inclusive) of the buckets of `UsageRow.overhead`: bucket i counts the requests
 * with overheadMs <= OVERHEAD_BUCKETS_MS[i] and above the bound before it. Never reorder: stored
 * histograms are positional.
 */
export const OVERHEAD_BUCKETS_MS: readonly number[] = Object.freeze([
  0.25,
  0.5,
  1,
  2,
  4,
  8,
  16,
  32,
  64,
  128,
  256,
  Number.POSITIVE_INFINITY,
]);

/** The bucket (index into OVERHEAD_BUCKETS_MS) of an overhead in ms. */
export function overheadBucket(ms: number): number {
  const b = OVERHEAD_BUCKETS_MS;
  let i = 0;
  while (i < b.length - 1 && !(ms <= b[i]!)) i++; // NaN lands in the last bucket
  return i;
}

/**
 * The q-quantile (0..1) of an overhead histogram, as the upper bound (ms) of the bucket holding it
 * (Infinity when that is the last bucket); 0 for an empty histogram. `overheadQuantile(h, 0.99)` is
 * the p99 added latency "at most X ms".
 */
export function overheadQuantile(hist: readonly number[], q: number): number {
  let total = 0;
  for (const n of hist) total += n;
  if (total === 0) return 0;
  const rank = Math.max(1, Math.ceil(Math.min(1, Math.max(0, q)) * total));
  let seen = 0;
  for (let i = 0; i < hist.length; i++) {
    seen += hist[i]!;
    if (seen >= rank) return OVERHEAD_BUCKETS_MS[Math.min(i, OVERHEAD_BUCKETS_MS.length - 1)]!;
  }
  return OVERHEAD_BUCKETS_MS[OVERHEAD_BUCKETS_MS.length - 1]!;
}

/** Adds histogram `from` into `into` bucket by bucket (rows of the same key, route and minute). */
export function addOverhead(into: number[], from: readonly number[]): void {
  for (let i = 0; i < from.length; i++) into[i] = (into[i] ?? 0) + from[i]!;
}

/** Requests of one key on one route within one minute, summed. */
export interface UsageRow {
  keyId: string;
  userId: string;
  routeId: string | null;
  /** Start of the minute, epoch ms (UTC). */
  minute: number;
  requests: number;
  /** Answers with a 4xx status (401, 429... included). */
  clientErrors: number;
  /** Answers with a 5xx status (the gateway's own 502/504 included). */
  serverErrors: number;
  bytesIn: number;
  bytesOut: number;
  latencyMsTotal: number;
  latencyMsMax: number;
  /**
   * Histogram of the requests' `overheadMs`: counts per bucket of OVERHEAD_BUCKETS_MS (same length
   * and order); its counts sum to `requests`. Absent in batches of older gateways.
   */
  overhead?: number[];
}

/** What travels on the `usage` queue. Its id is the publish's jobId and the repository's idempotency key. */
export interface UsageBatch {
  id: string;
  /** ISO time the batch was sealed. */
  createdAt: string;
  rows: UsageRow[];
}

/**
 * Where usage batches are written: the metering consumer hands each batch to a sink
 * (`storeUsageSink` in gate/usage-sink.ts writes into the store's usage tables). `applyBatch` must be one transaction that
 * adds every row to the per-minute usage (and per-month totals) and records `batch.id`; a batch
 * id already recorded changes nothing and returns false. Queues deliver at least once, so a
 * batch can arrive twice.
 */
export interface UsageSink {
  applyBatch(batch: UsageBatch): Promise<boolean>;
}

const count = z.number().int().nonnegative();

/** Checks a batch read back from a queue (it may come from another version of the gateway). */
export const usageBatchSchema: z.ZodType<UsageBatch> = z.object({
  id: z.string().min(1),
  createdAt: z.string(),
  rows: z.array(
    z.object({
      keyId: z.string().min(1),
      userId: z.string().min(1),
      routeId: z.string().nullable(),
      minute: count,
      requests: count,
      clientErrors: count,
      serverErrors: count,
      bytesIn: count,
      bytesOut: count,
      latencyMsTotal: z.number().nonnegative(),
      latencyMsMax: z.number().nonnegative(),
      overhead: z.array(count).max(OVERHEAD_BUCKETS_MS.length).optional(),
    }),
  ),
});
