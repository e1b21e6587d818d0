import type { Logger } from '@apigate/kernel';
import type { UsageRepository } from '../domain/usage.js';
import type { UsageSink } from '../metering/types.js';

/**
 * The metering consumer's sink into the domain's usage tables: each batch is applied in
 * one transaction that records its id, so a batch delivered twice (queue redelivery, spool
 * replay) counts once. Per-minute rows keep requests, bytes and errors (4xx + 5xx answers) per
 * key, and per route with the added-latency histogram (`overhead`) for the traffic overview;
 * upstream latency totals are dropped. `last_used_at` of the keys
 * moves in the same transaction: one write per batch, never per request. Rows for a key this
 * database does not know (another deployment's batch on a shared queue, a key deleted since) are
 * dropped by the store and logged here.
 */
export function storeUsageSink(usage: UsageRepository, opts: { logger?: Logger } = {}): UsageSink {
  return {
    async applyBatch(batch) {
      const entries = batch.rows.map((r) => ({
        keyId: r.keyId,
        userId: r.userId,
        at: r.minute,
        requests: r.requests,
        bytesIn: r.bytesIn,
        bytesOut: r.bytesOut,
        errors: r.clientErrors + r.serverErrors,
        routeId: r.routeId,
        ...(r.overhead ? { overhead: r.overhead } : {}),
      }));
      const r = await usage.applyBatch(batch.id, entries);
      if (r.dropped) {
        const keys = [...new Set(r.dropped.map((d) => d.keyId))];
        const requests = r.dropped.reduce((n, d) => n + (d.requests ?? 1), 0);
        opts.logger?.warn(
          { batch: batch.id, rows: r.dropped.length, requests, keys: keys.slice(0, 10) },
          `usage batch ${batch.id}: dropped ${r.dropped.length} rows (${requests} requests) for keys this database does not know`,
        );
      }
      return r.applied;
    },
  };
}
