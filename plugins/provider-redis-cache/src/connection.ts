import { isTransientRedisReply, parseRedisUrl, type RedisConnectionConfig, redisReconnectDelay, redisSocketOptions } from '@apigate/kernel';
import type { RedisOptions } from 'ioredis';

export interface ConnectionConfig extends RedisConnectionConfig {
  autoPipelining: boolean;
}

/**
 * ioredis options for a gateway: a request never waits on a dead connection. No offline
 * queue (calls fail at once while disconnected), in-flight calls fail when the connection
 * drops instead of being resent (a resent INCRBY would count twice), every command has a
 * deadline, and the client reconnects by itself with capped back-off.
 */
export function redisOptions(cfg: ConnectionConfig): { options: RedisOptions; where: string } {
  const target = parseRedisUrl(cfg.url, cfg);
  const options: RedisOptions = {
    ...redisSocketOptions(target),
    connectionName: 'apigate-cache',
    connectTimeout: cfg.connectTimeoutMs,
    commandTimeout: cfg.commandTimeoutMs,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    retryStrategy: redisReconnectDelay,
    // Calls made in the same tick go out in one write: far fewer syscalls under concurrency.
    enableAutoPipelining: cfg.autoPipelining,
  };
  return { options, where: target.where };
}

/** Replies that mean the credentials or the db number are wrong: configuration, not a passing fault. */
const CONFIG_REPLIES = new Set(['NOAUTH', 'WRONGPASS', 'NOPERM']);

export type ErrorKind = { kind: 'reply'; code: string; retryable: boolean; config: boolean } | { kind: 'connection' };

/** Redis answered with an error (ReplyError) or the connection failed (anything else ioredis throws). */
export function classify(err: unknown): ErrorKind {
  const e = err as { name?: unknown; message?: unknown } | null;
  if (e && (e.name === 'ReplyError' || e.name === 'ParserError') && typeof e.message === 'string') {
    const code = /^([A-Z]+)\b/.exec(e.message)?.[1] ?? 'ERR';
    const config = CONFIG_REPLIES.has(code) || /DB index is out of range/i.test(e.message);
    return { kind: 'reply', code, retryable: isTransientRedisReply(e.message), config };
  }
  return { kind: 'connection' };
}

/**
 * What ioredis said, as it said it. Not masked here: the kernel masks it wherever it goes out (the
 * provider's logger, the errors and health answers its instrument passes on); the start-up error,
 * thrown before the instrument, is masked where it is made (`RedisCache.connect`).
 */
export function messageOf(err: unknown): string {
  const m = (err as { message?: unknown } | null)?.message;
  return typeof m === 'string' && m ? m : String(err);
}
