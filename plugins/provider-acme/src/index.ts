import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { X509Certificate } from 'node:crypto';
import { type Certificate, type ChallengeStore, defineProvider, type Health, ProviderError, type TlsProvider, z } from '@apigate/kernel';
import * as acme from 'acme-client';
import { getAdapter } from 'axios';

export const LETS_ENCRYPT_DIRECTORY = 'https://acme-v02.api.letsencrypt.org/directory';

/** Per-request bound: a silent ACME server must not hold an order forever. */
const REQUEST_TIMEOUT_MS = 30_000;
/** Polling of authorizations and orders: 10 tries, 1 s doubling to at most 8 s (about a minute in all). */
const POLL = { backoffAttempts: 10, backoffMin: 1_000, backoffMax: 8_000 };

/** RFC 5280 CRLReason codes accepted as `revoke(cert, reason)`. */
const REVOCATION_REASONS: Record<string, number> = {
  unspecified: 0,
  keyCompromise: 1,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
};

interface Problem {
  status: number;
  type?: string;
  detail?: string;
  retryAfter?: string;
}

const shortType = (type?: string) => type?.replace('urn:ietf:params:acme:error:', '');

const httpCodeOf = (err: unknown): string | undefined => {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | null;
  return typeof e?.code === 'string' ? e.code : typeof e?.cause?.code === 'string' ? e.cause.code : undefined;
};

/**
 * One ACME client per operation (an account key, a request log). acme-client's own transport retry
 * is switched off per request: it sleeps for any Retry-After (hours when rate limited) and loses the
 * reason of network failures. Here every answer is recorded, so a failure is reported with the
 * ACME problem type, the status and the Retry-After, and classified retryable or final.
 */
class Session {
  readonly client: acme.Client;
  /** The last error answer, cleared by a success (badNonce answers are retried by acme-client). */
  problem: Problem | undefined;
  transportError: unknown;

  constructor(
    private readonly owner: AcmeTlsProvider,
    private readonly operation: string,
    accountKey: string,
    signal?: AbortSignal,
  ) {
    this.client = new acme.Client({ directoryUrl: owner.directory, accountKey, ...POLL });
    const http = (this.client as unknown as { http: { request: (u: string, m: string, o?: Record<string, unknown>) => Promise<any> } })
      .http;
    const request = http.request.bind(http);
    const adapter = getAdapter('http');
    http.request = async (url, method, opts = {}) => {
      this.transportError = undefined;
      const resp = await request(url, method, {
        ...opts,
        // A retryAttempt past any limit turns acme-client's interceptor retry off.
        retryAttempt: Number.MAX_SAFE_INTEGER,
        timeout: REQUEST_TIMEOUT_MS,
        ...(owner.agent ? { httpsAgent: owner.agent } : {}),
        ...(signal ? { signal } : {}),
        adapter: (config: never) =>
          adapter(config).catch((e: unknown) => {
            this.transportError = e;
            throw e;
          }),
      }).catch((e: unknown) => {
        const cause = this.transportError ?? e;
        const code = httpCodeOf(cause) ?? '';
        // An untrusted or wrong certificate will not fix itself; refused connections and timeouts may.
        const untrusted = UNTRUSTED_CODES.test(code);
        const hint = untrusted ? '; set TLS_ACME_CA_FILE if the ACME server uses a private CA' : '';
        throw owner.fail(this.operation, `cannot reach the ACME server at ${url}: ${describeTransport(cause)}${hint}`, !untrusted, e);
      });
      const data = resp.data as { type?: string; detail?: string } | undefined;
      this.problem =
        resp.status >= 400
          ? { status: resp.status, type: shortType(data?.type), detail: data?.detail, retryAfter: resp.headers?.['retry-after'] }
          : undefined;
      return resp;
    };
  }

  /** Turns what acme-client threw into a ProviderError using the recorded answer. */
  error(operation: string, err: unknown, what: string): ProviderError {
    if (err instanceof ProviderError) return err;
    const p = this.problem;
    const base = err instanceof Error ? err.message : String(err);
    if (!p) return this.owner.fail(operation, `${what}: ${base}`, false, err);
    // rateLimited (429) and server trouble pass; malformed, rejectedIdentifier, unauthorized and other 4xx problems do not.
    const retryable = p.type === 'rateLimited' || p.type === 'serverInternal' || p.status === 408 || p.status === 429 || p.status >= 500;
    const after = p.retryAfter ? ` (retry after ${p.retryAfter})` : '';
    const type = p.type ? `${p.type}, ` : '';
    return this.owner.fail(operation, `${what}: ${p.detail ?? base} [${type}HTTP ${p.status}]${after}`, retryable, err, p.status, p.type);
  }
}

function describeTransport(err: unknown): string {
  const code = httpCodeOf(err);
  const msg = err instanceof Error ? err.message : String(err);
  return code && !msg.includes(code) ? `${msg} (${code})` : msg;
}

const UNTRUSTED_CODES = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ALTNAME/;

const oneLine = (s: string) => s.replace(/\s*\n\s*/g, ' ').trim();

export class AcmeTlsProvider implements TlsProvider {
  readonly agent: Agent | undefined;

  constructor(
    readonly directory: string,
    private readonly email: string | undefined,
    caPem: string | undefined,
    private readonly accountKeyType: 'ecdsa' | 'rsa',
  ) {
    // Trust an extra CA for the ACME server's own HTTPS (Pebble's test CA) on top of the system ones.
    this.agent = caPem ? new Agent({ ca: caPem, keepAlive: false }) : undefined;
  }

  fail(operation: string, message: string, retryable: boolean, cause?: unknown, status?: number, type?: string): ProviderError {
    return new ProviderError({
      capability: 'tls',
      provider: 'acme',
      operation,
      retryable,
      message: oneLine(message),
      ...(type ? { code: `ACME_${type.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}` } : {}),
      ...(status !== undefined ? { status } : {}),
      cause,
    });
  }

  private newKey(): Promise<Buffer> {
    return this.accountKeyType === 'rsa' ? acme.crypto.createPrivateRsaKey(2048) : acme.crypto.createPrivateEcdsaKey('P-256');
  }

  async obtain(i: { domains: string[]; challenges: ChallengeStore; accountKeyPem?: string }) {
    const domains = [...new Set(i.domains.map((d) => d.trim().toLowerCase()))];
    if (domains.length === 0) throw this.fail('obtain', 'at least one domain is required', false);
    const wild = domains.find((d) => d.startsWith('*.'));
    if (wild) throw this.fail('obtain', `${wild}: wildcard names need DNS-01; this provider answers HTTP-01 only`, false);
    const accountKeyPem = i.accountKeyPem ?? (await this.newKey()).toString();
    const s = new Session(this, 'obtain', accountKeyPem);
    const names = domains.join(', ');

    try {
      await s.client.createAccount({ termsOfServiceAgreed: true, ...(this.email ? { contact: [`mailto:${this.email}`] } : {}) });
    } catch (e) {
      throw s.error('obtain', e, 'account registration failed');
    }

    let order: acme.Order;
    try {
      order = await s.client.createOrder({ identifiers: domains.map((value) => ({ type: 'dns', value })) });
    } catch (e) {
      throw s.error('obtain', e, `order for ${names} refused`);
    }

    const authorizations = await s.client.getAuthorizations(order).catch((e) => {
      throw s.error('obtain', e, `authorizations for ${names} unavailable`);
    });
    const placed: string[] = [];
    try {
      for (const authz of authorizations) {
        if (authz.status === 'valid') continue; // reused from an earlier order of this account
        const domain = authz.identifier.value;
        const challenge = authz.challenges.find((c) => c.type === 'http-01');
        if (!challenge) throw this.fail('obtain', `${domain}: the CA offers no http-01 challenge`, false);
        const keyAuthorization = await s.client.getChallengeKeyAuthorization(challenge);
        await i.challenges.set(challenge.token, keyAuthorization);
        placed.push(challenge.token);
        try {
          await s.client.completeChallenge(challenge);
          await s.client.waitForValidStatus(authz);
        } catch (e) {
          throw await this.challengeError(s, authz, domain, e);
        }
      }

      const [certKey, csr] = await acme.crypto.createCsr({ altNames: domains }, await this.newKey());
      try {
        const finalized = await s.client.finalizeOrder(order, csr);
        const ready = await s.client.waitForValidStatus(finalized);
        const pem = await s.client.getCertificate(ready);
        return { certificate: toCertificate(domains, pem, certKey.toString()), accountKeyPem };
      } catch (e) {
        throw s.error('obtain', e, `issuing the certificate for ${names} failed`);
      }
    } finally {
      // Answers are removed whether the order succeeded or not; a failed delete must not hide the result.
      await Promise.allSettled(placed.map((t) => i.challenges.delete(t)));
    }
  }

  /** The CA's own reason for an invalid authorization (what it fetched, what it got). */
  private async challengeError(s: Session, authz: acme.Authorization, domain: string, err: unknown): Promise<ProviderError> {
    if (err instanceof ProviderError) return err;
    if (s.problem) return s.error('obtain', err, `${domain}: HTTP-01 challenge`);
    const current = await s.client.getAuthorizations({ authorizations: [authz.url] } as acme.Order).catch(() => undefined);
    const failed = current?.[0]?.challenges.find((c) => c.type === 'http-01') as { error?: { type?: string; detail?: string } } | undefined;
    const detail = failed?.error?.detail ?? (err instanceof Error ? err.message : String(err));
    const type = shortType(failed?.error?.type);
    // Pending after every poll: the CA may finish later; anything the CA judged invalid is final.
    const pending = current?.[0]?.status === 'pending';
    return this.fail(
      'obtain',
      `${domain}: HTTP-01 challenge ${pending ? 'still pending' : 'failed'} (the CA fetches http://${domain}/.well-known/acme-challenge/<token> on port 80): ${detail}`,
      pending,
      err,
      undefined,
      type,
    );
  }

  async revoke(cert: Certificate, reason?: string): Promise<void> {
    let code: number | undefined;
    if (reason !== undefined) {
      code = REVOCATION_REASONS[reason];
      if (code === undefined) {
        throw this.fail('revoke', `unknown reason "${reason}"; expected one of ${Object.keys(REVOCATION_REASONS).join(', ')}`, false);
      }
    }
    // Signed with the certificate's own key (RFC 8555 §7.6): no account needed, so any certificate
    // the gateway stored can be revoked even after the account key is gone.
    const s = new Session(this, 'revoke', cert.keyPem);
    const api = (s.client as unknown as { api: { apiResourceRequest: (...a: unknown[]) => Promise<unknown> } }).api;
    const der = new X509Certificate(cert.certPem).raw.toString('base64url');
    try {
      await api.apiResourceRequest('revokeCert', { certificate: der, ...(code !== undefined ? { reason: code } : {}) }, [200], {
        includeJwsKid: false,
      });
    } catch (e) {
      throw s.error('revoke', e, `revoking certificate ${cert.serialNumber} (${cert.domains.join(', ')})`);
    }
  }

  /** Reads the directory; a failure to reach it throws, which the kernel reports as an `error` health. */
  async check(signal: AbortSignal): Promise<Health> {
    // No key is needed to read the directory; acme-client only reads the key when signing.
    const s = new Session(this, 'check', 'unused', signal);
    const http = (s.client as unknown as { http: { request: (u: string, m: string) => Promise<{ status: number; data: unknown }> } }).http;
    const resp = await http.request(this.directory, 'get');
    const dir = resp.data as Record<string, unknown> | undefined;
    if (resp.status !== 200 || typeof dir?.newOrder !== 'string') {
      return { status: 'error', error: `ACME directory ${this.directory} answered HTTP ${resp.status} without newOrder` };
    }
    return { status: 'connected', detail: this.directory };
  }

  async close(): Promise<void> {
    this.agent?.destroy();
  }
}

function toCertificate(domains: string[], pem: string, keyPem: string): Certificate {
  const [certPem, ...chain] = acme.crypto.splitPemChain(pem);
  if (!certPem) throw new Error('the CA returned no certificate');
  const leaf = new X509Certificate(certPem);
  return {
    domains,
    certPem: `${certPem.trim()}\n`,
    chainPem: `${chain.map((c) => c.trim()).join('\n')}\n`,
    keyPem,
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
    serialNumber: leaf.serialNumber,
    issuer: leaf.issuer,
  };
}

const config = z.object({
  email: z.email('expected an email address').optional(),
  directory: z.url({ protocol: /^https?$/, error: 'expected the http(s) URL of an ACME directory' }).default(LETS_ENCRYPT_DIRECTORY),
  /** PEM file of an extra CA to trust for the ACME server's HTTPS (a test CA such as Pebble's). */
  caFile: z.string().min(1).optional(),
  accountKeyType: z.enum(['ecdsa', 'rsa'], { error: 'expected ecdsa or rsa' }).default('ecdsa'),
});

export default defineProvider({
  capability: 'tls',
  name: 'acme',
  description: "Certificates from an ACME CA (Let's Encrypt by default) through HTTP-01 challenges.",
  config,
  env: {
    email: 'TLS_ACME_EMAIL',
    directory: 'TLS_ACME_DIRECTORY',
    caFile: 'TLS_ACME_CA_FILE',
    accountKeyType: 'TLS_ACME_ACCOUNT_KEY_TYPE',
  },
  create(c) {
    let caPem: string | undefined;
    if (c.caFile) {
      try {
        caPem = readFileSync(c.caFile, 'utf8');
      } catch (e) {
        throw new Error(`TLS_ACME_CA_FILE (setting tls.acme.ca_file): cannot read ${c.caFile}: ${(e as Error).message}`);
      }
      if (!caPem.includes('-----BEGIN CERTIFICATE-----')) {
        throw new Error(`TLS_ACME_CA_FILE (setting tls.acme.ca_file): ${c.caFile} holds no PEM certificate`);
      }
    }
    return new AcmeTlsProvider(c.directory, c.email, caPem, c.accountKeyType);
  },
});
