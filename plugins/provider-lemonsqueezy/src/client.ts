import { type ProviderError, toProviderError } from '@apigate/kernel';
import { Agent, request } from 'undici';

/** One JSON:API resource object as LemonSqueezy sends it. */
export interface Resource<A = Record<string, any>> {
  type: string;
  id: string;
  attributes: A;
}

/** A JSON:API document: one resource or a page of them. */
export interface Doc<A = Record<string, any>> {
  data: Resource<A> | Resource<A>[] | null;
  meta?: { page?: { currentPage: number; lastPage: number } };
}

interface JsonApiError {
  status?: string;
  title?: string;
  detail?: string;
  source?: { pointer?: string; parameter?: string };
}

export interface ClientOptions {
  apiKey: string;
  baseUrl: string;
  timeoutMs: number;
  /** Extra values masked in error messages (the kernel's instrumentation already masks the provider's secrets). */
  secrets?: readonly string[];
}

const MEDIA = 'application/vnd.api+json';
export const PAGE_SIZE = 100;

/**
 * The LemonSqueezy REST API (JSON:API) over undici. The official SDK cannot be used: its base
 * URL is a constant (https://api.lemonsqueezy.com) and its API key a module-wide singleton, so it
 * can neither reach a proxy or a test server nor serve two stores in one process.
 */
export class LemonClient {
  /** One keep-alive pool per instance, so close() releases exactly its sockets. */
  private readonly agent: Agent;
  readonly host: string;

  constructor(private readonly o: ClientOptions) {
    this.agent = new Agent({ connect: { timeout: o.timeoutMs }, headersTimeout: o.timeoutMs, bodyTimeout: o.timeoutMs });
    this.host = new URL(o.baseUrl).host;
  }

  async call<A = Record<string, any>>(
    operation: string,
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    path: string,
    opts: { query?: Record<string, string>; body?: unknown; signal?: AbortSignal } = {},
  ): Promise<Doc<A>> {
    const url = new URL(`${this.o.baseUrl}${path}`);
    for (const [k, v] of Object.entries(opts.query ?? {})) url.searchParams.set(k, v);
    const timeout = AbortSignal.timeout(this.o.timeoutMs);
    let status: number;
    let text: string;
    try {
      const res = await request(url, {
        method,
        dispatcher: this.agent,
        signal: opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout,
        headers: {
          accept: MEDIA,
          authorization: `Bearer ${this.o.apiKey}`,
          ...(opts.body !== undefined ? { 'content-type': MEDIA } : {}),
        },
        ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
      });
      status = res.statusCode;
      text = await res.body.text();
    } catch (err) {
      throw this.unreachable(err, operation);
    }
    let doc: unknown;
    try {
      doc = text ? JSON.parse(text) : {};
    } catch {
      throw this.fail(
        operation,
        `LemonSqueezy at ${this.host} answered ${status} with something that is not JSON (an outage or proxy page?)`,
        {
          status,
          retryable: status >= 500 || status === 408 || status === 429 || status < 300,
        },
      );
    }
    if (status >= 200 && status < 300) return doc as Doc<A>;
    throw this.fail(operation, describe(status, doc), { status });
  }

  /** Every page of a list (page[size] 100, LemonSqueezy's largest). */
  async *pages<A = Record<string, any>>(operation: string, path: string, query: Record<string, string> = {}): AsyncIterable<Resource<A>> {
    for (let page = 1; ; page++) {
      const doc = await this.call<A>(operation, 'GET', path, {
        query: { ...query, 'page[number]': String(page), 'page[size]': String(PAGE_SIZE) },
      });
      yield* (doc.data as Resource<A>[] | null) ?? [];
      const p = doc.meta?.page;
      if (!p || p.currentPage >= p.lastPage) return;
    }
  }

  /** A ProviderError for this provider; `retryable` follows the kernel's rule from `status` unless given. */
  fail(operation: string, message: string, facts: { status?: number; retryable?: boolean; code?: string } = {}): ProviderError {
    return toProviderError(
      Object.assign(new Error(message), facts),
      { capability: 'payment', provider: 'lemonsqueezy', secrets: this.o.secrets ?? [] },
      operation,
    );
  }

  /** No answer: refused, reset, timed out or aborted. All retryable. undici puts the socket's reason in `code`. */
  private unreachable(err: unknown, operation: string): ProviderError {
    const e = err as { name?: string; code?: string; message?: string };
    if (e?.name === 'TimeoutError') {
      return this.fail(operation, `no answer from LemonSqueezy at ${this.host} within ${this.o.timeoutMs} ms`, {
        retryable: true,
        code: 'ETIMEDOUT',
      });
    }
    const why = e?.name === 'AbortError' ? 'aborted' : (e?.code ?? e?.message ?? String(err));
    return this.fail(operation, `could not reach LemonSqueezy at ${this.host}: ${why}`, {
      retryable: true,
      ...(e?.code ? { code: e.code } : {}),
    });
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

/** LemonSqueezy's JSON:API errors in one line: status, then each error's title, detail and field. */
function describe(status: number, doc: unknown): string {
  const errors = ((doc as { errors?: JsonApiError[] })?.errors ?? []).map((e) => {
    const where = e.source?.pointer ?? e.source?.parameter;
    return [e.title, e.detail].filter(Boolean).join(': ') + (where ? ` (${where})` : '');
  });
  let text = `LemonSqueezy answered ${status}`;
  if (errors.length) text += `: ${errors.join('; ')}`;
  if (status === 401) text += '; check LEMON_API_KEY (test-mode and live-mode keys are separate)';
  return text;
}

/** The single resource of a document. */
export function one<A>(doc: Doc<A>): Resource<A> {
  return doc.data as Resource<A>;
}
