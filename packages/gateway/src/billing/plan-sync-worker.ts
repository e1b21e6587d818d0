import { describeError, type Job, type Logger, type PaymentFeatures, type PaymentProvider, type QueueProvider } from '@apigate/kernel';
import type { ChangeEvent } from '../store/changes.js';
import type { Store } from '../domain/open-store.js';
import { syncPlan, syncPlanPrices } from './plans-sync.js';

/** The queue plan price syncs run on: `{ planId }` for one plan, `{}` for all. */
export const PLAN_SYNC_QUEUE = 'payment.plan-sync';

export interface PlanSyncJob {
  planId?: string;
}

export interface PlanSyncWorkerOptions {
  queue: Pick<QueueProvider, 'process' | 'publish'>;
  store: Store;
  logger: Logger;
  providerName: string;
  payment: Pick<PaymentProvider, 'upsertPrice'>;
  features?: PaymentFeatures | undefined;
  /** Tries per job (exponential backoff from 2 s). Default 6. */
  attempts?: number;
  /** Queue a full sync when the worker starts (plans changed while no server ran). Default true. */
  syncAtStart?: boolean;
}

/**
 * Keeps provider prices in step with plans: every plan created or changed (admin API, CLI, another
 * instance: `domain.changes` reports them all) publishes a `payment.plan-sync` job that upserts its
 * prices (month, year, metered overage) and stores the mappings; the queue retries it with backoff
 * while the provider is down. `apigate plans sync` stays for a full resync by hand.
 */
export function startPlanSyncWorker(o: PlanSyncWorkerOptions): { publish(job: PlanSyncJob): Promise<void>; close(): Promise<void> } {
  const opts = { store: o.store, providerName: o.providerName, payment: o.payment, features: o.features, logger: o.logger };
  const worker = o.queue.process<PlanSyncJob>(
    PLAN_SYNC_QUEUE,
    async (job: Job<PlanSyncJob>) => {
      const { planId } = job.payload;
      try {
        if (planId === undefined) await syncPlanPrices(opts);
        else {
          const plan = await o.store.domain.plans.find(planId);
          if (plan) await syncPlan(opts, plan); // a deleted plan has nothing to sync
        }
      } catch (err) {
        o.logger.warn({ provider: o.providerName, planId, attempt: job.attempt }, `plan price sync failed: ${describeError(err)}`);
        throw err;
      }
    },
    { concurrency: 1 },
  );

  let n = 0;
  const publish = async (job: PlanSyncJob) => {
    // A unique id per change: two quick edits are two syncs (the second sees the final plan).
    await o.queue.publish(PLAN_SYNC_QUEUE, job, {
      jobId: `${job.planId ?? 'all'}:${Date.now()}:${n++}`,
      attempts: o.attempts ?? 6,
      backoff: { type: 'exponential', delayMs: 2000 },
    });
  };
  const onChange = (e: ChangeEvent) => {
    if (e.entity !== 'plans' || e.action === 'deleted') return;
    publish(e.action === 'external' || e.id === undefined ? {} : { planId: e.id }).catch((err: unknown) => {
      o.logger.warn(
        { provider: o.providerName, planId: e.id },
        `cannot queue the plan price sync: ${describeError(err)}; run apigate plans sync`,
      );
    });
  };
  o.store.domain.changes.on('change', onChange);
  if (o.syncAtStart !== false) {
    publish({}).catch((err: unknown) => o.logger.warn(`cannot queue the plan price sync: ${describeError(err)}`));
  }
  return {
    publish,
    async close() {
      o.store.domain.changes.off('change', onChange);
      await worker.close();
    },
  };
}
