import { randomUUID } from 'node:crypto';
import type { QueueProvider } from '@apigate/kernel';
import memoryQueue from '@apigate/provider-memory-queue';
import redisCache from '@apigate/provider-redis-cache';
import redisQueue from '@apigate/provider-redis-queue';
import { createForTest } from '@apigate/provider-testkit';
import { addOverhead, type UsageBatch, type UsageSink, type UsageRow } from '../../src/metering/types.js';
import { REDIS_URL } from './caches.js';

export interface TestQueue {
  queue: QueueProvider;
  close(): Promise<void>;
}

export async function memory(): Promise<TestQueue> {
  const { provider } = await createForTest(memoryQueue);
  return { queue: provider, close: () => provider.close() };
}

/**
 * The BullMQ provider at `url` under a prefix of its own. `close` removes every key under the
 * prefix from the shared Redis (through the real Redis cache provider's prefix clear).
 */
export async function redis(url: string): Promise<TestQueue> {
  const prefix = `apigate-test-gw-${randomUUID()}`;
  const { provider } = await createForTest(redisQueue, { url, prefix, connectTimeoutMs: '1000', commandTimeoutMs: '1000' });
  return {
    queue: provider,
    close: async () => {
      await provider.close();
      const { provider: sweeper } = await createForTest(redisCache, { url: REDIS_URL, keyPrefix: `${prefix}:` });
      await sweeper.clear();
      await sweeper.close();
    },
  };
}

/** A UsageSink kept in memory with the contract's idempotency (the store's comes later). */
export class MemoryUsageSink implements UsageSink {
  readonly applied = new Set<string>();
  readonly rows = new Map<string, UsageRow>();
  calls = 0;

  async applyBatch(batch: UsageBatch): Promise<boolean> {
    this.calls++;
    if (this.applied.has(batch.id)) return false;
    this.applied.add(batch.id);
    for (const r of batch.rows) {
      const k = `${r.keyId}|${r.routeId ?? ''}|${r.minute}`;
      const have = this.rows.get(k);
      if (!have) {
        this.rows.set(k, { ...r, ...(r.overhead ? { overhead: [...r.overhead] } : {}) });
        continue;
      }
      have.requests += r.requests;
      have.clientErrors += r.clientErrors;
      have.serverErrors += r.serverErrors;
      have.bytesIn += r.bytesIn;
      have.bytesOut += r.bytesOut;
      have.latencyMsTotal += r.latencyMsTotal;
      have.latencyMsMax = Math.max(have.latencyMsMax, r.latencyMsMax);
      if (r.overhead) addOverhead((have.overhead ??= []), r.overhead);
    }
    return true;
  }

  requests(keyId?: string): number {
    let n = 0;
    for (const r of this.rows.values()) if (keyId === undefined || r.keyId === keyId) n += r.requests;
    return n;
  }
}
