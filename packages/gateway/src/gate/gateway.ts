import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApigateError, describeError, type Health, type Kernel, type Logger, type QueueProvider, type Worker } from '@apigate/kernel';
import { CacheCircuit, limitsHealth } from '../limits/circuit.js';
import { type QuotaCounterOptions, QuotaCounter } from '../limits/quota.js';
import { RateLimiter } from '../limits/rate-limit.js';
import { startUsageConsumer } from '../metering/consumer.js';
import { type CloseSummary, USAGE_QUEUE, UsageRecorder } from '../metering/recorder.js';
import { type ForwarderOptions, Forwarder } from '../proxy/forward.js';
import type { Store } from '../domain/open-store.js';
import { GateCatalog } from './catalog.js';
import { DomainEventWebhooks } from './domain-events.js';
import { createProxyHandler, ownedByGateway } from './handler.js';
import { QuotaNotices, type SendEmail } from './notices.js';
import { storeUsageSink } from './usage-sink.js';
import { WebhookDispatcher } from '../delivery/outbound-webhooks.js';

/** Where unpublished usage batches wait for the next start: `<dataDir>/usage-spool.jsonl`. */
export const USAGE_SPOOL_FILE = 'usage-spool.jsonl';

export interface GatewayOptions {
  kernel: Kernel;
  store: Store;
  dataDir: string;
  logger: Logger;
  /** The delivery outbox's `sendEmail` (quota notices); absent: notices go to webhooks only. */
  sendEmail?: SendEmail | undefined;
  /** Retries of webhook deliveries (the delivery settings' attempts and backoff). */
  webhookRetry?: { attempts: number; backoffMs: number };
  /** Staleness bound for changes made by other processes (see GateCatalog). Default 1000 ms. */
  pollIntervalMs?: number;
  /** How often usage batches are published. Default 1000 ms. */
  meterIntervalMs?: number;
  /** How long close() waits for queued usage batches to be applied. Default 15000 ms. */
  drainTimeoutMs?: number;
  forwarder?: ForwarderOptions;
  /** Clock of the limits and metering (tests pin it inside one rate-limit window). */
  now?: () => number;
  quota?: Pick<QuotaCounterOptions, 'syncIntervalMs' | 'thresholds'>;
}

export interface Gateway {
  /** For `startServer({ front })`: answers proxied paths and returns true; returns false for the gateway's own paths. */
  front(req: IncomingMessage, res: ServerResponse): boolean;
  catalog: GateCatalog;
  webhooks: WebhookDispatcher;
  /** Rate limits and quotas: `degraded` while the cache fails (limits per instance) or counts wait to be written. */
  health(): Health;
  /**
   * After the server stopped taking requests: publishes the metered usage, writes the quota
   * counts, waits until the usage queue is applied to the store, then stops the workers and
   * the upstream pools. Close the kernel after this. Idempotent. With a `deadline` (epoch ms)
   * no step waits past it: usage the queue did not take by then is spooled to disk, and the
   * report says what was left.
   */
  close(opts?: { deadline?: number }): Promise<GatewayCloseReport>;
  /**
   * Spools the metered usage not yet published, synchronously, without waiting for the queue:
   * for a shutdown deadline that passed while close() was still waiting on a hung backend.
   */
  spoolNow(): CloseSummary;
}

/** What close() could not finish: usage spooled for the next start, lost, or left queued. */
export interface GatewayCloseReport {
  usage: CloseSummary;
  /** Usage batches published but not yet applied to the store when close() stopped waiting. */
  usageQueued: number;
  /** Whether the queue keeps those (a durable queue, or a memory queue that spools). */
  usageQueuedKept: boolean;
  /** Steps close() stopped waiting for at the deadline. */
  abandoned: string[];
}

/**
 * Wires the hot path (catalog, rate limiter, quota, forwarder, usage recorder) with the usage
 * consumer, quota notices and outbound webhooks over the kernel's cache and queue. Needs both.
 */
export async function startGateway(o: GatewayOptions): Promise<Gateway> {
  const { kernel, store, logger } = o;
  const cache = kernel.tryGet('cache');
  const queue = kernel.tryGet('queue');
  if (!cache)
    throw new ApigateError(
      'CACHE_REQUIRED',
      'the gateway counts rate limits and quotas in the cache: set CACHE_PROVIDER to memory or redis',
    );
  if (!queue) throw new ApigateError('QUEUE_REQUIRED', 'the gateway meters usage through the queue: set QUEUE_PROVIDER to memory or redis');
  const durableQueue = kernel.selected('queue')?.features.durable === true;
  const domain = store.domain;

  const catalog = await GateCatalog.open(store, { logger, ...(o.pollIntervalMs ? { pollIntervalMs: o.pollIntervalMs } : {}) });
  const circuit = new CacheCircuit(cache, { logger });
  const now = o.now ?? Date.now;
  // A cache no other process sees (memory) holds what this process would count itself: count here.
  // Asked per request, since a settings change can switch the cache while serving.
  const limiter = new RateLimiter(circuit, { now, inProcess: () => kernel.features('cache')?.shared === false });
  const quota = new QuotaCounter(circuit, {
    logger,
    now,
    ...o.quota,
    // The stored usage (every instance's, through the shared database): a cache that lost the count
    // (a memory cache after a restart, a flushed or restarted Redis) is re-seeded from it.
    seed: async (userId, period) => (await domain.usage.forUser(userId, period.id)).totals.requests,
  });
  // Spool first: batches left by the last run are published (replayed) before new ones.
  const recorder = new UsageRecorder(queue, {
    spoolFile: path.join(o.dataDir, USAGE_SPOOL_FILE),
    logger,
    ...(o.meterIntervalMs ? { flushIntervalMs: o.meterIntervalMs } : {}),
  });
  const consumer = startUsageConsumer(queue, storeUsageSink(domain.usage, { logger }), { logger });
  const webhooks = new WebhookDispatcher({
    domain,
    queue,
    attempts: o.webhookRetry?.attempts ?? 10,
    backoffMs: o.webhookRetry?.backoffMs ?? 2000,
    logger,
  });
  const webhookWorker = webhooks.start();
  const domainEvents = new DomainEventWebhooks(store, webhooks, { logger });
  const notices = new QuotaNotices({ domain, sendEmail: o.sendEmail, webhooks, logger });
  const forwarder = new Forwarder({ logger, ...o.forwarder });
  const handle = createProxyHandler({ catalog, limiter, quota, recorder, forwarder, notices, logger, now });

  // A memory queue that spools (provider-memory-queue's default) keeps queued batches for the next start too.
  const selectedQueue = kernel.selected('queue');
  const queueKeeps = durableQueue || (selectedQueue?.name === 'memory' && !!(selectedQueue.instance as { spoolDir?: string }).spoolDir);

  let closing: Promise<GatewayCloseReport> | undefined;
  const close = async (deadline: number | undefined): Promise<GatewayCloseReport> => {
    const abandoned: string[] = [];
    // Each step waits at most until the deadline; a hung backend (a frozen Redis) is left behind, by name.
    const step = async (what: string, p: () => Promise<unknown>) => {
      if (deadline === undefined) return void (await p());
      if (!(await settlesBy(p(), deadline))) abandoned.push(what);
    };
    domainEvents.close();
    // Usage first gets until 3/4 of the time left, so it is spooled before anything else can hang.
    const usageBy = deadline === undefined ? undefined : Date.now() + Math.max(0, deadline - Date.now()) * 0.75;
    const usage = await recorder.close(usageBy === undefined ? {} : { deadline: usageBy });
    await step('rate-limit counts', () => limiter.flush());
    await step('quota counts', () => quota.close());
    const drainMs = Math.min(
      o.drainTimeoutMs ?? 15_000,
      deadline === undefined ? Number.POSITIVE_INFINITY : Math.max(0, deadline - Date.now()),
    );
    const usageQueued = await drainUsage(queue, queueKeeps, drainMs, logger);
    await step('usage consumer', () => stopWorker(consumer, 'usage consumer', logger));
    await step('quota notices', () => notices.close());
    await step('webhooks', () => webhooks.close());
    await step('webhook worker', () => stopWorker(webhookWorker, 'webhook worker', logger));
    await step('upstream connections', () => forwarder.close());
    await step('catalog', () => catalog.close());
    logger.info({ usageBatches: usage, usageQueued, abandoned }, 'gateway stopped');
    return { usage, usageQueued, usageQueuedKept: queueKeeps, abandoned };
  };

  logger.info({ ...catalog.size, durableQueue }, 'gateway ready');
  return {
    front(req, res) {
      if (ownedByGateway(req.url ?? '/')) return false;
      handle(req, res);
      return true;
    },
    catalog,
    webhooks,
    health: () => limitsHealth(circuit, quota),
    close(opts = {}) {
      closing ??= close(opts.deadline);
      return closing;
    },
    spoolNow: () => recorder.spoolNow(),
  };
}

/** What `p` resolves with, or undefined when `deadline` (epoch ms) comes first; rejections pass through. */
async function valueBy<T>(p: Promise<T>, deadline: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether `p` settles before `deadline`; a rejection counts as settled. */
async function settlesBy(p: Promise<unknown>, deadline: number): Promise<boolean> {
  return (
    (await valueBy(
      p.then(
        () => true,
        () => true,
      ),
      deadline,
    )) === true
  );
}

async function stopWorker(w: Worker, what: string, logger: Logger): Promise<void> {
  await w.close().catch((err: unknown) => logger.warn(`cannot stop the ${what}: ${describeError(err)}`));
}

/**
 * Waits until the usage queue has nothing waiting, running or delayed: the batches just published
 * are in the store. Returns how many are left. A queue that keeps them (durable, or a spooling
 * memory queue) applies them after the next start; otherwise they are lost, logged as an error.
 */
async function drainUsage(queue: QueueProvider, kept: boolean, timeoutMs: number, logger: Logger): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let left = 0;
  for (;;) {
    try {
      // A hung queue (a frozen Redis) must not hold shutdown: give up at the deadline.
      const s = await valueBy(queue.stats(USAGE_QUEUE), deadline);
      if (!s) {
        logger.warn('the usage queue did not answer while stopping');
        return left;
      }
      left = s.waiting + s.active + s.delayed;
    } catch (err) {
      logger.warn(`cannot read the usage queue while stopping: ${describeError(err)}`);
      return left;
    }
    if (left === 0 || Date.now() >= deadline) break;
    await sleep(25);
  }
  if (left === 0) return 0;
  if (kept) logger.warn(`${left} usage batches still queued; they are applied after the next start`);
  else logger.error(`${left} usage batches were not applied within ${Math.round(timeoutMs / 1000)} s and are lost with the memory queue`);
  return left;
}
