import type { CapabilityName } from './capabilities/common.js';

/** Base of every error the kernel defines; `code` is stable for scripts and tests. */
export class ApigateError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A provider call failed. Thrown (never returned) by every instrumented call. */
export class ProviderError extends ApigateError {
  readonly capability: CapabilityName;
  readonly provider: string;
  readonly operation: string;
  /** True when the same call may succeed later (network, 408, 429, 5xx). */
  readonly retryable: boolean;
  /** HTTP status of the backend's answer, where there was one. */
  readonly status?: number;

  constructor(i: {
    capability: CapabilityName;
    provider: string;
    operation: string;
    retryable: boolean;
    message: string;
    code?: string;
    status?: number;
    cause?: unknown;
  }) {
    super(i.code ?? 'PROVIDER_ERROR', `${i.capability}/${i.provider} ${i.operation}: ${i.message}`, { cause: i.cause });
    this.capability = i.capability;
    this.provider = i.provider;
    this.operation = i.operation;
    this.retryable = i.retryable;
    if (i.status !== undefined) this.status = i.status;
  }
}

/**
 * A configuration value is missing or wrong. The message names the field, the env var and
 * the settings key, and what is expected; it never echoes the value.
 */
export class ConfigError extends ApigateError {
  readonly field: string;
  readonly envVar?: string;
  readonly settingKey: string;
  readonly expected: string;
  constructor(i: { field: string; envVar?: string; settingKey: string; expected: string }) {
    const where = i.envVar ? `${i.envVar} (setting ${i.settingKey})` : `setting ${i.settingKey}`;
    super('CONFIG_INVALID', `${where}: ${i.expected}`);
    this.field = i.field;
    if (i.envVar) this.envVar = i.envVar;
    this.settingKey = i.settingKey;
    this.expected = i.expected;
  }
}

/** Several configuration problems found at once; start-up reports all of them. */
export class ConfigErrors extends ApigateError {
  readonly errors: ApigateError[];
  constructor(errors: ApigateError[]) {
    super('CONFIG_INVALID', errors.map((e) => e.message).join('\n'));
    this.errors = errors;
  }
}

/** The webhook's signature, timestamp or body did not verify. Answer 400; do not retry. */
export class WebhookSignatureError extends ApigateError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('WEBHOOK_SIGNATURE_INVALID', message, options);
  }
}

/**
 * A correctly signed webhook from the other mode: a test-mode event reaching a live-mode
 * configuration or the reverse (Stripe `livemode`, LemonSqueezy `meta.test_mode`). Answer 400 and
 * log it: applying it would grant a paid plan for a test payment.
 */
export class WebhookModeMismatchError extends ApigateError {
  constructor(message: string) {
    super('WEBHOOK_MODE_MISMATCH', message);
  }
}

/** The caller passed something the contract forbids (a bad storage key, say). Not a provider failure. */
export class InvalidInputError extends ApigateError {
  constructor(message: string) {
    super('INVALID_INPUT', message);
  }
}

/**
 * Thrown by a job handler to fail the job at once: its remaining attempts are not used and it
 * goes straight to the failed set (a bad address or a rejected key will not improve with time).
 * Queue providers recognise it with `isNonRetryableJobError`, by code, so a handler built
 * against another copy of the kernel is understood the same.
 */
export class NonRetryableJobError extends ApigateError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('JOB_NON_RETRYABLE', message, options);
  }
}

export function isNonRetryableJobError(err: unknown): boolean {
  return err instanceof NonRetryableJobError || (err as { code?: unknown } | null)?.code === 'JOB_NON_RETRYABLE';
}

export type PluginProblemKind =
  | 'not-installed'
  | 'bad-manifest'
  | 'incompatible-kernel-api'
  | 'import-failed'
  | 'bad-export'
  | 'duplicate'
  | 'unknown-provider';

/** A provider package could not be used. Names the package; keeps the cause. */
export class PluginError extends ApigateError {
  readonly kind: PluginProblemKind;
  readonly packageName: string;
  constructor(kind: PluginProblemKind, packageName: string, message: string, options?: { cause?: unknown }) {
    super(`PLUGIN_${kind.toUpperCase().replaceAll('-', '_')}`, message, options);
    this.kind = kind;
    this.packageName = packageName;
  }
}

// describeError (the whole cause chain, masked) lives in error-chain.ts.
