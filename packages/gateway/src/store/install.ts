/**
 * The default Redis key prefixes of one database, by setting key (the kernel's `defaults`): the
 * cache under `apigate:<installId>:cache:`, the queues under `apigate-<installId>`. Two deployments
 * with different databases on one Redis then never read each other's counters or consume each
 * other's jobs. `REDIS_KEY_PREFIX`, `cache.redis.key_prefix` and `queue.redis.prefix` still win.
 */
export function installPrefixDefaults(installId: string): Record<string, string> {
  return {
    'cache.redis.key_prefix': `apigate:${installId}:cache:`,
    'queue.redis.prefix': `apigate-${installId}`,
  };
}
