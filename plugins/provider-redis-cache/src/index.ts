import { defineProvider, fields, redisConnectionFields, z } from '@apigate/kernel';
import { RedisCache } from './redis-cache.js';

export { redisOptions } from './connection.js';
export { INCREMENT_LUA, RedisCache, type RedisCacheConfig } from './redis-cache.js';

export default defineProvider({
  capability: 'cache',
  name: 'redis',
  description: 'Redis cache via ioredis (shared by every gateway instance; atomic increments for rate limits)',
  config: z.object({
    ...redisConnectionFields(),
    keyPrefix: z
      .string()
      .default('apigate:cache:')
      .describe('a string put before every key, so several gateways or apps can share one Redis'),
    commandTimeoutMs: fields.int({ min: 1 }).default(500).describe('milliseconds a command may take before it fails as retryable'),
    connectTimeoutMs: fields.int({ min: 1 }).default(2000).describe('milliseconds a connection attempt may take'),
    autoPipelining: fields.flag(false).describe('send calls made in the same tick together: lower median latency, longer tail'),
  }),
  env: {
    url: 'REDIS_URL',
    password: 'REDIS_PASSWORD',
    db: 'REDIS_DB',
    keyPrefix: 'REDIS_KEY_PREFIX',
    commandTimeoutMs: 'REDIS_COMMAND_TIMEOUT_MS',
    connectTimeoutMs: 'REDIS_CONNECT_TIMEOUT_MS',
    autoPipelining: 'REDIS_AUTO_PIPELINING',
  },
  secrets: ['password'],
  features: { shared: true },
  create: async (config, ctx) => {
    const cache = new RedisCache(config, ctx);
    await cache.connect(config.connectTimeoutMs);
    return cache;
  },
});
