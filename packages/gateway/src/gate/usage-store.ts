import type { UsageRepository as DomainUsage } from '../domain/usage.js';
import type { UsageRepository } from '../metering/types.js';

/**
 * The metering consumer's repository over the domain's usage tables: each batch is applied in
 * one transaction that records its id, so a batch delivered twice (queue redelivery, spool
 * replay) counts once. Per-minute rows keep requests, bytes and errors (4xx + 5xx answers);
 * route and latency are dropped (the usage tables do not keep them). `last_used_at` of the keys
 * moves in the same transaction: one write per batch, never per request.
 */
export function storeUsageRepository(usage: DomainUsage): UsageRepository {
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
      }));
      return (await usage.applyBatch(batch.id, entries)).applied;
    },
  };
}
