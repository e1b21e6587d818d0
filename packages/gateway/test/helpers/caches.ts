import { randomUUID } from 'node:crypto';
import type { CacheProvider, KernelEvent } from '@apigate/kernel';
import memoryCache from '@apigate/provider-memory-cache';
import redisCache from '@apigate/provider-redis-cache';
import { createForTest } from '@apigate/provider-testkit';
import { closedPort } from './http.js';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface TestCache {
  cache: CacheProvider;
  events: KernelEvent[];
  close(): Promise<void>;
}

/** The memory provider as the kernel serves it (instrumented). */
export async function memory(): Promise<TestCache> {
  const { provider, events } = await createForTest(memoryCache);
  return { cache: provider, events, close: () => provider.close() };
}

/** The Redis provider at `url` under a key prefix of its own; `close` deletes its keys when it still can. */
export async function redis(url = REDIS_URL): Promise<TestCache> {
  const { provider, events } = await createForTest(redisCache, {
    url,
    keyPrefix: `apigate-test:gateway:${randomUUID()}:`,
    connectTimeoutMs: '1000',
    commandTimeoutMs: '1000',
  });
  return {
    cache: provider,
    events,
    close: async () => {
      await provider.clear().catch(() => 0);
      await provider.close();
    },
  };
}

/** The Redis provider pointed at a port nobody listens on: a real cache whose backend is down. */
export async function deadRedis(): Promise<TestCache> {
  const port = await closedPort();
  const { provider, events } = await createForTest(redisCache, { url: `redis://127.0.0.1:${port}`, connectTimeoutMs: '100' });
  return { cache: provider, events, close: () => provider.close() };
}

export function providerErrors(events: KernelEvent[]): number {
  return events.filter((e) => e.type === 'provider.error').length;
}
