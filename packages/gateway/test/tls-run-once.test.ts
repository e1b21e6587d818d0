// Several instances on one database and one cache (issue 13): for each set of names one
// certificate manager orders (it takes the order lock) and the others load what it stored; a
// certificate stored by another instance is served at the next handshake for its name.
import { connect } from 'node:tls';
import { createKernel, discoverPlugins, type Kernel, silentLogger } from '@apigate/kernel';
import memoryCache from '@apigate/provider-memory-cache';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertificateManager, createHttpApp, startServer, type Store } from '../src/index.js';
import { type AcmeSetup, startAcmeSetup } from './helpers/acme.js';

let setup: AcmeSetup;
let roots: string[];
let dataDir: string;
let store: Store;
let kernel: Kernel;
let clock: Date | undefined;
const lines: string[][] = [[], []];
let a: CertificateManager;
let b: CertificateManager;

beforeAll(async () => {
  setup = await startAcmeSetup('tls-once');
  ({ roots, dataDir, store, kernel } = setup);
  // Two managers, as two instances would have: one store, one cache (holding the order locks and the HTTP-01 answers).
  const manager = () =>
    new CertificateManager({
      store,
      tls: kernel.get('tls'),
      cache: kernel.get('cache'),
      logger: silentLogger(),
      now: () => clock ?? new Date(),
      orderPollMs: 100,
    });
  a = manager();
  b = manager();
}, 60_000);

afterAll(() => setup?.close());

/** The serial an HTTPS server with `manager`'s SNI callback presents for `servername`. */
async function servedSerial(manager: CertificateManager, servername: string): Promise<string> {
  const https = await startServer({
    app: createHttpApp({ kernel, store, logger: silentLogger() }),
    port: 0,
    host: '127.0.0.1',
    tls: { SNICallback: manager.sniCallback },
  });
  try {
    return await new Promise<string>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: https.port, servername, ca: roots }, () => {
        resolve(s.getPeerCertificate().serialNumber.toLowerCase().replace(/^0+/, ''));
        s.end();
      });
      s.once('error', reject);
    });
  } finally {
    await https.close();
  }
}
const norm = (serial: string) => serial.toLowerCase().replace(/^0+/, '');

describe('two certificate managers on one store and one cache', () => {
  it('order a missing certificate once: one obtains it, the other loads it', async () => {
    const [ra, rb] = await Promise.all([
      a.ensure([['once.apigate.test', 'www.once.apigate.test']], (l) => lines[0]!.push(l)),
      b.ensure([['www.once.apigate.test', 'once.apigate.test']], (l) => lines[1]!.push(l)),
    ]);
    const all = [ra, rb];
    expect(all.flatMap((r) => r.failed)).toEqual([]);
    expect(all.flatMap((r) => r.obtained)).toHaveLength(1);
    expect(all.flatMap((r) => r.loaded)).toHaveLength(1);
    const [got] = all.flatMap((r) => r.obtained);
    const [loaded] = all.flatMap((r) => r.loaded);
    expect(loaded!.serialNumber).toBe(got!.serialNumber);
    const waiter = ra.loaded.length > 0 ? lines[0]! : lines[1]!;
    expect(waiter).toContain('another instance is ordering the certificate for once.apigate.test, www.once.apigate.test; waiting for it');
    expect(waiter.join('\n')).not.toContain('ordering a certificate for');
    // Both serve it.
    expect(await servedSerial(a, 'once.apigate.test')).toBe(norm(got!.serialNumber));
    expect(await servedSerial(b, 'www.once.apigate.test')).toBe(norm(got!.serialNumber));
  });

  it('a certificate another instance stored is served at the next handshake for its name', async () => {
    // b has read its snapshot and knows no certificate for the name.
    expect(await b.secureContext('late.apigate.test')).toBeUndefined();
    const t0 = Date.now();
    const { obtained } = await a.ensure([['late.apigate.test']]);
    expect(obtained).toHaveLength(1);
    // A missing name re-reads the store at most every 2 s.
    await new Promise((r) => setTimeout(r, Math.max(0, 2100 - (Date.now() - t0))));
    expect(await servedSerial(b, 'late.apigate.test')).toBe(norm(obtained[0]!.serialNumber));
  });

  it('renew a due certificate once: one orders, the other loads the renewed one', async () => {
    const before = (await a.certificates.get('late.apigate.test'))!;
    // Ten days before it expires: due on both.
    clock = new Date(before.notAfter.getTime() - 10 * 86_400_000);
    try {
      const [ra, rb] = await Promise.all([a.ensure([]), b.ensure([])]);
      const renewed = [...ra.obtained, ...rb.obtained].filter((c) => c.domainsKey === 'late.apigate.test');
      const loaded = [...ra.loaded, ...rb.loaded].filter((c) => c.domainsKey === 'late.apigate.test');
      expect(renewed).toHaveLength(1);
      expect(loaded.map((c) => c.serialNumber)).toEqual([renewed[0]!.serialNumber]);
      expect(renewed[0]!.serialNumber).not.toBe(before.serialNumber);
      expect([...ra.failed, ...rb.failed]).toEqual([]);
    } finally {
      clock = undefined;
    }
  });

  it('when the order of the instance holding the lock fails, the waiting one reports the set failed without ordering', async () => {
    // A cache of their own: the gateway's challenge route cannot answer from it, so Pebble's validation fails.
    const own = await createKernel({
      catalog: await discoverPlugins({ builtins: [memoryCache] }),
      env: { CACHE_PROVIDER: 'memory' },
      settings: store.settings,
      dataDir,
      only: ['cache'],
    });
    try {
      const manager = () =>
        new CertificateManager({ store, tls: kernel.get('tls'), cache: own.get('cache'), logger: silentLogger(), orderPollMs: 100 });
      const seen: string[][] = [[], []];
      const [ra, rb] = await Promise.all([
        manager().ensure([['fails.apigate.test']], (l) => seen[0]!.push(l)),
        manager().ensure([['fails.apigate.test']], (l) => seen[1]!.push(l)),
      ]);
      expect([ra.failed, rb.failed]).toEqual([['fails.apigate.test'], ['fails.apigate.test']]);
      expect([...ra.obtained, ...rb.obtained, ...ra.loaded, ...rb.loaded]).toEqual([]);
      // One of them ordered; the other only waited.
      const ordered = seen.filter((s) => s.some((l) => l.startsWith('ordering a certificate for fails.apigate.test')));
      const waited = seen.filter((s) => s.some((l) => l.includes('another instance is ordering the certificate for fails.apigate.test')));
      expect([ordered.length, waited.length]).toEqual([1, 1]);
      expect(await own.get('cache').has('tls:order-lock:fails.apigate.test')).toBe(false);
    } finally {
      await own.close();
    }
  }, 120_000);
});
