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
  latencyMs: number;
  /** When the request arrived, epoch ms. */
  at: number;
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
}

/** What travels on the `usage` queue. Its id is the publish's jobId and the repository's idempotency key. */
export interface UsageBatch {
  id: string;
  /** ISO time the batch was sealed. */
  createdAt: string;
  rows: UsageRow[];
}

/**
 * Where usage batches land (the store implements it). `applyBatch` must be one transaction that
 * adds every row to the per-minute usage (and per-month totals) and records `batch.id`; a batch
 * id already recorded changes nothing and returns false. Queues deliver at least once, so a
 * batch can arrive twice.
 */
export interface UsageRepository {
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
    }),
  ),
});
