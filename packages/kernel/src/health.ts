import type { CapabilityName, MeasuredHealth, ProviderInstance } from './capabilities/common.js';
import { CAPABILITIES } from './capabilities/common.js';
import { describeError } from './error-chain.js';
import { measuredHealth } from './instrument.js';

export type CapabilityHealthStatus = 'connected' | 'degraded' | 'error' | 'disabled';

/** One capability in `/admin/health` (snake_case: this is the HTTP shape of the spec). */
export interface CapabilityHealth {
  provider: string | null;
  status: CapabilityHealthStatus;
  latency_ms?: number;
  detail?: string;
  error?: string;
  /** For capabilities with several providers (oauth): each one's own health. */
  instances?: Record<string, CapabilityHealth>;
}

export interface HealthReport {
  status: 'healthy' | 'degraded' | 'unhealthy';
  providers: Record<CapabilityName, CapabilityHealth>;
}

export interface HealthTarget {
  capability: CapabilityName;
  provider: string;
  instance: ProviderInstance;
  secrets: readonly string[];
}

/**
 * Runs one check with a deadline; a check that throws or times out is an `error`, never a crash.
 * The latency is measured where the check leaves it out, and the texts are masked.
 */
export async function checkOne(target: HealthTarget, timeoutMs: number): Promise<MeasuredHealth> {
  const controller = new AbortController();
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<MeasuredHealth>((resolve) => {
    timer = setTimeout(() => {
      controller.abort(new Error(`health check timed out after ${timeoutMs} ms`));
      resolve({ status: 'error', latencyMs: timeoutMs, error: `health check timed out after ${timeoutMs} ms` });
    }, timeoutMs);
  });
  try {
    const h = await Promise.race([
      target.instance.check(controller.signal).then(
        (h) => measuredHealth(h, started, target.secrets),
        (err: unknown): MeasuredHealth => ({
          status: 'error',
          latencyMs: performance.now() - started,
          error: describeError(err, target.secrets),
        }),
      ),
      timeout,
    ]);
    return h;
  } finally {
    clearTimeout(timer);
  }
}

function toCapabilityHealth(provider: string, h: MeasuredHealth): CapabilityHealth {
  return {
    provider,
    status: h.status,
    latency_ms: Math.round(h.latencyMs * 100) / 100,
    ...(h.detail ? { detail: h.detail } : {}),
    ...(h.error ? { error: h.error } : {}),
  };
}

const RANK: Record<CapabilityHealthStatus, number> = { disabled: 0, connected: 0, degraded: 1, error: 2 };

/** Checks every target in parallel, each with its own deadline, and folds them into the spec's shape. */
export async function aggregateHealth(
  targets: readonly HealthTarget[],
  opts: { timeoutMs: number; only?: readonly CapabilityName[] },
): Promise<HealthReport> {
  const wanted = opts.only?.length ? opts.only : CAPABILITIES;
  const results = await Promise.all(
    targets.filter((t) => wanted.includes(t.capability)).map(async (t) => ({ t, h: await checkOne(t, opts.timeoutMs) })),
  );
  const providers = {} as Record<CapabilityName, CapabilityHealth>;
  for (const cap of wanted) {
    const mine = results.filter((r) => r.t.capability === cap);
    if (mine.length === 0) providers[cap] = { provider: null, status: 'disabled' };
    else if (mine.length === 1) providers[cap] = toCapabilityHealth(mine[0]!.t.provider, mine[0]!.h);
    else {
      const instances: Record<string, CapabilityHealth> = {};
      for (const r of mine) instances[r.t.provider] = toCapabilityHealth(r.t.provider, r.h);
      const worst = Object.values(instances).reduce((a, b) => (RANK[b.status] > RANK[a.status] ? b : a));
      providers[cap] = {
        provider: mine.map((r) => r.t.provider).join(','),
        status: worst.status,
        latency_ms: Math.max(...Object.values(instances).map((i) => i.latency_ms ?? 0)),
        ...(worst.error ? { error: `${worst.provider}: ${worst.error}` } : {}),
        instances,
      };
    }
  }
  const worst = Math.max(0, ...Object.values(providers).map((p) => RANK[p.status]));
  return { status: worst === 2 ? 'unhealthy' : worst === 1 ? 'degraded' : 'healthy', providers };
}
