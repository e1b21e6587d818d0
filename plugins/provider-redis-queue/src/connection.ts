import {
  isRetryable,
  isTransientRedisReply,
  parseRedisUrl,
  type RedisConnectionConfig,
  redisReconnectDelay,
  redisSocketOptions,
} from '@apigate/kernel';
import type { RedisOptions } from 'ioredis';

export type ConnectionConfig = RedisConnectionConfig;

export interface QueueConnections {
  /**
   * For Queue calls (publish, stats, failed...): no offline queue and a command deadline, so a
   * call while Redis is away fails at once, retryable, instead of waiting for it to return.
   */
  commands: RedisOptions;
  /**
   * For Workers: BullMQ requires `maxRetriesPerRequest: null` (its blocking fetch must outlive
   * an outage) and keeps commands queued while reconnecting, so a job that finishes during an
   * outage is recorded as done once Redis is back.
   */
  workers: RedisOptions;
  /** host:port/db without credentials, for logs, errors and health details. */
  where: string;
}

export function connectionOptions(cfg: ConnectionConfig, name: string): QueueConnections {
  const t = parseRedisUrl(cfg.url, cfg);
  const base: RedisOptions = {
    ...redisSocketOptions(t),
    connectTimeout: cfg.connectTimeoutMs,
    retryStrategy: redisReconnectDelay,
    lazyConnect: true,
  };
  return {
    commands: {
      ...base,
      connectionName: `${name}:commands`,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: cfg.commandTimeoutMs,
    },
    workers: { ...base, connectionName: `${name}:workers`, enableOfflineQueue: true, maxRetriesPerRequest: null },
    where: t.where,
  };
}

/** What ioredis says when the connection, not the command, failed. */
const CONNECTION_FAILURE =
  /Connection is closed|Stream isn't writeable|enableOfflineQueue|Command timed out|max retries per request|connect ETIMEDOUT|Socket closed/i;

/** Whether a Redis or BullMQ failure may succeed if the call is made again later. */
export function isTransient(err: unknown): boolean {
  const e = err as { name?: unknown; message?: unknown } | null;
  const message = typeof e?.message === 'string' ? e.message : '';
  if (e?.name === 'ReplyError') return isTransientRedisReply(message);
  if (e?.name === 'MaxRetriesPerRequestError') return true;
  return CONNECTION_FAILURE.test(message) || isRetryable(err);
}
