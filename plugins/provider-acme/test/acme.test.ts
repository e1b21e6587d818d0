import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { isRetryable, ProviderError } from '@apigate/kernel';
import {
  assertValidManifest,
  createForTest,
  describeTlsProvider,
  listenLocally,
  rejectionOf,
  serveChallengeStore,
  TestChallengeStore,
} from '@apigate/provider-testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pkg from '../package.json' with { type: 'json' };
import provider from '../src/index.js';
import { type Pebble, startPebble } from './pebble.js';

// Started at import time so the conformance suite's create() has a directory; closed after all tests.
const pebble: Pebble = await startPebble();
afterAll(() => pebble.close());

const settings = (over: Record<string, string> = {}) => ({
  directory: pebble.directory,
  caFile: pebble.caFile,
  email: 'ops@apigate.test',
  ...over,
});
const make = async (over: Record<string, string> = {}) => (await createForTest(provider, settings(over))).provider;

describeTlsProvider(provider, {
  name: 'provider-acme conformance (Pebble)',
  config: settings,
  domains: ['apigate.test', 'www.apigate.test'],
  serveChallenges: (store) => serveChallengeStore(store, pebble.httpPort),
  trustedRoots: () => pebble.roots(),
});

describe('provider-acme', () => {
  const store = new TestChallengeStore();
  let server: { close(): Promise<void> };
  beforeAll(async () => {
    server = await serveChallengeStore(store, pebble.httpPort);
  });
  afterAll(() => server.close());

  it('has a valid manifest', () => {
    assertValidManifest(pkg, provider);
  });

  it('makes RSA 2048 account keys when asked, ECDSA P-256 by default', async () => {
    const rsa = await make({ accountKeyType: 'rsa' });
    const { accountKeyPem, certificate } = await rsa.obtain({ domains: ['rsa.apigate.test'], challenges: store });
    const { createPrivateKey } = await import('node:crypto');
    expect(createPrivateKey(accountKeyPem).asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(new X509Certificate(certificate.certPem).publicKey.asymmetricKeyType).toBe('rsa');
    await rsa.close();
    const ec = await make();
    const got = await ec.obtain({ domains: ['ec.apigate.test'], challenges: store });
    expect(createPrivateKey(got.accountKeyPem).asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    await ec.close();
  });

  it('refuses a name the CA will not issue for as final, naming it', async () => {
    const tls = await make();
    const err = await rejectionOf(tls.obtain({ domains: ['bad_name.apigate.test'], challenges: store }), 'obtain for an invalid name');
    expect(err).toBeInstanceOf(ProviderError);
    expect(isRetryable(err)).toBe(false);
    expect(err.message).toMatch(/bad_name\.apigate\.test/);
    expect((err as ProviderError).code).toMatch(/^ACME_/);
    await tls.close();
  });

  it('refuses wildcard names (HTTP-01 cannot prove them) and unknown revocation reasons', async () => {
    const tls = await make();
    const err = await rejectionOf(tls.obtain({ domains: ['*.apigate.test'], challenges: store }), 'wildcard obtain');
    expect(err.message).toMatch(/\*\.apigate\.test.*DNS-01/);
    const { certificate } = await tls.obtain({ domains: ['reason.apigate.test'], challenges: store });
    const bad = await rejectionOf(tls.revoke(certificate, 'because'), 'revoke with an unknown reason');
    expect(bad.message).toMatch(/unknown reason "because"/);
    await tls.close();
  });

  it('reports a rate limit as retryable with its Retry-After, without sleeping on it', async () => {
    const limiter = createServer((_req, res) => {
      res.writeHead(429, { 'content-type': 'application/problem+json', 'retry-after': '3600' });
      res.end(JSON.stringify({ type: 'urn:ietf:params:acme:error:rateLimited', detail: 'too many certificates for apigate.test' }));
    });
    const { url, close } = await listenLocally(limiter);
    const tls = await make({ directory: `${url}/directory` });
    const err = await rejectionOf(tls.obtain({ domains: ['apigate.test'], challenges: store }), 'obtain while rate limited');
    await close();
    expect(isRetryable(err)).toBe(true);
    expect(err.message).toMatch(/HTTP 429.*retry after 3600/);
    const health = await tls.check(AbortSignal.timeout(10_000));
    expect(health.status).toBe('error');
    await tls.close();
  });

  it('says why when the ACME server is unreachable or its certificate is not trusted, retryable only for the first', async () => {
    const down = await make({ directory: 'https://127.0.0.1:1/dir' });
    const err = await rejectionOf(down.obtain({ domains: ['apigate.test'], challenges: store }), 'obtain with the CA down');
    expect(isRetryable(err)).toBe(true);
    expect(err.message).toMatch(/cannot reach the ACME server at https:\/\/127\.0\.0\.1:1\/dir.*ECONNREFUSED/);
    const health = await down.check(AbortSignal.timeout(10_000));
    expect(health).toMatchObject({ status: 'error' });
    expect(health.error).toMatch(/ECONNREFUSED/);
    await down.close();

    const untrusted = (await createForTest(provider, { directory: pebble.directory })).provider;
    const refused = await rejectionOf(untrusted.obtain({ domains: ['apigate.test'], challenges: store }), 'obtain from an untrusted CA');
    expect(isRetryable(refused)).toBe(false);
    expect(refused.message).toMatch(/self-signed certificate.*TLS_ACME_CA_FILE/);
    const h = await untrusted.check(AbortSignal.timeout(10_000));
    expect(h.status).toBe('error');
    expect(h.error).toMatch(/certificate/i);
    await untrusted.close();
  });

  it('rejects a CA file that is missing or holds no certificate, naming the setting', async () => {
    await expect(make({ caFile: '/nonexistent/ca.pem' })).rejects.toThrow(/TLS_ACME_CA_FILE \(setting tls\.acme\.ca_file\): cannot read/);
    const notPem = path.join(path.dirname(pebble.caFile), 'not-a-cert.txt');
    writeFileSync(notPem, 'hello');
    await expect(make({ caFile: notPem })).rejects.toThrow(/holds no PEM certificate/);
  });

  it("defaults to the Let's Encrypt production directory", () => {
    expect(provider.config.parse({}).directory).toBe('https://acme-v02.api.letsencrypt.org/directory');
    expect(provider.env).toMatchObject({ email: 'TLS_ACME_EMAIL', directory: 'TLS_ACME_DIRECTORY', caFile: 'TLS_ACME_CA_FILE' });
  });
});
