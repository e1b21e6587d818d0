import { createSecureContext, type SecureContext } from 'node:tls';
import { type CacheProvider, describeError, type Logger, type TlsProvider } from '@apigate/kernel';
import type { Store } from '../store/store.js';
import { CacheChallengeStore } from './challenges.js';
import { CertificateStore, domainsKey, type StoredCertificate } from './certificates.js';

/** Renew a certificate this long before it expires. */
export const RENEW_BEFORE_MS = 30 * 86_400_000;
/** How often `startRenewals` looks for certificates that are due. */
export const RENEW_CHECK_INTERVAL_MS = 12 * 3_600_000;

export interface CertificateManagerOptions {
  store: Store;
  tls: TlsProvider;
  /** Holds HTTP-01 answers; shared (Redis) when several instances sit behind a load balancer. */
  cache: CacheProvider;
  logger: Logger;
  /** Clock for expiry decisions (tests move it); default the system clock. */
  now?: () => Date;
  renewBeforeMs?: number;
}

/**
 * Obtains certificates through the TLS provider (answering its HTTP-01 challenges from the
 * cache, served at /.well-known/acme-challenge/:token), stores them encrypted, renews them
 * before expiry and hands the HTTPS listener a secure context per server name.
 */
/** How stale the handshake snapshot may get: certificates stored by another process show up within this. */
const SNAPSHOT_TTL_MS = 60_000;

export class CertificateManager {
  readonly certificates: CertificateStore;
  private readonly challenges: CacheChallengeStore;
  private readonly now: () => Date;
  private readonly renewBeforeMs: number;
  private contexts = new Map<string, { serial: string; ctx: SecureContext }>();
  /** Decrypted certificates for handshakes, re-read at most every SNAPSHOT_TTL_MS (others may store new ones). */
  private snapshot: { readAt: number; certs: StoredCertificate[] } | undefined;

  constructor(private readonly opts: CertificateManagerOptions) {
    this.now = opts.now ?? (() => new Date());
    this.certificates = new CertificateStore(opts.store, this.now);
    this.challenges = new CacheChallengeStore(opts.cache);
    this.renewBeforeMs = opts.renewBeforeMs ?? RENEW_BEFORE_MS;
  }

  /** Orders a certificate for `domains` now (reusing the stored account key) and stores it. */
  async obtain(domains: string[], progress: (line: string) => void = () => {}): Promise<StoredCertificate> {
    const key = domainsKey(domains);
    const names = key.split(',');
    progress(`ordering a certificate for ${names.join(', ')} (HTTP-01 answers at /.well-known/acme-challenge/)`);
    const accountKeyPem = this.certificates.accountKey();
    const got = await this.opts.tls.obtain({ domains: names, challenges: this.challenges, ...(accountKeyPem ? { accountKeyPem } : {}) });
    if (got.accountKeyPem !== accountKeyPem) this.certificates.saveAccountKey(got.accountKeyPem);
    const saved = this.certificates.save(got.certificate);
    this.snapshot = undefined;
    progress(`stored certificate ${saved.serialNumber} for ${names.join(', ')}, valid until ${saved.notAfter.toISOString()}`);
    this.opts.logger.info({ domains: names, serial: saved.serialNumber, notAfter: saved.notAfter.toISOString() }, `obtained a certificate for ${key}`);
    return saved;
  }

  /** Whether `c` expires within the renewal window. */
  isDue(c: StoredCertificate): boolean {
    return c.notAfter.getTime() - this.now().getTime() <= this.renewBeforeMs;
  }

  /**
   * Obtains each wanted set of names that has no stored certificate and renews every stored
   * certificate that is due. A failure is logged and the rest go on; returns what was obtained.
   */
  async ensure(wanted: string[][] = [], progress?: (line: string) => void): Promise<{ obtained: StoredCertificate[]; failed: string[] }> {
    const stored = new Map(this.certificates.all().map((c) => [c.domainsKey, c]));
    const todo = new Map<string, string[]>();
    for (const w of wanted) {
      const k = domainsKey(w);
      if (!stored.has(k)) todo.set(k, k.split(','));
    }
    for (const c of stored.values()) if (this.isDue(c)) todo.set(c.domainsKey, c.domainsKey.split(','));
    const obtained: StoredCertificate[] = [];
    const failed: string[] = [];
    for (const [k, names] of todo) {
      try {
        obtained.push(await this.obtain(names, progress));
      } catch (err) {
        failed.push(k);
        this.opts.logger.error({ domains: names }, `cannot obtain a certificate for ${k}: ${describeError(err)}`);
      }
    }
    return { obtained, failed };
  }

  /** Runs `ensure(wanted)` every `intervalMs` (the timer does not keep the process alive). */
  startRenewals(wanted: string[][], intervalMs = RENEW_CHECK_INTERVAL_MS): { stop(): Promise<void> } {
    let running: Promise<unknown> = Promise.resolve();
    const timer = setInterval(() => {
      running = running.then(() => this.ensure(wanted)).catch(() => undefined);
    }, intervalMs);
    timer.unref();
    return {
      stop: async () => {
        clearInterval(timer);
        await running;
      },
    };
  }

  /**
   * The stored certificate for `servername` (exact name first, then a `*.` wildcard one
   * level up) as a secure context; contexts are rebuilt only when the serial changes.
   */
  secureContext(servername: string): SecureContext | undefined {
    const name = servername.toLowerCase();
    const wildcard = `*.${name.split('.').slice(1).join('.')}`;
    const all = this.storedForHandshakes();
    const cert = all.find((c) => c.domains.includes(name)) ?? all.find((c) => c.domains.includes(wildcard));
    if (!cert) return undefined;
    const cached = this.contexts.get(cert.domainsKey);
    if (cached?.serial === cert.serialNumber) return cached.ctx;
    const ctx = createSecureContext({ cert: `${cert.certPem.trim()}\n${cert.chainPem}`, key: cert.keyPem });
    this.contexts.set(cert.domainsKey, { serial: cert.serialNumber, ctx });
    return ctx;
  }

  /** Handshakes must not read and decrypt every row each time: a snapshot, refreshed on save and by age. */
  private storedForHandshakes(): StoredCertificate[] {
    const t = performance.now();
    if (!this.snapshot || t - this.snapshot.readAt > SNAPSHOT_TTL_MS) this.snapshot = { readAt: t, certs: this.certificates.all() };
    return this.snapshot.certs;
  }

  /** `SNICallback` for node:https: no certificate for the name ends the handshake. */
  readonly sniCallback = (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void => {
    try {
      const ctx = this.secureContext(servername);
      if (ctx) cb(null, ctx);
      else cb(new Error(`no certificate for ${servername}`));
    } catch (err) {
      cb(err as Error);
    }
  };
}

/** APIGATE_TLS_DOMAINS: certificates separated by `;` or spaces, names within one by `,`. */
export function parseTlsDomains(value: string | undefined): string[][] {
  return (value ?? '')
    .split(/[;\s]+/)
    .map((group) => group.split(',').map((d) => d.trim()).filter(Boolean))
    .filter((g) => g.length > 0);
}
