import type { ServerResponse } from 'node:http';

/** The JSON body of every error answer (the hot path's, the app's 404/500, the admin and portal APIs'). */
export interface ErrorBody {
  error: { code: string; message: string };
}

/**
 * Answers with the gateway's JSON error body straight on the Node response (the hot path
 * bypasses hono's Response objects). Does nothing when headers are already out: the
 * caller then has only the connection left to cut.
 */
export function sendJsonError(
  res: ServerResponse,
  status: number,
  code: string,
  message: string,
  headers?: Record<string, string | number>,
): void {
  if (res.headersSent || res.destroyed) return;
  const body = JSON.stringify({ error: { code, message } } satisfies ErrorBody);
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(body);
}
