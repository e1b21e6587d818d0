import type { Logger } from 'pino';

/** The eight capabilities the kernel owns. Providers implement exactly one each. */
export const CAPABILITIES = ['payment', 'email', 'cache', 'storage', 'queue', 'notification', 'oauth', 'tls'] as const;
export type CapabilityName = (typeof CAPABILITIES)[number];

export function isCapabilityName(value: unknown): value is CapabilityName {
  return typeof value === 'string' && (CAPABILITIES as readonly string[]).includes(value);
}

export type HealthStatus = 'connected' | 'degraded' | 'error';

export interface Health {
  status: HealthStatus;
  /**
   * How long the check took. A provider may leave it out: the kernel's instrumentation (and the
   * health aggregation) measure the call and fill it in.
   */
  latencyMs?: number;
  detail?: string;
  /** Human-readable failure text. Never contains a secret (the kernel masks known secrets again). */
  error?: string;
}

/** A health answer with its latency measured (what the kernel's instrumentation and health aggregation return). */
export type MeasuredHealth = Health & { latencyMs: number };

export interface ProviderInstance {
  /**
   * Cheap, bounded, side-effect free. The kernel aborts the signal when the check times out.
   * Through the kernel, a check that throws is reported as an `error` health with its message
   * masked, and one without `latencyMs` gets the measured time.
   */
  check(signal: AbortSignal): Promise<Health>;
  /**
   * Releases connections, timers and workers. The kernel calls it once however often callers do,
   * and rejects every later call of the capability's methods with `PROVIDER_CLOSED`: a provider
   * needs no closed flag of its own.
   */
  close(): Promise<void>;
}

export interface ProviderErrorEvent {
  type: 'provider.error';
  capability: CapabilityName;
  provider: string;
  operation: string;
  retryable: boolean;
  code?: string;
  message: string;
  at: Date;
}

export interface ProviderCallEvent {
  type: 'provider.call';
  capability: CapabilityName;
  provider: string;
  operation: string;
  durationMs: number;
  ok: boolean;
}

export type KernelEvent = ProviderErrorEvent | ProviderCallEvent;

export interface ProviderContext {
  capability: CapabilityName;
  provider: string;
  /** pino child logger bound to { capability, provider }. */
  logger: Logger;
  /** Folder for providers that keep files (disk storage, key files). Created before `create`. */
  dataDir: string;
  emit(event: KernelEvent): void;
}
