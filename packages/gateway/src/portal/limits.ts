import type { CacheProvider, Logger } from '@apigate/kernel';
import { sha256Hex } from '../domain/ids.js';
import { CacheCircuit, CacheUnavailableError } from '../limits/circuit.js';
import { RateLimiter } from '../limits/rate-limit.js';

export interface AttemptRule {
  /** Attempts allowed per window. */
  limit: number;
  windowMs: number;
}

/** What the portal counts, and per what. */
export interface PortalLimits {
  /** Log in attempts per email address (right or wrong): slows guessing one account's password. */
  loginPerEmail: AttemptRule;
  /** Log in attempts per client address: slows trying many accounts from one place. */
  loginPerIp: AttemptRule;
  /** Emails asked for per address (sign up, verification resend, password reset): no inbox flooding. */
  emailPerAddress: AttemptRule;
  /** Sign ups, resends and reset requests per client address. */
  emailPerIp: AttemptRule;
  /** Token uses (verify, reset confirm) per client address. */
  tokenPerIp: AttemptRule;
}

const MINUTE = 60_000;
export const DEFAULT_PORTAL_LIMITS: PortalLimits = {
  loginPerEmail: { limit: 10, windowMs: 15 * MINUTE },
  loginPerIp: { limit: 100, windowMs: 15 * MINUTE },
  emailPerAddress: { limit: 5, windowMs: 60 * MINUTE },
  emailPerIp: { limit: 30, windowMs: 60 * MINUTE },
  tokenPerIp: { limit: 30, windowMs: 15 * MINUTE },
};

export type LimitName = keyof PortalLimits;

/** The cache capability is off (`CACHE_PROVIDER=none`): every call fails, so each limiter counts in process. */
class NoCache extends CacheCircuit {
  constructor() {
    super(undefined as unknown as CacheProvider);
  }
  override async call<T>(): Promise<T> {
    throw new CacheUnavailableError('no cache provider selected');
  }
}

/**
 * Fixed-window attempt counters over the cache capability (the hot path's RateLimiter, one
 * atomic increment per check, keys under `portal:<rule>:`). Shared between instances through a
 * shared cache; counted per instance while the cache fails or when there is none. Email
 * addresses are hashed in the keys, so the cache holds no addresses.
 */
export class AttemptLimiter {
  readonly #limiters = new Map<LimitName, RateLimiter>();

  constructor(
    readonly rules: PortalLimits,
    cache: CacheProvider | undefined,
    opts: { now?: () => number; logger?: Logger } = {},
  ) {
    const circuit = cache
      ? new CacheCircuit(cache, { ...(opts.now ? { now: opts.now } : {}), ...(opts.logger ? { logger: opts.logger } : {}) })
      : new NoCache();
    for (const name of Object.keys(rules) as LimitName[]) {
      this.#limiters.set(
        name,
        new RateLimiter(circuit, { prefix: `portal:${name}:`, windowMs: rules[name].windowMs, ...(opts.now ? { now: opts.now } : {}) }),
      );
    }
  }

  /**
   * Counts one attempt against each `[rule, subject]` pair; resolves the seconds to wait when
   * any of them is over its limit, else undefined. Every pair is counted, refused or not.
   */
  async hit(checks: readonly (readonly [LimitName, string])[]): Promise<number | undefined> {
    const results = await Promise.all(
      checks.map(([name, subject]) => this.#limiters.get(name)!.hit(subjectKey(subject), this.rules[name].limit)),
    );
    const refused = results.filter((r) => !r.allowed);
    return refused.length ? Math.max(...refused.map((r) => r.retryAfterSec)) : undefined;
  }
}

/** Emails are hashed (no addresses in the cache); addresses and other subjects are used as they are. */
const subjectKey = (subject: string) => (subject.includes('@') ? `e:${sha256Hex(subject).slice(0, 32)}` : subject);
