import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Certificate, ChallengeStore, TlsProvider } from '@apigate/kernel';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { instancePerTest, lifecycleTests, rejectionOf } from './expectations.js';
import { type DefinitionOf, describeSuite, resolveSuite, type SuiteSetup } from './suite.js';

const CHALLENGE_PATH = /^\/\.well-known\/acme-challenge\/([A-Za-z0-9_-]+)$/;

/**
 * A ChallengeStore that remembers what the provider did with it and answers HTTP-01 requests
 * the way the gateway does at /.well-known/acme-challenge/:token. Hosts in `refuse` get 404,
 * to stand for a name the gateway does not serve.
 */
export class TestChallengeStore implements ChallengeStore {
  private readonly answers = new Map<string, string>();
  /** Every set/delete in order, for assertions. */
  readonly history: { op: 'set' | 'delete'; token: string }[] = [];
  /** Tokens answered over HTTP. */
  readonly served: string[] = [];
  readonly refuse = new Set<string>();

  async set(token: string, keyAuthorization: string): Promise<void> {
    this.history.push({ op: 'set', token });
    this.answers.set(token, keyAuthorization);
  }

  async delete(token: string): Promise<void> {
    this.history.push({ op: 'delete', token });
    this.answers.delete(token);
  }

  get(token: string): string | undefined {
    return this.answers.get(token);
  }

  /** Live tokens (set and not deleted yet). */
  tokens(): string[] {
    return [...this.answers.keys()];
  }

  /** Node request listener serving the answers. */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    const host = (req.headers.host ?? '').replace(/:\d+$/, '').toLowerCase();
    const m = CHALLENGE_PATH.exec(req.url ?? '');
    const answer = m && !this.refuse.has(host) ? this.answers.get(m[1]!) : undefined;
    if (!answer) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    this.served.push(m![1]!);
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(answer);
  };
}

/** Serves `store` over HTTP on 127.0.0.1:`port` (the port the ACME test server dials for HTTP-01). */
export async function serveChallengeStore(store: TestChallengeStore, port: number): Promise<{ close(): Promise<void> }> {
  const server: Server = createServer(store.handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface TlsSuiteContext {
  provider(): TlsProvider;
  store: TestChallengeStore;
}

export interface TlsSuiteOptions {
  name?: string;
  /** Timeout of each test in ms (default 90 s: a CA validates every name over HTTP). */
  timeout?: number;
  /** Called before each test; the suite closes the instance after it. */
  create: () => TlsProvider | Promise<TlsProvider>;
  /** Names the CA resolves to the challenge server; the suite asks for certificates covering them. */
  domains: string[];
  /** A name that also reaches the challenge server, which answers 404 for it (default `refused.` + first domain). */
  unansweredDomain?: string;
  /** Starts the gateway stand-in serving `store` (e.g. `serveChallengeStore(store, httpPort)`); called once. */
  serveChallenges: (store: TestChallengeStore) => Promise<{ close(): Promise<void> }>;
  /** PEM roots the issued chain must end at (e.g. the test CA's root); checked when given. */
  trustedRoots?: () => Promise<string[]>;
  additionalTests?: (ctx: TlsSuiteContext) => void;
}

/** What `describeTlsProvider(definition, setup)` takes besides the setup every suite takes. */
export interface TlsSuiteSetup
  extends SuiteSetup,
    Pick<TlsSuiteOptions, 'domains' | 'unansweredDomain' | 'serveChallenges' | 'trustedRoots' | 'additionalTests'> {}

const TEST_TIMEOUT = 90_000;
const pemBlocks = (pem: string): string[] => pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];

/** Names in the certificate's subjectAltName (DNS entries only). */
export function sanDnsNames(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? '')
    .split(/,\s*/)
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4).toLowerCase());
}

/** Checks everything a certificate from `obtain` must satisfy; returns the parsed leaf. */
export async function assertValidCertificate(c: Certificate, domains: string[], trustedRoots?: string[]): Promise<X509Certificate> {
  const leaf = new X509Certificate(c.certPem);
  expect(sanDnsNames(leaf).sort(), 'certificate SAN covers exactly the requested domains').toEqual(
    [...new Set(domains.map((d) => d.toLowerCase()))].sort(),
  );
  expect([...c.domains].sort()).toEqual([...domains].sort());
  for (const d of domains) expect(leaf.checkHost(d), `certificate is valid for ${d}`).toBe(d);

  const chain = pemBlocks(c.chainPem).map((p) => new X509Certificate(p));
  expect(chain.length, 'chainPem holds the issuer certificate(s)').toBeGreaterThan(0);
  expect(
    chain.some((x) => x.fingerprint256 === leaf.fingerprint256),
    'chainPem excludes the leaf',
  ).toBe(false);
  let child = leaf;
  for (const issuer of chain) {
    expect(child.checkIssued(issuer), `${child.subject} issued by ${issuer.subject}`).toBe(true);
    expect(child.verify(issuer.publicKey), `${child.subject} signed by ${issuer.subject}`).toBe(true);
    child = issuer;
  }
  if (trustedRoots?.length) {
    const roots = trustedRoots.map((p) => new X509Certificate(p));
    expect(
      roots.some((r) => child.checkIssued(r) && child.verify(r.publicKey)),
      'chain ends at a trusted root',
    ).toBe(true);
  }
  expect(c.issuer).toBe(leaf.issuer);
  expect(c.serialNumber.toLowerCase().replace(/^0+/, '')).toBe(leaf.serialNumber.toLowerCase().replace(/^0+/, ''));

  const key = createPrivateKey(c.keyPem);
  expect(leaf.checkPrivateKey(key), 'keyPem is the key of the certificate').toBe(true);

  const now = Date.now();
  expect(c.notBefore.getTime()).toBe(new Date(leaf.validFrom).getTime());
  expect(c.notAfter.getTime()).toBe(new Date(leaf.validTo).getTime());
  expect(c.notBefore.getTime(), 'notBefore is not in the future').toBeLessThanOrEqual(now + 5 * 60_000);
  expect(c.notAfter.getTime(), 'notAfter is at least a day ahead').toBeGreaterThan(now + 86_400_000);
  expect(c.notAfter.getTime()).toBeGreaterThan(c.notBefore.getTime());
  return leaf;
}

/**
 * Conformance suite for TLS providers: certificates obtained through HTTP-01 answers in the
 * ChallengeStore, account keys returned and reusable, challenge cleanup, revocation, and a clear
 * failure for a name the challenge server does not answer for.
 */
export function describeTlsProvider(definition: DefinitionOf<'tls'>, setup: TlsSuiteSetup): void;
/** @deprecated The 1.0 form: pass the definition and its config instead, `describeTlsProvider(definition, { config, ... })`. */
export function describeTlsProvider(opts: TlsSuiteOptions): void;
export function describeTlsProvider(first: DefinitionOf<'tls'> | TlsSuiteOptions, setup?: TlsSuiteSetup): void {
  const suite = resolveSuite('tls', 'TlsProvider conformance', first, setup);
  const opts = suite.opts;
  const domains = opts.domains;
  const unanswered = opts.unansweredDomain ?? `refused.${domains[0]}`;
  describeSuite(suite, TEST_TIMEOUT, () => {
    const store = new TestChallengeStore();
    store.refuse.add(unanswered.toLowerCase());
    let server: { close(): Promise<void> } | undefined;
    let roots: string[] | undefined;
    beforeAll(async () => {
      server = await opts.serveChallenges(store);
      roots = await opts.trustedRoots?.();
    });
    afterAll(async () => {
      await server?.close();
    });
    const provider = instancePerTest('TlsProvider', opts.create);

    it('obtains a certificate for the requested domains through HTTP-01 answers', async () => {
      const before = store.history.length;
      const { certificate, accountKeyPem } = await provider().obtain({ domains, challenges: store });
      await assertValidCertificate(certificate, domains, roots);
      expect(() => createPrivateKey(accountKeyPem), 'accountKeyPem is a private key PEM').not.toThrow();

      const ops = store.history.slice(before);
      const set = ops.filter((o) => o.op === 'set').map((o) => o.token);
      const deleted = ops.filter((o) => o.op === 'delete').map((o) => o.token);
      expect(set.length, 'one challenge answer set per domain (fresh account)').toBeGreaterThanOrEqual(domains.length);
      expect(deleted.sort(), 'every challenge answer deleted afterwards').toEqual([...set].sort());
      for (const t of set) expect(store.served, `challenge ${t} fetched by the CA`).toContain(t);
      expect(store.tokens()).toEqual([]);
    });

    it('reuses a returned account key instead of making a new account', async () => {
      const first = await provider().obtain({ domains, challenges: store });
      const second = await provider().obtain({ domains: [domains[0]!], challenges: store, accountKeyPem: first.accountKeyPem });
      expect(second.accountKeyPem).toBe(first.accountKeyPem);
      await assertValidCertificate(second.certificate, [domains[0]!], roots);
      expect(second.certificate.serialNumber).not.toBe(first.certificate.serialNumber);
      expect(second.certificate.keyPem, 'a new certificate key per order').not.toBe(first.certificate.keyPem);
      // The account key is not the certificate key: the certificate key is per order.
      expect(createPublicKey(first.accountKeyPem).export({ format: 'jwk' })).not.toEqual(
        createPublicKey(first.certificate.keyPem).export({ format: 'jwk' }),
      );
      expect(store.tokens()).toEqual([]);
    });

    it('revokes an issued certificate; revoking it again fails', async () => {
      const { certificate } = await provider().obtain({ domains: [domains[0]!], challenges: store });
      await provider().revoke(certificate, 'superseded');
      const err = await rejectionOf(provider().revoke(certificate), 'revoking an already revoked certificate');
      expect(err.message).toMatch(/revoked/i);
    });

    it('fails with a clear error for a domain the challenge server does not answer for, and cleans up', async () => {
      const err = await rejectionOf(provider().obtain({ domains: [unanswered], challenges: store }), `obtain for ${unanswered}`);
      expect(err.message, 'the error names the domain').toContain(unanswered);
      expect(err.message.split('\n').length, 'one line').toBe(1);
      expect(store.tokens(), 'challenge answers deleted after a failure').toEqual([]);
    });

    lifecycleTests(provider);
    opts.additionalTests?.({ provider, store });
  });
}
