import { isRetryable } from '@apigate/kernel';
import type { RedisOptions } from 'ioredis';

export interface ConnectionConfig {
  url: string;
  password?: string | undefined;
  db?: number | undefined;
  commandTimeoutMs: number;
  connectTimeoutMs: number;
}

/** The db number in a URL path ("" or "/" means none); null when the path is not a number. */
function dbFromPath(pathname: string): number | undefined | null {
  const p = pathname.replace(/^\//, '');
  if (p === '') return undefined;
  return /^\d+$/.test(p) ? Number(p) : null;
}

/** `redis://[user:pass@]host[:port][/db]` or `rediss://...` (TLS). */
export function isRedisUrl(value: string): boolean {
  try {
    const u = new URL(value);
    return (u.protocol === 'redis:' || u.protocol === 'rediss:') && u.hostname !== '' && dbFromPath(u.pathname) !== null;
  } catch {
    return false;
  }
}

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

/** Reconnect back-off: 100 ms doubling to a 2 s cap, jittered so gateways do not reconnect in lockstep. */
export function reconnectDelay(attempt: number): number {
  const base = Math.min(100 * 2 ** Math.min(attempt - 1, 5), 2000);
  return base + Math.floor(Math.random() * (base / 4));
}

export function connectionOptions(cfg: ConnectionConfig, name: string): QueueConnections {
  const u = new URL(cfg.url);
  const tls = u.protocol === 'rediss:';
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = u.port ? Number(u.port) : 6379;
  const username = decodeURIComponent(u.username);
  const password = cfg.password ?? (decodeURIComponent(u.password) || undefined);
  const db = cfg.db ?? dbFromPath(u.pathname) ?? 0;
  const base: RedisOptions = {
    host,
    port,
    ...(username ? { username } : {}),
    ...(password ? { password } : {}),
    db,
    ...(tls ? { tls: { servername: host } } : {}),
    connectTimeout: cfg.connectTimeoutMs,
    retryStrategy: reconnectDelay,
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
    where: `${tls ? 'rediss' : 'redis'}://${u.hostname}:${port}/${db}`,
  };
}

/** Server replies that mean "try again shortly" rather than "this call is wrong". */
const TRANSIENT_REPLIES = /^(LOADING|BUSY|TRYAGAIN|MASTERDOWN|CLUSTERDOWN|READONLY|NOREPLICAS|OOM)\b/;
/** What ioredis says when the connection, not the command, failed. */
const CONNECTION_FAILURE =
  /Connection is closed|Stream isn't writeable|enableOfflineQueue|Command timed out|max retries per request|connect ETIMEDOUT|Socket closed/i;

/** Whether a Redis or BullMQ failure may succeed if the call is made again later. */
export function isTransient(err: unknown): boolean {
  const e = err as { name?: unknown; message?: unknown } | null;
  const message = typeof e?.message === 'string' ? e.message : '';
  if (e?.name === 'ReplyError') return TRANSIENT_REPLIES.test(message);
  if (e?.name === 'MaxRetriesPerRequestError') return true;
  return CONNECTION_FAILURE.test(message) || isRetryable(err);
}
