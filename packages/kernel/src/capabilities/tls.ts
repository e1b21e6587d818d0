import type { ProviderInstance } from './common.js';

export interface Certificate {
  domains: string[];
  certPem: string;
  chainPem: string;
  keyPem: string;
  notBefore: Date;
  notAfter: Date;
  serialNumber: string;
  issuer: string;
}

/** Where the provider puts HTTP-01 answers; the gateway serves them at /.well-known/acme-challenge/:token. */
export interface ChallengeStore {
  set(token: string, keyAuthorization: string): Promise<void>;
  delete(token: string): Promise<void>;
}

/** Scheduling renewals, storing certificates and serving challenges are the gateway's job. */
export interface TlsProvider extends ProviderInstance {
  obtain(i: {
    domains: string[];
    challenges: ChallengeStore;
    accountKeyPem?: string;
  }): Promise<{ certificate: Certificate; accountKeyPem: string }>;
  revoke(cert: Certificate, reason?: string): Promise<void>;
}
