import { z } from 'zod';
import { fields } from './config.js';

/**
 * What every Redis-backed provider (cache, queue) needs the same way and that depends on no
 * client library: the URL format, the config fields for it, reconnect back-off and which error
 * replies are passing. Each provider builds its own client options from these.
 */

/** The db number in a URL path ("" or "/" means none); null when the path is not a number. */
function dbFromPath(pathname: string): number | undefined | null {
  const p = pathname.replace(/^\//, '');
  if (p === '') return undefined;
  return /^\d+$/.test(p) ? Number(p) : null;
}

/** `redis://[user:password@]host[:port][/db]` or `rediss://...` (TLS). */
export function isRedisUrl(value: string): boolean {
  try {
    const u = new URL(value);
    return (u.protocol === 'redis:' || u.protocol === 'rediss:') && u.hostname !== '' && dbFromPath(u.pathname) !== null;
  } catch {
    return false;
  }
}

export interface RedisTarget {
  host: string;
  port: number;
  username?: string;
  password?: string;
  db: number;
  tls: boolean;
  /** `scheme://host:port/db` without credentials: safe for logs, errors and health. */
  where: string;
}

/** Parses a URL accepted by `isRedisUrl`; `password` and `db` given separately win over the URL's. */
export function parseRedisUrl(url: string, overrides: { password?: string | undefined; db?: number | undefined } = {}): RedisTarget {
  const u = new URL(url);
  const tls = u.protocol === 'rediss:';
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = u.port ? Number(u.port) : 6379;
  const username = decodeURIComponent(u.username);
  const password = overrides.password ?? (decodeURIComponent(u.password) || undefined);
  const db = overrides.db ?? dbFromPath(u.pathname) ?? 0;
  return {
    host,
    port,
    ...(username ? { username } : {}),
    ...(password ? { password } : {}),
    db,
    tls,
    where: `${tls ? 'rediss' : 'redis'}://${u.hostname}:${port}/${db}`,
  };
}

/**
 * A target as plain client options (the shape ioredis, and BullMQ through it, takes; no client
 * import here): host, port, credentials, db, and Node TLS options with the URL's host as server
 * name, so the certificate is checked against the name the operator wrote.
 */
export type RedisSocketOptions = Pick<RedisTarget, 'host' | 'port' | 'username' | 'password' | 'db'> & { tls?: { servername: string } };

export function redisSocketOptions(t: RedisTarget): RedisSocketOptions {
  return {
    host: t.host,
    port: t.port,
    ...(t.username ? { username: t.username } : {}),
    ...(t.password ? { password: t.password } : {}),
    db: t.db,
    ...(t.tls ? { tls: { servername: t.host } } : {}),
  };
}

/** What a Redis provider's connection code reads from its config: the shared fields plus its own deadlines. */
export interface RedisConnectionConfig {
  url: string;
  password?: string | undefined;
  db?: number | undefined;
  commandTimeoutMs: number;
  connectTimeoutMs: number;
}

/** Config fields `url`, `password` and `db`, the same in every Redis provider (map them to env vars per provider). */
export function redisConnectionFields() {
  return {
    url: z
      .string()
      .refine(isRedisUrl, 'expected a redis:// or rediss:// URL')
      .default('redis://localhost:6379')
      .describe('redis://host:port[/db], or rediss:// for TLS'),
    password: z.string().optional().describe('the Redis password (AUTH)'),
    db: fields.int({ min: 0 }).optional().describe('the database number (overrides a /db in the URL)'),
  };
}

/** Back-off between reconnect attempts: 100 ms doubling to a 2 s cap, with jitter so gateways do not reconnect in lockstep. */
export function redisReconnectDelay(attempt: number): number {
  const base = Math.min(100 * 2 ** Math.min(attempt - 1, 5), 2000);
  return base + Math.floor(Math.random() * (base / 4));
}

/** Error replies that mean "try again shortly" (loading, busy, failover, out of memory) rather than "this call is wrong". */
export function isTransientRedisReply(message: string): boolean {
  return /^(LOADING|BUSY|TRYAGAIN|MASTERDOWN|CLUSTERDOWN|READONLY|NOREPLICAS|OOM)\b/.test(message);
}
