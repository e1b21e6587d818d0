import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApigateError, describeError, type Health, type Kernel, type Logger, type QueueProvider, type Worker } from '@apigate/kernel';
import { CacheCircuit, limitsHealth } from '../limits/circuit.js';
import { type QuotaCounterOptions, QuotaCounter } from '../limits/quota.js';
import { RateLimiter } from '../limits/rate-limit.js';
import { startUsageConsumer } from '../metering/consumer.js';
import { USAGE_QUEUE, UsageRecorder } from '../metering/recorder.js';
import { type ForwarderOptions, Forwarder } from '../proxy/forward.js';
import type { Store } from '../store/store.js';
import { GateCatalog } from './catalog.js';
import { DomainEventWebhooks } from './domain-events.js';
import { createProxyHandler, ownedByGateway } from './handler.js';
import { QuotaNotices, type SendEmail } from './notices.js';
import { storeUsageRepository } from './usage-store.js';
import { WebhookDispatcher } from './webhooks.js';

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
   * the upstream pools. Close the kernel after this. Idempotent.
   */
  close(): Promise<void>;
}

/**
 * Wires the hot path (catalog, rate limiter, quota, forwarder, usage recorder) with the usage
 * consumer, quota notices and outbound webhooks over the kernel's cache and queue. Needs both.
 */
export async function startGateway(o: GatewayOptions): Promise<Gateway> {
  const { kernel, store, logger } = o;
  const cache = kernel.tryGet('cache');
  const queue = kernel.tryGet('queue');
  if (!cache) throw new ApigateError('CACHE_REQUIRED', 'the gateway counts rate limits and quotas in the cache: set CACHE_PROVIDER to memory or redis');
  if (!queue) throw new ApigateError('QUEUE_REQUIRED', 'the gateway meters usage through the queue: set QUEUE_PROVIDER to memory or redis');
  const durableQueue = (kernel.active.find((a) => a.capability === 'queue')?.definition.features as { durable?: boolean } | undefined)?.durable === true;
  const domain = store.domain;

  const catalog = await GateCatalog.open(store, { logger, ...(o.pollIntervalMs ? { pollIntervalMs: o.pollIntervalMs } : {}) });
  const circuit = new CacheCircuit(cache, { logger });
  const now = o.now ?? Date.now;
  const limiter = new RateLimiter(circuit, { now });
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
  const consumer = startUsageConsumer(queue, storeUsageRepository(domain.usage, { logger }), { logger });
  const webhooks = new WebhookDispatcher({ domain, queue, attempts: o.webhookRetry?.attempts ?? 10, backoffMs: o.webhookRetry?.backoffMs ?? 2000, logger });
  const webhookWorker = webhooks.start();
  const domainEvents = new DomainEventWebhooks(store, webhooks, { logger });
  const notices = new QuotaNotices({ domain, sendEmail: o.sendEmail, webhooks, logger });
  const forwarder = new Forwarder({ logger, ...o.forwarder });
  const handle = createProxyHandler({ catalog, limiter, quota, recorder, forwarder, notices, logger, now });

  let closing: Promise<void> | undefined;
  const close = async () => {
    domainEvents.close();
    const published = await recorder.close();
    await quota.close();
    await drainUsage(queue, durableQueue, o.drainTimeoutMs ?? 15_000, logger);
    await stopWorker(consumer, 'usage consumer', logger);
    await notices.close();
    await webhooks.close();
    await stopWorker(webhookWorker, 'webhook worker', logger);
    await forwarder.close();
    await catalog.close();
    logger.info({ usageBatches: published }, 'gateway stopped');
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
    close() {
      closing ??= close();
      return closing;
    },
  };
}

async function stopWorker(w: Worker, what: string, logger: Logger): Promise<void> {
  await w.close().catch((err: unknown) => logger.warn(`cannot stop the ${what}: ${describeError(err)}`));
}

/**
 * Waits until the usage queue has nothing waiting, running or delayed: the batches just published
 * are in the store. A memory queue loses what is left when the process ends, so that is logged
 * as an error; a durable queue keeps it for the next start.
 */
async function drainUsage(queue: QueueProvider, durable: boolean, timeoutMs: number, logger: Logger): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let left = 0;
  for (;;) {
    try {
      const s = await queue.stats(USAGE_QUEUE);
      left = s.waiting + s.active + s.delayed;
    } catch (err) {
      logger.warn(`cannot read the usage queue while stopping: ${describeError(err)}`);
      return;
    }
    if (left === 0 || Date.now() >= deadline) break;
    await sleep(25);
  }
  if (left === 0) return;
  if (durable) logger.warn(`${left} usage batches still queued; they are applied after the next start`);
  else logger.error(`${left} usage batches were not applied within ${Math.round(timeoutMs / 1000)} s and are lost with the memory queue`);
}
