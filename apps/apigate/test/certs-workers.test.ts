// Run-once certificate ordering (issue 13) through the built binary: `serve --workers 2` on a
// shared Redis cache with APIGATE_TLS_DOMAINS orders the certificate once (one worker takes the
// order lock, the other loads what it stored) and both workers serve it over HTTPS.
import { connect } from 'node:tls';
import { type Pebble, startPebble } from '@apigate/provider-testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, cleanEnv, cli, serveWorkers, tempDir, waitFor } from './helpers.js';

let pebble: Pebble;
beforeAll(async () => {
  pebble = await startPebble();
}, 60_000);
afterAll(() => pebble?.close());

describe('serve --workers 2 with TLS domains', () => {
  it('orders the certificate once and both workers serve it', async () => {
    const env = cleanEnv({
      APIGATE_DATA_DIR: tempDir('certs-workers'),
      CACHE_PROVIDER: 'redis',
      QUEUE_PROVIDER: 'redis',
      REDIS_URL: 'redis://127.0.0.1:6379',
      TLS_ACME_ENABLED: 'true',
      TLS_ACME_EMAIL: 'ops@apigate.test',
      TLS_ACME_DIRECTORY: pebble.directory,
      TLS_ACME_CA_FILE: pebble.caFile,
      APIGATE_TLS_DOMAINS: 'workers.apigate.test,www.workers.apigate.test',
      APIGATE_HTTPS_PORT: '0',
    });
    // Pebble dials the HTTP port for the challenges: the workers' shared listener.
    const served = await serveWorkers(env, 2, BIN, pebble.httpPort);
    try {
      const https = () =>
        served
          .logs()
          .split('\n')
          .filter((l) => /apigate listening on https:/.test(l));
      await waitFor('both workers on HTTPS', () => https().length === 2, 90_000);
      const out = served.logs();
      const lines = (re: RegExp) => out.split('\n').filter((l) => re.test(l));
      expect(lines(/obtained a certificate for workers\.apigate\.test,www\.workers\.apigate\.test/), out).toHaveLength(1);
      expect(
        lines(/another instance is ordering the certificate for workers\.apigate\.test, www\.workers\.apigate\.test; waiting for it/),
      ).toHaveLength(1);
      expect(
        lines(/loaded certificate \S+ for workers\.apigate\.test, www\.workers\.apigate\.test, stored by another instance/),
      ).toHaveLength(1);

      const port = Number(/apigate listening on https:\/\/127\.0\.0\.1:(\d+)/.exec(https()[0]!)![1]);
      const roots = await pebble.roots();
      // New connections go to the workers in turn: a few handshakes reach both, each served the one certificate.
      const serials = new Set<string>();
      for (let i = 0; i < 4; i++) {
        serials.add(
          await new Promise<string>((resolve, reject) => {
            const s = connect(
              { host: '127.0.0.1', port, servername: i % 2 ? 'www.workers.apigate.test' : 'workers.apigate.test', ca: roots },
              () => {
                if (!s.authorized) reject(new Error(`not authorized: ${s.authorizationError}`));
                resolve(s.getPeerCertificate().serialNumber);
                s.end();
              },
            );
            s.once('error', reject);
          }),
        );
      }
      expect(serials.size).toBe(1);
      const list = JSON.parse((await cli(['certs', 'list', '--json'], env)).stdout) as { items: { domains: string[] }[] };
      expect(list.items.map((c) => c.domains.join(','))).toEqual(['workers.apigate.test,www.workers.apigate.test']);
    } finally {
      served.child.kill('SIGTERM');
    }
    expect(await served.exited).toBe(0);
  }, 180_000);
});
