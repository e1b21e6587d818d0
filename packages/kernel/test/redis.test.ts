import { describe, expect, it } from 'vitest';
import {
  isRedisUrl,
  isTransientRedisReply,
  parseRedisUrl,
  redisConnectionFields,
  redisReconnectDelay,
  redisSocketOptions,
  z,
} from '../src/index.js';

describe('Redis helpers', () => {
  it('accepts redis:// and rediss:// URLs with an optional numeric db', () => {
    for (const ok of ['redis://localhost:6379', 'rediss://u:p@cache.example:6380/2', 'redis://[::1]:6379/'])
      expect(isRedisUrl(ok), ok).toBe(true);
    for (const bad of ['http://localhost', 'redis://', 'redis://h/db', 'localhost:6379']) expect(isRedisUrl(bad), bad).toBe(false);
  });

  it('parses host, port, credentials, db and TLS, and names the target without credentials', () => {
    expect(parseRedisUrl('rediss://user:p%40ss@cache.example:6380/2')).toEqual({
      host: 'cache.example',
      port: 6380,
      username: 'user',
      password: 'p@ss',
      db: 2,
      tls: true,
      where: 'rediss://cache.example:6380/2',
    });
    expect(parseRedisUrl('redis://[::1]')).toMatchObject({ host: '::1', port: 6379, db: 0, where: 'redis://[::1]:6379/0' });
    expect(parseRedisUrl('redis://:url-pw@h/1', { password: 'field-pw', db: 4 })).toMatchObject({ password: 'field-pw', db: 4 });
  });

  it('turns a target into client socket options: TLS names the URL host, absent credentials are left out', () => {
    expect(redisSocketOptions(parseRedisUrl('rediss://user:pw@cache.example:6380/2'))).toEqual({
      host: 'cache.example',
      port: 6380,
      username: 'user',
      password: 'pw',
      db: 2,
      tls: { servername: 'cache.example' },
    });
    expect(redisSocketOptions(parseRedisUrl('redis://127.0.0.1'))).toEqual({ host: '127.0.0.1', port: 6379, db: 0 });
  });

  it('gives the same url, password and db fields to every Redis provider', () => {
    const schema = z.object(redisConnectionFields());
    expect(schema.parse({})).toEqual({ url: 'redis://localhost:6379' });
    expect(schema.parse({ url: 'redis://h:1', db: '3' })).toEqual({ url: 'redis://h:1', db: 3 });
    expect(schema.safeParse({ url: 'http://h' }).success).toBe(false);
  });

  it('backs off reconnects up to about 2 s and tells passing replies from final ones', () => {
    expect(redisReconnectDelay(1)).toBeGreaterThanOrEqual(100);
    expect(redisReconnectDelay(50)).toBeLessThanOrEqual(2500);
    expect(isTransientRedisReply('LOADING Redis is loading the dataset in memory')).toBe(true);
    expect(isTransientRedisReply("OOM command not allowed when used memory > 'maxmemory'")).toBe(true);
    expect(isTransientRedisReply('WRONGTYPE Operation against a key holding the wrong kind of value')).toBe(false);
  });
});
