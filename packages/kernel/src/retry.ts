const RETRYABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ENOTCONN',
  'ESOCKET',
  'ECONNECTION',
  'ETIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
  'ABORT_ERR',
]);

/** The HTTP status an SDK error carries, under the names common SDKs use. */
export function statusOf(err: unknown): number | undefined {
  const e = err as Record<string, any> | null;
  if (!e || typeof e !== 'object') return undefined;
  const candidates = [
    e.status,
    e.statusCode,
    e.responseCode,
    e.code,
    e.$metadata?.httpStatusCode,
    e.response?.status,
    e.response?.statusCode,
  ];
  return candidates.find((c): c is number => typeof c === 'number' && c >= 100 && c < 600);
}

/**
 * Whether the same call may succeed later: an explicit `retryable` flag wins; then network
 * failures and timeouts; then HTTP 408, 429 and 5xx. Everything else (bad input, bad key) is final.
 */
export function isRetryable(err: unknown): boolean {
  const e = err as Record<string, any> | null;
  if (!e || typeof e !== 'object') return false;
  if (typeof e.retryable === 'boolean') return e.retryable;
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return true;
  if (typeof e.code === 'string' && RETRYABLE_CODES.has(e.code)) return true;
  const status = statusOf(err);
  if (status !== undefined) return status === 408 || status === 429 || status >= 500;
  if (e.cause && e.cause !== err) return isRetryable(e.cause);
  return false;
}
