import { X509Certificate } from 'node:crypto';
import { get as httpsGet } from 'node:https';
import { connect } from 'node:tls';
import { type Kernel, silentLogger } from '@apigate/kernel';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertificateManager, createHttpApp, parseTlsDomains, type RunningServer, schema, type Store, startServer } from '../src/index.js';
import { CacheChallengeStore } from '../src/tls/challenges.js';
import { type AcmeSetup, startAcmeSetup } from './helpers/acme.js';

// One Pebble, store, kernel and gateway HTTP server (on the port Pebble dials for HTTP-01) for the file.
let setup: AcmeSetup;
let store: Store;
let kernel: Kernel;
let http: RunningServer;
let roots: string[];
let clock: Date | undefined;
let manager: CertificateManager;

beforeAll(async () => {
  setup = await startAcmeSetup('tls');
  ({ store, kernel, http, roots } = setup);
  manager = new CertificateManager({
    store,
    tls: kernel.get('tls'),
    cache: kernel.get('cache'),
    logger: silentLogger(),
    now: () => clock ?? new Date(),
  });
}, 60_000);

afterAll(() => setup?.close());

describe('GET /.well-known/acme-challenge/:token', () => {
  it('answers a pending key authorization as text/plain from the cache, 404 otherwise', async () => {
    const challenges = new CacheChallengeStore(kernel.get('cache'));
    await challenges.set('tok_abc-123', 'tok_abc-123.thumbprint');
    const res = await fetch(`${http.url}/.well-known/acme-challenge/tok_abc-123`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await res.text()).toBe('tok_abc-123.thumbprint');
    await challenges.delete('tok_abc-123');
    expect((await fetch(`${http.url}/.well-known/acme-challenge/tok_abc-123`)).status).toBe(404);
    expect((await fetch(`${http.url}/.well-known/acme-challenge/not%20a%20token`)).status).toBe(404);
  });
});

describe('CertificateManager (Pebble validating through the gateway)', () => {
  it('obtains a certificate through the challenge route and stores its key encrypted', async () => {
    const lines: string[] = [];
    const cert = await manager.obtain(['WWW.gw.apigate.test', 'gw.apigate.test'], (l) => lines.push(l));
    expect(cert.domainsKey).toBe('gw.apigate.test,www.gw.apigate.test');
    expect(lines[0]).toContain('ordering a certificate for gw.apigate.test, www.gw.apigate.test');
    expect(lines.at(-1)).toContain(`stored certificate ${cert.serialNumber}`);
    const leaf = new X509Certificate(cert.certPem);
    expect(leaf.checkHost('www.gw.apigate.test')).toBe('www.gw.apigate.test');
    expect(leaf.checkPrivateKey((await import('node:crypto')).createPrivateKey(cert.keyPem))).toBe(true);

    const raw = store.db.select().from(schema.certificates).where(eq(schema.certificates.domainsKey, cert.domainsKey)).get()!;
    expect(raw.keyPem).toMatch(/^v1:/);
    expect(raw.keyPem).not.toContain('PRIVATE KEY');
    expect(raw.serial).toBe(cert.serialNumber);
    const account = store.db.select().from(schema.meta).where(eq(schema.meta.key, 'tls.acme.account_key')).get()!;
    expect(account.value).toMatch(/^v1:/);
    expect(await manager.certificates.accountKey()).toContain('PRIVATE KEY');

    expect((await manager.certificates.all()).map((c) => [c.domainsKey, c.serialNumber])).toContainEqual([
      cert.domainsKey,
      cert.serialNumber,
    ]);
  });

  it('serves the stored certificate over HTTPS, chosen by SNI', async () => {
    const cert =
      (await manager.certificates.get('gw.apigate.test,www.gw.apigate.test')) ??
      (await manager.obtain(['gw.apigate.test', 'www.gw.apigate.test']));
    const https = await startServer({
      app: createHttpApp({ kernel, store, logger: silentLogger() }),
      port: 0,
      host: '127.0.0.1',
      tls: { SNICallback: manager.sniCallback },
    });
    try {
      expect(https.url).toMatch(/^https:/);
      const served = await new Promise<{ serial: string; authorized: boolean }>((resolve, reject) => {
        const s = connect({ host: '127.0.0.1', port: https.port, servername: 'www.gw.apigate.test', ca: roots }, () => {
          resolve({ serial: s.getPeerCertificate().serialNumber, authorized: s.authorized });
          s.end();
        });
        s.once('error', reject);
      });
      expect(served.authorized).toBe(true);
      expect(served.serial.toLowerCase().replace(/^0+/, '')).toBe(cert.serialNumber.toLowerCase().replace(/^0+/, ''));

      // The same app answers over HTTPS.
      const status = await new Promise<number>((resolve, reject) => {
        httpsGet(
          { host: '127.0.0.1', port: https.port, servername: 'gw.apigate.test', path: '/.well-known/acme-challenge/none', ca: roots },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        ).once('error', reject);
      });
      expect(status).toBe(404);

      // A name with no certificate ends the handshake.
      await expect(
        new Promise((resolve, reject) => {
          const s = connect({ host: '127.0.0.1', port: https.port, servername: 'unknown.apigate.test', ca: roots }, () => resolve(s.end()));
          s.once('error', reject);
        }),
      ).rejects.toThrow();
    } finally {
      await https.close();
    }
  });

  it('obtains missing certificates and renews only those within 30 days of expiry', async () => {
    const first = await manager.obtain(['renew.apigate.test']);
    const nothing = await manager.ensure([['renew.apigate.test'], ['gw.apigate.test', 'www.gw.apigate.test']]);
    expect(nothing.obtained.filter((c) => c.domainsKey === 'renew.apigate.test')).toEqual([]);

    const missing = await manager.ensure([['new.apigate.test']]);
    expect(missing.obtained.map((c) => c.domainsKey)).toContain('new.apigate.test');

    // Move the clock to ten days before this certificate expires: it is now due.
    clock = new Date(first.notAfter.getTime() - 10 * 86_400_000);
    try {
      expect(manager.isDue((await manager.certificates.get('renew.apigate.test'))!)).toBe(true);
      const renewed = await manager.ensure([]);
      const again = renewed.obtained.find((c) => c.domainsKey === 'renew.apigate.test');
      expect(again?.serialNumber).toBeDefined();
      expect(again!.serialNumber).not.toBe(first.serialNumber);
      expect((await manager.certificates.get('renew.apigate.test'))!.serialNumber).toBe(again!.serialNumber);
      expect(renewed.failed).toEqual([]);
    } finally {
      clock = undefined;
    }
  });

  it('parses APIGATE_TLS_DOMAINS into certificate name sets', () => {
    expect(parseTlsDomains('a.example.com,www.a.example.com; b.example.com')).toEqual([
      ['a.example.com', 'www.a.example.com'],
      ['b.example.com'],
    ]);
    expect(parseTlsDomains(undefined)).toEqual([]);
  });
});
