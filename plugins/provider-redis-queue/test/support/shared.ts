import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

/** The shared Redis every package's tests use; REDIS_URL overrides. Never flushed or stopped by these tests. */
export const SHARED_REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A key prefix (the provider's `prefix` setting) no other run or test file shares. */
export const testPrefix = (label: string): string => `tk-redis-queue-${label}-${randomBytes(4).toString('hex')}`;

/** A plain ioredis client to look behind the provider. */
export const rawClient = (url = SHARED_REDIS_URL): Redis => new Redis(url, { maxRetriesPerRequest: 1 });

/** Deletes every key under `prefix:` with SCAN + UNLINK (test clean-up). */
export async function deletePrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await redis.unlink(keys);
  } while (cursor !== '0');
}
