import type { Health } from '@apigate/kernel';
import { clean, explain, type Failure, failureError } from './errors.js';

export interface RequestOptions {
  headers?: Record<string, string>;
  signal: AbortSignal;
  /** Names the other side in errors ("api.github.com", "the discovery document"). */
  where: string;
  timeoutMs: number;
}

export interface GetJsonOptions extends RequestOptions {
  /** Marks answers that are worth retrying although their status says otherwise (GitHub's rate-limit 403). */
  retryableAnswer?: (res: Response) => boolean;
}

/** GET with JSON accepted; a network failure or timeout throws an error that carries its `failure`. */
async function get(url: string, o: RequestOptions): Promise<Response> {
  try {
    return await fetch(url, { headers: { accept: 'application/json', ...o.headers }, signal: o.signal, redirect: 'error' });
  } catch (err) {
    throw failureError(explain(err, { where: o.where, timeoutMs: o.timeoutMs }));
  }
}

const jsonOf = (res: Response): Promise<unknown> => res.json().catch(() => undefined);

/** The `message` most JSON APIs put in an error body, if there is one. */
function bodyMessage(body: unknown): string | undefined {
  const b = (body ?? {}) as { message?: unknown; error_description?: unknown; error?: unknown };
  const m = b.message ?? b.error_description ?? b.error;
  return typeof m === 'string' ? m : undefined;
}

/** GET a JSON document. Non-2xx answers and network failures throw errors that carry their `failure`. */
export async function getJson(url: string, o: GetJsonOptions): Promise<unknown> {
  const res = await get(url, o);
  const body = await jsonOf(res);
  if (!res.ok) {
    const detail = bodyMessage(body);
    const failure: Failure = {
      message: `${o.where} answered HTTP ${res.status}${detail ? ` (${clean(detail)})` : ''}`,
      status: res.status,
      ...(o.retryableAnswer?.(res) ? { retryable: true } : {}),
    };
    throw failureError(failure);
  }
  if (body === undefined)
    throw failureError({ message: `${o.where} answered with a body that is not JSON`, status: res.status, retryable: false });
  return body;
}

export interface CheckOptions extends RequestOptions {
  /** Says what is wrong with the answer, or undefined when it shows a working service. Default: a 2xx with JSON. */
  expect?: (answer: { status: number; body: unknown }) => string | undefined;
}

/** Health by one GET: `connected` when the answer passes `expect`, `error` otherwise. Never throws; the kernel measures the latency. */
export async function checkEndpoint(url: string, o: CheckOptions): Promise<Health> {
  const health = (problem: string | undefined): Health => (problem ? { status: 'error', error: problem } : { status: 'connected' });
  try {
    const res = await get(url, o);
    const answer = { status: res.status, body: await jsonOf(res) };
    const expect =
      o.expect ??
      ((a: typeof answer) =>
        a.status >= 300 ? `${o.where} answered HTTP ${a.status}` : a.body === undefined ? `${o.where} answered without JSON` : undefined);
    return health(expect(answer));
  } catch (err) {
    return health(explain(err, o).message);
  }
}
