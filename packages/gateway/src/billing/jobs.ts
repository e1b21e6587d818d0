import { describeError, type Kernel, type Logger } from '@apigate/kernel';
import type { SettingsStore } from '../store/settings.js';
import type { Store } from '../domain/open-store.js';
import type { CustomerBilling } from './customer-billing.js';
import { startPlanSyncWorker } from './plan-sync-worker.js';
import { startReconciler } from './reconcile.js';
import { startUsageReporter } from './usage-report.js';

export const RECONCILE_INTERVAL_SETTING = 'payment.reconcile_interval_minutes';
export const USAGE_REPORT_INTERVAL_SETTING = 'payment.usage_report_interval_minutes';
export const DEFAULT_RECONCILE_MINUTES = 60;
export const DEFAULT_USAGE_REPORT_MINUTES = 60;

/** What is wrong with an interval setting value, or undefined (for `apigate settings set`). */
export function checkIntervalMinutes(value: string): string | undefined {
  return /^\d+$/.test(value.trim()) && Number(value) <= 10_080
    ? undefined
    : 'expected a whole number of minutes from 0 (off) to 10080 (a week)';
}

function minutes(settings: SettingsStore, key: string, fallback: number, logger: Logger): number {
  const raw = settings.get(key);
  if (raw === undefined || raw.trim() === '') return fallback;
  const problem = checkIntervalMinutes(raw);
  if (problem) {
    logger.warn(`setting ${key}: ${problem}; using ${fallback}`);
    return fallback;
  }
  return Number(raw);
}

export interface BillingJobs {
  close(): Promise<void>;
}

/**
 * The billing jobs `apigate serve` runs next to the payment worker: the plan price sync worker
 * (queue `payment.plan-sync`, fed by plan changes), reconciliation with the provider every
 * `payment.reconcile_interval_minutes` (default 60, 0 off) and overage reporting every
 * `payment.usage_report_interval_minutes` (default 60, 0 off; only where metered billing is
 * supported). With a shared cache, one instance runs each round. Timers are unref'd.
 */
export function startBillingJobs(o: { kernel: Kernel; store: Store; logger: Logger; billing: CustomerBilling | undefined }): BillingJobs {
  const { billing, store, logger } = o;
  if (!billing) return { close: async () => {} };
  const queue = o.kernel.tryGet('queue');
  const cache = o.kernel.tryGet('cache');
  const features = o.kernel.selected('payment')?.features;
  const common = { store, logger, providerName: billing.providerName, payment: billing.payment, features };
  const stops: (() => Promise<void>)[] = [];

  if (queue) {
    const sync = startPlanSyncWorker({ ...common, queue });
    stops.push(() => sync.close());
  } else {
    logger.warn('no queue provider: plan prices are not synced automatically; run apigate plans sync after changing a plan');
  }
  const reconcileMin = minutes(store.settings, RECONCILE_INTERVAL_SETTING, DEFAULT_RECONCILE_MINUTES, logger);
  if (reconcileMin > 0) {
    const r = startReconciler({ ...common, applier: applierOf(billing), intervalMs: reconcileMin * 60_000, cache });
    stops.push(() => r.stop());
  }
  const usageMin = minutes(store.settings, USAGE_REPORT_INTERVAL_SETTING, DEFAULT_USAGE_REPORT_MINUTES, logger);
  if (usageMin > 0 && billing.features.meteredBilling) {
    const u = startUsageReporter({ ...common, intervalMs: usageMin * 60_000, cache });
    stops.push(() => u.stop());
  }
  return {
    async close() {
      for (const stop of stops.splice(0))
        await stop().catch((err: unknown) => logger.warn(`cannot stop a billing job: ${describeError(err)}`));
    },
  };
}

const applierOf = (billing: CustomerBilling) => ({ applyState: billing.applyState.bind(billing) });
