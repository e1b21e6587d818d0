import { defineProvider, fields, redisConnectionFields, z } from '@apigate/kernel';
import { RedisQueue } from './redis-queue.js';

export { connectionOptions, isTransient } from './connection.js';
export { fromBullId, toBullId } from './ids.js';
export { RedisQueue, type RedisQueueConfig } from './redis-queue.js';

export default defineProvider({
  capability: 'queue',
  name: 'redis',
  description: 'Redis job queue built on BullMQ (shared by every gateway instance; jobs survive restarts)',
  config: z.object({
    ...redisConnectionFields(),
    prefix: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'expected letters, digits, ".", "_" or "-"')
      .default('apigate')
      .describe('the first part of every key, so several gateways can share one Redis'),
    keepCompleted: fields
      .int({ min: 0 })
      .default(1000)
      .describe('how many completed jobs each queue keeps; their jobIds stay taken (idempotency)'),
    lockDurationMs: fields
      .int({ min: 100 })
      .default(30_000)
      .describe('milliseconds a worker holds a job lock between renewals; after a worker dies its job runs again once the lock expires'),
    stalledIntervalMs: fields.int({ min: 100 }).default(30_000).describe('milliseconds between checks for jobs whose worker died'),
    maxStalledCount: fields
      .int({ min: 0 })
      .default(1)
      .describe('how many times a job may lose its worker before it moves to the failed set'),
    commandTimeoutMs: fields.int({ min: 1 }).default(5_000).describe('milliseconds a queue command may take before it fails as retryable'),
    connectTimeoutMs: fields.int({ min: 1 }).default(5_000).describe('milliseconds a connection attempt may take'),
  }),
  env: {
    url: ['QUEUE_REDIS_URL', 'REDIS_URL'],
    password: 'REDIS_PASSWORD',
    db: 'REDIS_DB',
  },
  secrets: ['password'],
  features: { durable: true },
  create: async (config, ctx) => {
    const queue = new RedisQueue(config, ctx);
    await queue.connect();
    return queue;
  },
});
