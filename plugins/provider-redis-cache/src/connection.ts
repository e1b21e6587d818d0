import { redact } from '@apigate/kernel';
import type { RedisOptions } from 'ioredis';

export interface ConnectionConfig {
  url: string;
  password?: string | undefined;
  db?: number | undefined;
  commandTimeoutMs: number;
  connectTimeoutMs: number;
  autoPipelining: boolean;
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

/** The db number in a URL path ("" or "/" means none); null when the path is not a number. */
function dbFromPath(pathname: string): number | undefined | null {
  const p = pathname.replace(/^\//, '');
  if (p === '') return undefined;
  return /^\d+$/.test(p) ? Number(p) : null;
}

/** Back-off between reconnect attempts: 100 ms doubling to a 2 s cap, with jitter so gateways do not reconnect in lockstep. */
export function reconnectDelay(attempt: number): number {
  const base = Math.min(100 * 2 ** Math.min(attempt - 1, 5), 2000);
  return base + Math.floor(Math.random() * (base / 4));
}

/**
 * ioredis options for a gateway: a request never waits on a dead connection. No offline
 * queue (calls fail at once while disconnected), in-flight calls fail when the connection
 * drops instead of being resent (a resent INCRBY would count twice), every command has a
 * deadline, and the client reconnects by itself with capped back-off.
 */
export function redisOptions(cfg: ConnectionConfig): { options: RedisOptions; where: string } {
  const u = new URL(cfg.url);
  const tls = u.protocol === 'rediss:';
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = u.port ? Number(u.port) : 6379;
  const username = decodeURIComponent(u.username);
  const password = cfg.password ?? (decodeURIComponent(u.password) || undefined);
  const db = cfg.db ?? dbFromPath(u.pathname) ?? 0;
  const options: RedisOptions = {
    host,
    port,
    ...(username ? { username } : {}),
    ...(password ? { password } : {}),
    db,
    ...(tls ? { tls: { servername: host } } : {}),
    connectionName: 'apigate-cache',
    connectTimeout: cfg.connectTimeoutMs,
    commandTimeout: cfg.commandTimeoutMs,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    retryStrategy: reconnectDelay,
    // Calls made in the same tick go out in one write: far fewer syscalls under concurrency.
    enableAutoPipelining: cfg.autoPipelining,
  };
  return { options, where: `${tls ? 'rediss' : 'redis'}://${u.hostname}:${port}/${db}` };
}

/** Server replies that mean "try again shortly" rather than "this call is wrong". */
const TRANSIENT_REPLIES = new Set(['LOADING', 'BUSY', 'TRYAGAIN', 'MASTERDOWN', 'CLUSTERDOWN', 'READONLY', 'NOREPLICAS', 'OOM']);
/** Replies that mean the credentials or the db number are wrong: configuration, not a passing fault. */
const CONFIG_REPLIES = new Set(['NOAUTH', 'WRONGPASS', 'NOPERM']);

export type ErrorKind = { kind: 'reply'; code: string; retryable: boolean; config: boolean } | { kind: 'connection' };

/** Redis answered with an error (ReplyError) or the connection failed (anything else ioredis throws). */
export function classify(err: unknown): ErrorKind {
  const e = err as { name?: unknown; message?: unknown } | null;
  if (e && (e.name === 'ReplyError' || e.name === 'ParserError') && typeof e.message === 'string') {
    const code = /^([A-Z]+)\b/.exec(e.message)?.[1] ?? 'ERR';
    const config = CONFIG_REPLIES.has(code) || /DB index is out of range/i.test(e.message);
    return { kind: 'reply', code, retryable: TRANSIENT_REPLIES.has(code), config };
  }
  return { kind: 'connection' };
}

export function messageOf(err: unknown, secrets: readonly string[]): string {
  const m = (err as { message?: unknown } | null)?.message;
  return redact(typeof m === 'string' && m ? m : String(err), secrets);
}
