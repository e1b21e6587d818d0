import type { CapabilityName, Health, KernelEvent, MeasuredHealth, ProviderInstance } from './capabilities/common.js';
import type { BulkResult } from './capabilities/email.js';
import type { CapabilityMap } from './capabilities/index.js';
import { describeError, maskErrorChain } from './error-chain.js';
import { ApigateError, InvalidInputError, ProviderError, WebhookSignatureError } from './errors.js';
import { queueGuards } from './queue-input.js';
import { isRetryable, statusOf } from './retry.js';
import { redact } from './secrets.js';
import { assertStorageKey, assertStoragePrefix } from './storage-keys.js';

export interface OperationStats {
  calls: number;
  errors: number;
  totalMs: number;
  maxMs: number;
}

export type ProviderMetrics = Record<string, OperationStats>;

export interface InstrumentMeta {
  capability: CapabilityName;
  provider: string;
  /** Secret values to mask in errors (message and cause chain), health answers and bulk results. */
  secrets: readonly string[];
  emit(event: KernelEvent): void;
  /** Emit a provider.call event per call (off by default: the counters are enough for most uses). */
  traceCalls?: boolean;
}

/** Arguments checked before a provider sees them, per capability and operation. */
const GUARDS: Partial<Record<CapabilityName, Record<string, (args: unknown[]) => void>>> = {
  storage: {
    put: (a) => assertStorageKey(a[0]),
    get: (a) => assertStorageKey(a[0]),
    head: (a) => assertStorageKey(a[0]),
    delete: (a) => assertStorageKey(a[0]),
    signedUrl: (a) => assertStorageKey(a[0]),
    list: (a) => assertStoragePrefix((a[0] as { prefix?: string } | undefined)?.prefix),
  },
  queue: queueGuards,
};

/**
 * How each capability method returns: most return a promise; `process` returns a worker at once
 * and `listSubscriptions` an async iterable. Listed for every method (the compiler checks the
 * list against the interfaces), so a call after close() fails the way the method fails.
 */
type Shape = 'async' | 'sync' | 'iterable';
type MethodKeys<T> = { [K in keyof T]-?: NonNullable<T[K]> extends (...args: never[]) => unknown ? K : never }[keyof T];
type Operations<C extends CapabilityName> = Record<Exclude<MethodKeys<CapabilityMap[C]>, keyof ProviderInstance>, Shape>;
export const CAPABILITY_OPERATIONS: { readonly [C in CapabilityName]: Readonly<Operations<C>> } = {
  payment: {
    createCustomer: 'async',
    deleteCustomer: 'async',
    upsertPrice: 'async',
    archivePrice: 'async',
    createCheckout: 'async',
    createPortalSession: 'async',
    getSubscription: 'async',
    listSubscriptions: 'iterable',
    changeSubscription: 'async',
    cancelSubscription: 'async',
    reportUsage: 'async',
    verifyWebhook: 'async',
    normalizeWebhook: 'async',
    parseWebhook: 'async',
    listInvoices: 'async',
  },
  email: { send: 'async', sendBulk: 'async' },
  cache: {
    get: 'async',
    set: 'async',
    delete: 'async',
    has: 'async',
    increment: 'async',
    getMany: 'async',
    setMany: 'async',
    clear: 'async',
    stats: 'async',
  },
  storage: { put: 'async', get: 'async', head: 'async', delete: 'async', list: 'async', signedUrl: 'async' },
  queue: {
    publish: 'async',
    publishMany: 'async',
    process: 'sync',
    failed: 'async',
    retryFailed: 'async',
    stats: 'async',
    jobStatus: 'async',
    purge: 'async',
  },
  notification: { notify: 'async' },
  oauth: { authorizationUrl: 'async', exchange: 'async' },
  tls: { obtain: 'async', revoke: 'async' },
};

const CALLER_ERROR_CODES = new Set(['INVALID_INPUT', 'WEBHOOK_SIGNATURE_INVALID', 'WEBHOOK_MODE_MISMATCH']);

/**
 * Errors that describe the caller's mistake, not the provider's failure: passed through as they
 * are. Checked by code, not class, because a plugin may bring its own copy of the kernel.
 */
function isCallerError(err: unknown): boolean {
  if (err instanceof InvalidInputError || err instanceof WebhookSignatureError) return true;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && CALLER_ERROR_CODES.has(code);
}

function isProviderError(err: unknown): err is ProviderError {
  if (err instanceof ProviderError) return true;
  const e = err as Partial<ProviderError> | null;
  return !!e && e.name === 'ProviderError' && typeof e.capability === 'string' && typeof e.retryable === 'boolean';
}

/** Turns anything a provider threw into a ProviderError; `instrument` masks it (message and cause chain). */
export function toProviderError(
  err: unknown,
  meta: Pick<InstrumentMeta, 'capability' | 'provider'> & { secrets?: readonly string[] },
  operation: string,
): ProviderError {
  if (isProviderError(err)) return err;
  const e = err as { message?: unknown; code?: unknown } | undefined;
  const raw = typeof e?.message === 'string' && e.message ? e.message : String(err);
  const status = statusOf(err);
  return new ProviderError({
    capability: meta.capability,
    provider: meta.provider,
    operation,
    retryable: isRetryable(err),
    message: redact(raw, meta.secrets),
    ...(err instanceof ApigateError ? { code: err.code } : typeof e?.code === 'string' ? { code: e.code } : {}),
    ...(status !== undefined ? { status } : {}),
    cause: err,
  });
}

/** The error every capability method rejects with once the provider is closed. */
export function providerClosedError(meta: Pick<InstrumentMeta, 'capability' | 'provider'>, operation: string): ProviderError {
  return new ProviderError({
    capability: meta.capability,
    provider: meta.provider,
    operation,
    retryable: false,
    code: 'PROVIDER_CLOSED',
    message: 'the provider is closed',
  });
}

/** A health answer with `latencyMs` filled from `started` where the check left it out, and its texts masked. */
export function measuredHealth(h: Health, started: number, secrets: readonly string[]): MeasuredHealth {
  return {
    ...h,
    latencyMs: typeof h.latencyMs === 'number' && Number.isFinite(h.latencyMs) ? h.latencyMs : performance.now() - started,
    ...(h.error ? { error: redact(h.error, secrets) } : {}),
    ...(h.detail ? { detail: redact(h.detail, secrets) } : {}),
  };
}

/** Results that carry error texts: masked like errors. */
const RESULT_MASKS: Partial<Record<CapabilityName, Record<string, (result: unknown, secrets: readonly string[]) => unknown>>> = {
  email: {
    sendBulk: (r, secrets) => {
      const bulk = r as BulkResult;
      return bulk && Array.isArray(bulk.failed)
        ? { ...bulk, failed: bulk.failed.map((f) => ({ ...f, error: redact(f.error, secrets) })) }
        : r;
    },
  },
};

/**
 * Wraps a provider instance so that, for every provider alike:
 * - every call is timed and counted (`metrics`), and optionally traced (`provider.call`);
 * - every failure is thrown as a ProviderError (caller errors pass through as they are), with
 *   the secrets masked in its message and its whole cause chain, and emitted as `provider.error`;
 * - storage keys and queue inputs are checked before the provider sees them;
 * - `close()` runs the provider's close once, however often it is called, and from its first
 *   call every capability method fails with a ProviderError `PROVIDER_CLOSED` (a rejection, or a
 *   throw for the synchronous `process`, or a failing iteration for `listSubscriptions`);
 * - `check()` never throws: a failure is an `error` health with its text masked, a closed
 *   provider is `error` "the provider is closed", and a missing `latencyMs` is measured.
 */
export function instrument<T extends object>(instance: T, meta: InstrumentMeta): { proxy: T; metrics: ProviderMetrics } {
  const metrics: ProviderMetrics = {};
  const wrapped = new Map<PropertyKey, unknown>();
  const guards = GUARDS[meta.capability] ?? {};
  const shapes = CAPABILITY_OPERATIONS[meta.capability] as Record<string, Shape>;
  const masks = RESULT_MASKS[meta.capability] ?? {};
  const target = instance as T & Partial<ProviderInstance>;
  let closing: Promise<void> | undefined;

  const record = (op: string, started: number, ok: boolean) => {
    const ms = performance.now() - started;
    const s = (metrics[op] ??= { calls: 0, errors: 0, totalMs: 0, maxMs: 0 });
    s.calls++;
    s.totalMs += ms;
    if (ms > s.maxMs) s.maxMs = ms;
    if (!ok) s.errors++;
    if (meta.traceCalls) {
      meta.emit({ type: 'provider.call', capability: meta.capability, provider: meta.provider, operation: op, durationMs: ms, ok });
    }
  };

  /** The error callers get for `err`: masked, and for a provider failure a ProviderError reported as an event. */
  const toThrown = (op: string, err: unknown): { error: unknown; failure: boolean } => {
    if (isCallerError(err)) return { error: maskErrorChain(err, meta.secrets), failure: false };
    const pe = maskErrorChain(toProviderError(err, meta, op), meta.secrets);
    meta.emit({
      type: 'provider.error',
      capability: pe.capability,
      provider: pe.provider,
      operation: op,
      retryable: pe.retryable,
      ...(pe.code ? { code: pe.code } : {}),
      message: pe.message,
      at: new Date(),
    });
    return { error: pe, failure: true };
  };

  const fail = (op: string, started: number, err: unknown): never => {
    const { error, failure } = toThrown(op, err);
    record(op, started, !failure);
    throw error;
  };

  /** An async iterable whose failures (and a call after close) are thrown like any other call's. */
  const iterate = (op: string, started: number, source: () => AsyncIterable<unknown>): AsyncIterable<unknown> => ({
    async *[Symbol.asyncIterator]() {
      let it: AsyncIterator<unknown>;
      try {
        it = source()[Symbol.asyncIterator]();
      } catch (err) {
        return fail(op, started, err);
      }
      for (;;) {
        let step: IteratorResult<unknown>;
        try {
          step = await it.next();
        } catch (err) {
          const { error } = toThrown(op, err);
          (metrics[op] ??= { calls: 0, errors: 0, totalMs: 0, maxMs: 0 }).errors++;
          throw error;
        }
        if (step.done) return;
        yield step.value;
      }
    },
  });

  const closedCall = (op: string, started: number): unknown => {
    const shape = shapes[op];
    if (shape === 'sync') return fail(op, started, providerClosedError(meta, op));
    if (shape === 'iterable') {
      return iterate(op, started, () => {
        throw providerClosedError(meta, op);
      });
    }
    return Promise.reject(providerClosedError(meta, op)).catch((e) => fail(op, started, e));
  };

  const check = async (signal: AbortSignal): Promise<MeasuredHealth> => {
    const started = performance.now();
    if (closing) return { status: 'error', latencyMs: 0, error: 'the provider is closed' };
    try {
      return measuredHealth(await (target.check as ProviderInstance['check']).call(instance, signal), started, meta.secrets);
    } catch (err) {
      return { status: 'error', latencyMs: performance.now() - started, error: describeError(err, meta.secrets) };
    }
  };

  const close = (): Promise<void> => {
    closing ??= (async () => {
      try {
        await target.close?.call(instance);
      } catch (err) {
        throw toThrown('close', err).error;
      }
    })();
    return closing;
  };

  const proxy = new Proxy(instance, {
    get(obj, prop, receiver) {
      // A wrapped method is returned as first wrapped (the trap runs on every call: keep it short).
      const cached = wrapped.get(prop);
      if (cached) return cached;
      const value = Reflect.get(obj, prop, receiver);
      if (typeof value !== 'function' || typeof prop !== 'string' || prop === 'constructor') {
        return typeof value === 'function' ? value.bind(obj) : value;
      }
      if (prop === 'check' || prop === 'close') {
        const fn = prop === 'check' ? check : close;
        wrapped.set(prop, fn);
        return fn;
      }
      const guard = guards[prop];
      const shape = shapes[prop];
      const mask = masks[prop];
      const fn = function instrumented(...args: unknown[]) {
        const started = performance.now();
        if (closing && shape) return closedCall(prop, started);
        let result: unknown;
        if (guard) {
          try {
            guard(args);
          } catch (err) {
            // Guarded operations are async: report bad input as a rejection, like the provider would.
            return Promise.reject(err).catch((e) => fail(prop, started, e));
          }
        }
        if (shape === 'iterable') {
          record(prop, started, true);
          return iterate(prop, started, () => value.apply(obj, args) as AsyncIterable<unknown>);
        }
        try {
          result = value.apply(obj, args);
        } catch (err) {
          return fail(prop, started, err);
        }
        if (result && typeof (result as Promise<unknown>).then === 'function') {
          return (result as Promise<unknown>).then(
            (v) => {
              record(prop, started, true);
              return mask ? mask(v, meta.secrets) : v;
            },
            (err) => fail(prop, started, err),
          );
        }
        record(prop, started, true);
        return result;
      };
      wrapped.set(prop, fn);
      return fn;
    },
  });
  return { proxy, metrics };
}
