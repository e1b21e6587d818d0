import type { Health } from '@apigate/kernel';
import { clean, explain, type Failure, failureError } from './errors.js';

export interface GetJsonOptions {
  headers?: Record<string, string>;
  signal: AbortSignal;
  /** Names the other side in errors ("api.github.com", "the discovery document"). */
  where: string;
  timeoutMs: number;
  /** Marks answers that are worth retrying although their status says otherwise (GitHub's rate-limit 403). */
  retryableAnswer?: (res: Response) => boolean;
}

/** The `message` most JSON APIs put in an error body, if there is one. */
async function bodyMessage(res: Response): Promise<string | undefined> {
  try {
    const body = (await res.json()) as { message?: unknown; error_description?: unknown; error?: unknown };
    const m = body.message ?? body.error_description ?? body.error;
    return typeof m === 'string' ? m : undefined;
  } catch {
    return undefined;
  }
}

/** GET a JSON document. Non-2xx answers and network failures throw errors that carry their `failure`. */
export async function getJson(url: string, o: GetJsonOptions): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, { headers: { accept: 'application/json', ...o.headers }, signal: o.signal, redirect: 'error' });
  } catch (err) {
    throw failureError(explain(err, { where: o.where, timeoutMs: o.timeoutMs }));
  }
  if (!res.ok) {
    const detail = await bodyMessage(res);
    const failure: Failure = {
      message: `${o.where} answered HTTP ${res.status}${detail ? ` (${clean(detail)})` : ''}`,
      status: res.status,
      ...(o.retryableAnswer?.(res) ? { retryable: true } : {}),
    };
    throw failureError(failure);
  }
  try {
    return await res.json();
  } catch {
    throw failureError({ message: `${o.where} answered with a body that is not JSON`, status: res.status, retryable: false });
  }
}

/**
 * Health by one GET: `connected` when the document answers 200 with JSON (and, given
 * `expect`, passes it), `error` otherwise. Never throws.
 */
export async function checkEndpoint(
  url: string,
  o: Omit<GetJsonOptions, 'retryableAnswer'> & { expect?: (body: unknown) => string | undefined },
): Promise<Health> {
  const started = performance.now();
  const latencyMs = () => performance.now() - started;
  try {
    const body = await getJson(url, o);
    const problem = o.expect?.(body);
    return problem ? { status: 'error', latencyMs: latencyMs(), error: problem } : { status: 'connected', latencyMs: latencyMs() };
  } catch (err) {
    return { status: 'error', latencyMs: latencyMs(), error: explain(err, o).message };
  }
}
