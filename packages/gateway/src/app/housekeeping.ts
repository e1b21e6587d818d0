import type { CacheProvider, Logger, SettingsReader } from '@apigate/kernel';
import type { Store } from '../domain/open-store.js';
import { PortalStore } from '../portal/store.js';
import { type PeriodicJob, startPeriodicJob } from '../store/periodic.js';

/** Days the per-minute usage and traffic rows are kept; 0 keeps them forever. */
export const USAGE_RETENTION_SETTING = 'usage.minute_retention_days';
/** Longer than the admin overview's 31-day window and the portal's 62-day daily view. */
export const DEFAULT_USAGE_RETENTION_DAYS = 90;
const MAX_RETENTION_DAYS = 36_500;
/** Applied usage batch ids stay at least this long whatever the retention: they make a queue redelivery or a spool replay count once. */
export const MIN_BATCH_RETENTION_DAYS = 7;
export const HOUSEKEEPING_INTERVAL_MS = 86_400_000;
/** The first round, shortly after the start (once the spool replay and the first batches are in). */
export const HOUSEKEEPING_FIRST_RUN_MS = 60_000;
const DAY_MS = 86_400_000;

/** What is wrong with a retention value, or undefined (for `apigate settings set`). */
export function checkRetentionDays(value: string): string | undefined {
  return /^\d+$/.test(value.trim()) && Number(value) <= MAX_RETENTION_DAYS
    ? undefined
    : `expected a whole number of days from 0 (keep forever) to ${MAX_RETENTION_DAYS}`;
}

/**
 * The retention in days (0: keep forever), read at each round so `apigate settings set` applies at
 * the next one. Undefined for a value the setting check refuses (written around it): the round then
 * deletes no usage rather than guess.
 */
export function readRetentionDays(settings: SettingsReader, logger: Logger): number | undefined {
  const raw = settings.get(USAGE_RETENTION_SETTING)?.trim();
  if (!raw) return DEFAULT_USAGE_RETENTION_DAYS;
  const problem = checkRetentionDays(raw);
  if (problem) {
    logger.warn(`setting ${USAGE_RETENTION_SETTING}: ${problem}; no usage rows are removed until it is fixed`);
    return undefined;
  }
  return Number(raw);
}

export interface HousekeepingResult {
  /** The retention applied; undefined when the setting is invalid. 0: usage kept forever. */
  retentionDays: number | undefined;
  /** Rows removed per table. */
  minutes: number;
  routeMinutes: number;
  overheadMinutes: number;
  batches: number;
  sessions: number;
  tokens: number;
}

export interface HousekeepingOptions {
  store: Store;
  logger: Logger;
  /** Default the system clock. */
  now?: () => Date;
}

/**
 * One housekeeping round: per-minute usage (`usage_minutely`) and traffic (`usage_route_minutely`,
 * `usage_overhead_minutely`) rows older than the retention, applied batch ids (`usage_batches`) older
 * than the retention and at least MIN_BATCH_RETENTION_DAYS old, and the portal's expired sessions and
 * used or expired tokens. Monthly totals (`usage_monthly`) are never removed: billing, quotas and
 * `usage show` read them. Logs one info line with the counts when anything was removed.
 */
export async function runHousekeeping(o: HousekeepingOptions): Promise<HousekeepingResult> {
  const now = o.now ?? (() => new Date());
  const at = now().getTime();
  const retentionDays = readRetentionDays(o.store.settings, o.logger);
  const result: HousekeepingResult = { retentionDays, minutes: 0, routeMinutes: 0, overheadMinutes: 0, batches: 0, sessions: 0, tokens: 0 };
  if (retentionDays) {
    const cutoff = new Date(at - retentionDays * DAY_MS);
    const batchCutoff = new Date(Math.min(cutoff.getTime(), at - MIN_BATCH_RETENTION_DAYS * DAY_MS));
    Object.assign(result, await o.store.domain.usage.prune(cutoff, batchCutoff), await o.store.domain.traffic.prune(cutoff));
  }
  Object.assign(result, await new PortalStore(o.store, now).prune(new Date(at)));
  const { retentionDays: _, ...counts } = result;
  if (Object.values(counts).some((n) => n > 0)) o.logger.info({ housekeeping: result }, 'housekeeping: old rows removed');
  return result;
}

export interface HousekeepingJobOptions extends HousekeepingOptions {
  /** With a shared cache, one instance runs each round (besides `store.exclusive`). */
  cache?: CacheProvider | undefined;
  /** Default a day. */
  intervalMs?: number;
  /** Default a minute. */
  firstRunMs?: number;
}

/**
 * Runs `runHousekeeping` shortly after the start and then every day (unref'd timers), one round at a
 * time across instances: the job's database lock (`store.exclusive`) and, with a shared cache, its
 * lock there. `stop()` waits for a running round.
 */
export function startHousekeeping(o: HousekeepingJobOptions): PeriodicJob<HousekeepingResult> {
  return startPeriodicJob({
    intervalMs: o.intervalMs ?? HOUSEKEEPING_INTERVAL_MS,
    firstRunMs: o.firstRunMs ?? HOUSEKEEPING_FIRST_RUN_MS,
    cache: o.cache,
    lockKey: 'housekeeping',
    exclusive: (name, fn) => o.store.exclusive(name, fn),
    logger: o.logger,
    failure: 'housekeeping failed',
    run: () => runHousekeeping(o),
  });
}
