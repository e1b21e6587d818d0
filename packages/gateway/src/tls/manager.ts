import { createSecureContext, type SecureContext } from 'node:tls';
import { type CacheProvider, describeError, type Logger, type TlsProvider } from '@apigate/kernel';
import type { Store } from '../domain/open-store.js';
import { CacheChallengeStore } from './challenges.js';
import { CertificateStore, domainsKey, type StoredCertificate } from './certificates.js';

/** Renew a certificate this long before it expires. */
export const RENEW_BEFORE_MS = 30 * 86_400_000;
/** How often `startRenewals` looks for certificates that are due. */
export const RENEW_CHECK_INTERVAL_MS = 12 * 3_600_000;
/**
 * How long one instance may hold the order lock for a set of names (an ACME order takes seconds to
 * a few minutes); a lock left by a crashed instance expires after this.
 */
export const ORDER_LOCK_MS = 10 * 60_000;
/** Cache key prefix of the order locks (one per set of names). */
const ORDER_LOCK_PREFIX = 'tls:order-lock:';

export interface CertificateManagerOptions {
  store: Store;
  tls: TlsProvider;
  /** Holds HTTP-01 answers; shared (Redis) when several instances sit behind a load balancer. */
  cache: CacheProvider;
  logger: Logger;
  /** Clock for expiry decisions (tests move it); default the system clock. */
  now?: () => Date;
  renewBeforeMs?: number;
  /** Order lock lifetime (default ORDER_LOCK_MS). */
  orderLockMs?: number;
  /** How often an instance waiting for another one's order looks for the stored certificate (default 1 s). */
  orderPollMs?: number;
}

/** How stale the handshake snapshot may get: certificates stored by another process show up within this. */
const SNAPSHOT_TTL_MS = 60_000;
/** A handshake for a name the snapshot lacks re-reads the store, at most this often (unknown names must not hammer it). */
const MISS_RELOAD_MS = 2_000;

/**
 * Obtains certificates through the TLS provider (answering its HTTP-01 challenges from the
 * cache, served at /.well-known/acme-challenge/:token), stores them encrypted, renews them
 * before expiry and hands the HTTPS listener a secure context per server name.
 *
 * Several instances (or `serve --workers` processes) share the database and the cache: for each
 * set of names one of them orders (it holds the order lock, an atomic cache increment) and the
 * others wait for the certificate it stores and load it. Handshakes pick up certificates another
 * instance stored by re-reading the store when a name is missing and every SNAPSHOT_TTL_MS.
 */
export class CertificateManager {
  readonly certificates: CertificateStore;
  private readonly challenges: CacheChallengeStore;
  private readonly now: () => Date;
  private readonly renewBeforeMs: number;
  private contexts = new Map<string, { serial: string; ctx: SecureContext }>();
  /** Decrypted certificates for handshakes, re-read at most every SNAPSHOT_TTL_MS (others may store new ones). */
  private snapshot: { readAt: number; certs: StoredCertificate[] } | undefined;
  /** The store read in progress for the snapshot, shared by concurrent handshakes. */
  private reading: Promise<StoredCertificate[]> | undefined;
  private readonly orderLockMs: number;
  private readonly orderPollMs: number;

  constructor(private readonly opts: CertificateManagerOptions) {
    this.now = opts.now ?? (() => new Date());
    this.certificates = new CertificateStore(opts.store, this.now);
    this.challenges = new CacheChallengeStore(opts.cache);
    this.renewBeforeMs = opts.renewBeforeMs ?? RENEW_BEFORE_MS;
    this.orderLockMs = opts.orderLockMs ?? ORDER_LOCK_MS;
    this.orderPollMs = opts.orderPollMs ?? 1000;
  }

  /** Orders a certificate for `domains` now (reusing the stored account key) and stores it. */
  async obtain(domains: string[], progress: (line: string) => void = () => {}): Promise<StoredCertificate> {
    const key = domainsKey(domains);
    const names = key.split(',');
    progress(`ordering a certificate for ${names.join(', ')} (HTTP-01 answers at /.well-known/acme-challenge/)`);
    const accountKeyPem = await this.certificates.accountKey();
    const got = await this.opts.tls.obtain({ domains: names, challenges: this.challenges, ...(accountKeyPem ? { accountKeyPem } : {}) });
    if (got.accountKeyPem !== accountKeyPem) await this.certificates.saveAccountKey(got.accountKeyPem);
    const saved = await this.certificates.save(got.certificate);
    this.snapshot = undefined;
    progress(`stored certificate ${saved.serialNumber} for ${names.join(', ')}, valid until ${saved.notAfter.toISOString()}`);
    this.opts.logger.info(
      { domains: names, serial: saved.serialNumber, notAfter: saved.notAfter.toISOString() },
      `obtained a certificate for ${key}`,
    );
    return saved;
  }

  /** Whether `c` expires within the renewal window. */
  isDue(c: StoredCertificate): boolean {
    return c.notAfter.getTime() - this.now().getTime() <= this.renewBeforeMs;
  }

  /**
   * Obtains each wanted set of names that has no stored certificate and renews every stored
   * certificate that is due. For each set, the instance that takes the shared order lock orders;
   * the others wait for the certificate it stores (`loaded`), or report the set failed when that
   * order ends without one. A failure is logged and the rest go on.
   */
  async ensure(
    wanted: string[][] = [],
    progress?: (line: string) => void,
  ): Promise<{ obtained: StoredCertificate[]; loaded: StoredCertificate[]; failed: string[] }> {
    const stored = new Map((await this.certificates.all()).map((c) => [c.domainsKey, c]));
    // Each set of names to order, with the serial of the due certificate it replaces.
    const todo = new Map<string, { names: string[]; replaces?: string }>();
    for (const w of wanted) {
      const k = domainsKey(w);
      if (!stored.has(k)) todo.set(k, { names: k.split(',') });
    }
    for (const c of stored.values())
      if (this.isDue(c)) todo.set(c.domainsKey, { names: c.domainsKey.split(','), replaces: c.serialNumber });
    const obtained: StoredCertificate[] = [];
    const loaded: StoredCertificate[] = [];
    const failed: string[] = [];
    for (const [k, { names, replaces }] of todo) {
      try {
        const got = await this.orderOnce(k, names, replaces, progress);
        (got.ordered ? obtained : loaded).push(got.cert);
      } catch (err) {
        failed.push(k);
        this.opts.logger.error({ domains: names }, `cannot obtain a certificate for ${k}: ${describeError(err)}`);
      }
    }
    if (loaded.length > 0) this.snapshot = undefined;
    return { obtained, loaded, failed };
  }

  /**
   * The certificate stored for `key` if it is not the one this instance set out to replace
   * (serial `replaces`; none: any) or no longer due: another instance may just have stored it.
   */
  private async fresh(key: string, replaces: string | undefined): Promise<StoredCertificate | undefined> {
    const c = await this.certificates.get(key);
    return c && (c.serialNumber !== replaces || !this.isDue(c)) ? c : undefined;
  }

  /**
   * Orders the certificate for `key` if this instance takes the order lock (and nobody stored a
   * fresh one meanwhile); otherwise waits for the instance holding the lock to store it.
   */
  private async orderOnce(
    key: string,
    names: string[],
    replaces: string | undefined,
    progress?: (line: string) => void,
  ): Promise<{ ordered: boolean; cert: StoredCertificate }> {
    const cache = this.opts.cache;
    const lock = `${ORDER_LOCK_PREFIX}${key}`;
    if ((await cache.increment(lock, 1, { ttlMs: this.orderLockMs })) === 1) {
      try {
        const already = await this.fresh(key, replaces);
        if (already) return { ordered: false, cert: already };
        return { ordered: true, cert: await this.obtain(names, progress) };
      } finally {
        await cache.delete(lock).catch(() => false);
      }
    }
    progress?.(`another instance is ordering the certificate for ${names.join(', ')}; waiting for it`);
    const until = Date.now() + this.orderLockMs;
    for (;;) {
      await new Promise((r) => setTimeout(r, this.orderPollMs));
      const cert = await this.fresh(key, replaces);
      if (cert) {
        progress?.(`loaded certificate ${cert.serialNumber} for ${names.join(', ')}, stored by another instance`);
        return { ordered: false, cert };
      }
      // The lock is gone (released or expired) without a certificate: that order failed; the next renewal round retries.
      if (!(await cache.has(lock)) && !(await this.fresh(key, replaces))) {
        throw new Error('the instance that was ordering it stored no certificate (see its log); the next renewal round tries again');
      }
      if (Date.now() > until) throw new Error(`waited ${this.orderLockMs} ms for another instance's order`);
    }
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
   * level up) as a secure context; contexts are rebuilt only when the serial changes. A name the
   * snapshot lacks re-reads the store (at most every MISS_RELOAD_MS): another instance may have
   * stored its certificate since.
   */
  async secureContext(servername: string): Promise<SecureContext | undefined> {
    const name = servername.toLowerCase();
    const wildcard = `*.${name.split('.').slice(1).join('.')}`;
    const find = (all: StoredCertificate[]) => all.find((c) => c.domains.includes(name)) ?? all.find((c) => c.domains.includes(wildcard));
    let cert = find(await this.storedForHandshakes(SNAPSHOT_TTL_MS));
    if (!cert) cert = find(await this.storedForHandshakes(MISS_RELOAD_MS));
    if (!cert) return undefined;
    const cached = this.contexts.get(cert.domainsKey);
    if (cached?.serial === cert.serialNumber) return cached.ctx;
    const ctx = createSecureContext({ cert: `${cert.certPem.trim()}\n${cert.chainPem}`, key: cert.keyPem });
    this.contexts.set(cert.domainsKey, { serial: cert.serialNumber, ctx });
    return ctx;
  }

  /**
   * Handshakes must not read and decrypt every row each time: a snapshot, dropped on save and
   * re-read when older than `maxAgeMs`; concurrent handshakes share one read.
   */
  private async storedForHandshakes(maxAgeMs: number): Promise<StoredCertificate[]> {
    const snap = this.snapshot;
    if (snap && performance.now() - snap.readAt <= maxAgeMs) return snap.certs;
    if (!this.reading) {
      const readAt = performance.now();
      this.reading = (async () => await this.certificates.all())()
        .then((certs) => {
          this.snapshot = { readAt, certs };
          return certs;
        })
        .finally(() => {
          this.reading = undefined;
        });
    }
    return this.reading;
  }

  /** `SNICallback` for node:https: no certificate for the name ends the handshake. */
  readonly sniCallback = (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void => {
    this.secureContext(servername).then(
      (ctx) => (ctx ? cb(null, ctx) : cb(new Error(`no certificate for ${servername}`))),
      (err: unknown) => cb(err instanceof Error ? err : new Error(String(err))),
    );
  };
}

/** APIGATE_TLS_DOMAINS: certificates separated by `;` or spaces, names within one by `,`. */
export function parseTlsDomains(value: string | undefined): string[][] {
  return (value ?? '')
    .split(/[;\s]+/)
    .map((group) =>
      group
        .split(',')
        .map((d) => d.trim())
        .filter(Boolean),
    )
    .filter((g) => g.length > 0);
}
