import { spawn } from 'node:child_process';
import { connect } from 'node:tls';
import { type Pebble, startPebble } from '@apigate/provider-testkit';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BIN, cleanEnv, cli, tempDir } from './helpers.js';

let pebble: Pebble;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  pebble = await startPebble();
  env = cleanEnv({
    APIGATE_DATA_DIR: tempDir('certs'),
    CACHE_PROVIDER: 'memory',
    QUEUE_PROVIDER: 'memory',
    TLS_ACME_ENABLED: 'true',
    TLS_ACME_EMAIL: 'ops@apigate.test',
    TLS_ACME_DIRECTORY: pebble.directory,
    TLS_ACME_CA_FILE: pebble.caFile,
  });
}, 60_000);
afterAll(() => pebble?.close());

describe('apigate certs', () => {
  it('obtain answers the challenges itself with --http-port, prints progress and JSON; list shows the certificate', async () => {
    const r = await cli(['certs', 'obtain', 'cli.apigate.test', '--http-port', String(pebble.httpPort), '--json'], env);
    expect(r.stderr).toContain('ordering a certificate for cli.apigate.test');
    expect(r.code).toBe(0);
    const got = JSON.parse(r.stdout) as { domains: string[]; serial: string; daysLeft: number };
    expect(got.domains).toEqual(['cli.apigate.test']);
    expect(got.daysLeft).toBeGreaterThan(30);

    const list = await cli(['certs', 'list', '--json'], env);
    expect(list.code).toBe(0);
    expect((JSON.parse(list.stdout) as { items: { serial: string }[] }).items.map((i) => i.serial)).toContain(got.serial);
    const text = await cli(['certs', 'list'], env);
    expect(text.stdout).toMatch(/^DOMAINS\s+SERIAL/);
    expect(text.stdout).toContain(got.serial);
  }, 60_000);

  it('obtain without a TLS provider says how to enable one', async () => {
    const r = await cli(['certs', 'obtain', 'x.apigate.test'], { ...env, TLS_ACME_ENABLED: 'false' });
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(
      'apigate: no TLS provider is enabled; set TLS_ACME_ENABLED=true and TLS_ACME_EMAIL (see the provider-acme README)',
    );
  });

  it('serve obtains missing certificates and serves them on the HTTPS listener', async () => {
    const child = spawn(process.execPath, [BIN, 'serve', '--port', String(pebble.httpPort), '--host', '127.0.0.1'], {
      env: { ...env, APIGATE_TLS_DOMAINS: 'serve.apigate.test,www.serve.apigate.test', APIGATE_HTTPS_PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number>((r) => child.on('close', (code) => r(code ?? -1)));
    try {
      const port = await vi.waitFor(
        () => {
          const m = /apigate listening on https:\/\/127\.0\.0\.1:(\d+)/.exec(out);
          if (!m) throw new Error(`no HTTPS listener yet:\n${out}`);
          return Number(m[1]);
        },
        { timeout: 60_000, interval: 100 },
      );
      expect(out).toContain('obtained a certificate for serve.apigate.test,www.serve.apigate.test');
      const roots = await pebble.roots();
      const served = await new Promise<{ authorized: boolean; san: string }>((resolve, reject) => {
        const s = connect({ host: '127.0.0.1', port, servername: 'www.serve.apigate.test', ca: roots }, () => {
          resolve({ authorized: s.authorized, san: s.getPeerCertificate().subjectaltname ?? '' });
          s.end();
        });
        s.once('error', reject);
      });
      expect(served.authorized).toBe(true);
      expect(served.san).toContain('DNS:www.serve.apigate.test');

      const list = await cli(['certs', 'list', '--json'], env);
      expect((JSON.parse(list.stdout) as { items: { domains: string[] }[] }).items.map((i) => i.domains.join(','))).toContain(
        'serve.apigate.test,www.serve.apigate.test',
      );
    } finally {
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
  }, 90_000);
});
