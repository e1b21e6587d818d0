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
  latencyMs: number;
  detail?: string;
  /** Human-readable failure text. Never contains a secret (the kernel masks known secrets again). */
  error?: string;
}

export interface ProviderInstance {
  /** Cheap, bounded, side-effect free. The kernel aborts the signal when the check times out. */
  check(signal: AbortSignal): Promise<Health>;
  /** Idempotent. Releases connections, timers and workers. */
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
