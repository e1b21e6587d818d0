import type { CapabilityName, KernelEvent } from './capabilities/common.js';
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
  /** Secret values to mask in error messages. */
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

/** Turns anything a provider threw into a ProviderError with secrets masked. */
export function toProviderError(err: unknown, meta: Pick<InstrumentMeta, 'capability' | 'provider' | 'secrets'>, operation: string): ProviderError {
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

/**
 * Wraps a provider instance so every call is timed and counted, and every failure is thrown
 * as a ProviderError and emitted as a `provider.error` event. `check` and `close` are passed
 * through: health has its own timeout and reporting.
 */
export function instrument<T extends object>(instance: T, meta: InstrumentMeta): { proxy: T; metrics: ProviderMetrics } {
  const metrics: ProviderMetrics = {};
  const wrapped = new Map<PropertyKey, unknown>();
  const guards = GUARDS[meta.capability] ?? {};

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

  const fail = (op: string, started: number, err: unknown): never => {
    if (isCallerError(err)) {
      record(op, started, true);
      throw err;
    }
    record(op, started, false);
    const pe = toProviderError(err, meta, op);
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
    throw pe;
  };

  const proxy = new Proxy(instance, {
    get(target, prop, receiver) {
      // A wrapped method is returned as first wrapped (the trap runs on every call: keep it short).
      const cached = wrapped.get(prop);
      if (cached) return cached;
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function' || typeof prop !== 'string' || prop === 'check' || prop === 'close' || prop === 'constructor') {
        return typeof value === 'function' ? value.bind(target) : value;
      }
      const guard = guards[prop];
      const fn = function instrumented(...args: unknown[]) {
        const started = performance.now();
        let result: unknown;
        if (guard) {
          try {
            guard(args);
          } catch (err) {
            // Guarded operations are async: report bad input as a rejection, like the provider would.
            return Promise.reject(err).catch((e) => fail(prop, started, e));
          }
        }
        try {
          result = value.apply(target, args);
        } catch (err) {
          return fail(prop, started, err);
        }
        if (result && typeof (result as Promise<unknown>).then === 'function') {
          return (result as Promise<unknown>).then(
            (v) => {
              record(prop, started, true);
              return v;
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
