import type { CacheProvider, ChallengeStore } from '@apigate/kernel';
import { Hono } from 'hono';
import { type RunningServer, startServer } from '../http/server.js';

/** Where HTTP-01 answers are served; the CA fetches http://<domain>/.well-known/acme-challenge/<token>. */
export const CHALLENGE_PATH = '/.well-known/acme-challenge/:token';
const KEY_PREFIX = 'tls:acme-challenge:';
/** Long enough for a slow CA to validate; an order that outlives it fails and is retried. */
export const CHALLENGE_TTL_MS = 10 * 60_000;
// RFC 8555 tokens are base64url; anything else is not ours to look up.
const TOKEN = /^[A-Za-z0-9_-]{1,256}$/;

/**
 * HTTP-01 answers kept in the cache capability, so with a shared cache (Redis) any instance
 * behind the load balancer answers the CA, not only the one running the order.
 */
export class CacheChallengeStore implements ChallengeStore {
  constructor(
    private readonly cache: CacheProvider,
    private readonly ttlMs = CHALLENGE_TTL_MS,
  ) {}

  async set(token: string, keyAuthorization: string): Promise<void> {
    await this.cache.set(KEY_PREFIX + token, keyAuthorization, { ttlMs: this.ttlMs });
  }

  async delete(token: string): Promise<void> {
    await this.cache.delete(KEY_PREFIX + token);
  }

  /** The key authorization for `token`, or undefined when none is pending. */
  async get(token: string): Promise<string | undefined> {
    if (!TOKEN.test(token)) return undefined;
    const v = await this.cache.get(KEY_PREFIX + token);
    return v === undefined ? undefined : Buffer.from(v).toString('utf8');
  }
}

/** `GET /.well-known/acme-challenge/:token`: the key authorization as text/plain, or 404. */
export function addChallengeRoute(app: Hono, cache: CacheProvider | undefined): void {
  const store = cache ? new CacheChallengeStore(cache) : undefined;
  app.get(CHALLENGE_PATH, async (c) => {
    const answer = await store?.get(c.req.param('token'));
    c.header('Cache-Control', 'no-store');
    if (answer === undefined) return c.text('no pending ACME challenge for this token', 404);
    return c.text(answer, 200);
  });
}

/** A listener that only answers ACME challenges (for `apigate certs obtain` when no server is running). */
export function startChallengeServer(opts: { cache: CacheProvider; port: number; host?: string }): Promise<RunningServer> {
  const app = new Hono();
  addChallengeRoute(app, opts.cache);
  return startServer({ app, port: opts.port, ...(opts.host ? { host: opts.host } : {}) });
}
