import type { ServerResponse } from 'node:http';
import { sendJsonError } from '../proxy/respond.js';
import type { QuotaResult } from './quota.js';
import { type RateLimitResult, rateLimitHeaders } from './rate-limit.js';

/** 429 for a key over its per-minute limit, with the X-RateLimit-* headers and Retry-After. */
export function sendRateLimited(res: ServerResponse, rl: RateLimitResult): void {
  sendJsonError(
    res,
    429,
    'RATE_LIMITED',
    `rate limit of ${rl.limit} requests exceeded; retry in ${rl.retryAfterSec} s`,
    rateLimitHeaders(rl),
  );
}

/** 429 for a used-up monthly quota: says so and when it resets (Retry-After counts down to it). */
export function sendQuotaExceeded(res: ServerResponse, q: QuotaResult, rl?: RateLimitResult, now = Date.now()): void {
  sendJsonError(
    res,
    429,
    'QUOTA_EXCEEDED',
    `the monthly quota of ${q.limit} requests is used up; it resets at ${new Date(q.resetAt).toISOString()}`,
    { ...(rl ? rateLimitHeaders(rl) : {}), 'retry-after': String(Math.max(1, Math.ceil((q.resetAt - now) / 1000))) },
  );
}
