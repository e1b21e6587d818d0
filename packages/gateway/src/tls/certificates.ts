import { X509Certificate } from 'node:crypto';
import { type Certificate, ApigateError } from '@apigate/kernel';
import { asc, eq } from 'drizzle-orm';
import { decrypt, encrypt } from '../store/crypto.js';
import type { Tables } from '../store/dialect.js';
import type { Store } from '../domain/open-store.js';

/** A stored certificate; `keyPem` is decrypted only by `get`/`all` callers that serve it. */
export interface StoredCertificate extends Certificate {
  domainsKey: string;
  updatedAt: Date;
}

/** Names lowercased, deduplicated and sorted: one certificate row per set of names. */
export function domainsKey(domains: readonly string[]): string {
  const names = [...new Set(domains.map((d) => d.trim().toLowerCase().replace(/\.$/, '')))].filter(Boolean).sort();
  if (names.length === 0) throw new ApigateError('TLS_DOMAINS_EMPTY', 'no domain names given: expected at least one, e.g. api.example.com');
  return names.join(',');
}

const ACCOUNT_KEY = 'tls.acme.account_key';
const keyContext = (k: string) => `certificates:${k}:key_pem`;

/**
 * The `certificates` table. Private keys (certificate keys and the ACME account key) are
 * AES-256-GCM encrypted with a key derived from the settings key, bound to their row.
 */
export class CertificateStore {
  private readonly key: Buffer;

  constructor(
    private readonly store: Store,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.key = store.deriveKey('tls private keys');
  }

  async save(c: Certificate): Promise<StoredCertificate> {
    const { certificates } = this.store.t;
    const k = domainsKey(c.domains);
    const now = this.now();
    const row = {
      domainsKey: k,
      certPem: c.certPem,
      chainPem: c.chainPem,
      keyPem: encrypt(this.key, c.keyPem, keyContext(k)),
      serial: c.serialNumber,
      issuer: c.issuer,
      notBefore: c.notBefore,
      notAfter: c.notAfter,
      updatedAt: now,
    };
    await this.store.db
      .insert(certificates)
      .values({ ...row, createdAt: now })
      .onConflictDoUpdate({ target: certificates.domainsKey, set: row });
    return (await this.get(k))!;
  }

  async get(key: string): Promise<StoredCertificate | undefined> {
    const { certificates } = this.store.t;
    const [row] = await this.store.db.select().from(certificates).where(eq(certificates.domainsKey, key));
    return row ? this.toCert(row) : undefined;
  }

  async all(): Promise<StoredCertificate[]> {
    const { certificates } = this.store.t;
    return (await this.store.db.select().from(certificates).orderBy(asc(certificates.domainsKey))).map((r) => this.toCert(r));
  }

  async accountKey(): Promise<string | undefined> {
    const { meta } = this.store.t;
    const [row] = await this.store.db.select().from(meta).where(eq(meta.key, ACCOUNT_KEY));
    return row ? this.open(row.value, `meta:${ACCOUNT_KEY}`, 'the ACME account key') : undefined;
  }

  async saveAccountKey(pem: string): Promise<void> {
    const { meta } = this.store.t;
    const value = encrypt(this.key, pem, `meta:${ACCOUNT_KEY}`);
    await this.store.db.insert(meta).values({ key: ACCOUNT_KEY, value }).onConflictDoUpdate({ target: meta.key, set: { value } });
  }

  private toCert(r: Tables['certificates']['$inferSelect']): StoredCertificate {
    const domains = sanNames(r.certPem);
    return {
      domainsKey: r.domainsKey,
      domains: domains.length ? domains : r.domainsKey.split(','),
      certPem: r.certPem,
      chainPem: r.chainPem,
      keyPem: this.open(r.keyPem, keyContext(r.domainsKey), `the key of certificate ${r.domainsKey}`),
      notBefore: r.notBefore,
      notAfter: r.notAfter,
      serialNumber: r.serial,
      issuer: r.issuer,
      updatedAt: r.updatedAt,
    };
  }

  private open(value: string, context: string, what: string): string {
    try {
      return decrypt(this.key, value, context);
    } catch (cause) {
      throw new ApigateError('TLS_KEY_DECRYPT_FAILED', `${what} cannot be decrypted with the settings key; obtain the certificate again`, {
        cause,
      });
    }
  }
}

/** DNS names in the certificate's subjectAltName. */
export function sanNames(certPem: string): string[] {
  return (new X509Certificate(certPem).subjectAltName ?? '')
    .split(/,\s*/)
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4).toLowerCase());
}
