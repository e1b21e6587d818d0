// Starts Pebble (Let's Encrypt's test CA, Debian package `pebble`) and pebble-challtestsrv as its
// DNS server on free ports, for one test file. scripts/services.mjs installs the package when missing.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Agent, request } from 'node:https';
import { freePort } from './redis-server.js';
import { selfSignedCertificate } from './self-signed.js';

export interface Pebble {
  directory: string;
  /** The CA file the provider trusts for Pebble's own HTTPS (TLS_ACME_CA_FILE). */
  caFile: string;
  /** Port Pebble's VA dials for HTTP-01: the challenge server listens here. */
  httpPort: number;
  /** Pebble's issuing root (changes per run), for chain checks. */
  roots(): Promise<string[]>;
  close(): Promise<void>;
}

function waitForLine(child: ChildProcess, pattern: RegExp, what: string, log: () => string): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start within 30 s:\n${log()}`)), 30_000);
    const onData = () => {
      if (pattern.test(log())) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${code}:\n${log()}`));
    });
  });
}

function startProcess(cmd: string, args: string[], env: NodeJS.ProcessEnv, ready: RegExp) {
  const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return { child, ready: waitForLine(child, ready, cmd, () => out) };
}

const stop = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });

export async function startPebble(): Promise<Pebble> {
  const dir = mkdtempSync(path.join(tmpdir(), 'apigate-pebble-'));
  // Pebble's HTTPS certificate, self-signed for 127.0.0.1; the provider trusts it through caFile.
  const { certFile: caFile, keyFile } = selfSignedCertificate({
    commonName: 'pebble',
    altNames: ['DNS:localhost', 'IP:127.0.0.1'],
    days: 2,
    dir,
  });
  const [acmePort, mgmtPort, httpPort, dnsPort, ctsMgmtPort, tlsPort] = (await Promise.all(Array.from({ length: 6 }, freePort))) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  writeFileSync(
    path.join(dir, 'pebble.json'),
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${mgmtPort}`,
        certificate: caFile,
        privateKey: keyFile,
        httpPort,
        tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
      },
    }),
  );
  // Every name resolves to 127.0.0.1 (IPv4 only), so the VA reaches the test's challenge server.
  const dns = startProcess(
    'pebble-challtestsrv',
    [
      '-dns01',
      `127.0.0.1:${dnsPort}`,
      '-http01',
      '',
      '-https01',
      '',
      '-tlsalpn01',
      '',
      '-management',
      `127.0.0.1:${ctsMgmtPort}`,
      '-defaultIPv6',
      '',
    ],
    process.env,
    /Starting management server/,
  );
  // PEBBLE_VA_NOSLEEP only drops Pebble's random validation delay; challenges are still fetched and checked.
  const env: NodeJS.ProcessEnv = { ...process.env, PEBBLE_VA_NOSLEEP: '1' };
  delete env.PEBBLE_VA_ALWAYS_VALID;
  const pebble = startProcess(
    'pebble',
    ['-config', path.join(dir, 'pebble.json'), '-dnsserver', `127.0.0.1:${dnsPort}`],
    env,
    /Listening on/,
  );
  const close = async () => {
    await Promise.all([stop(pebble.child), stop(dns.child)]);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await Promise.all([dns.ready, pebble.ready]);
  } catch (e) {
    await close();
    throw e;
  }
  const agent = new Agent({ ca: readFileSync(caFile, 'utf8') });
  return {
    directory: `https://127.0.0.1:${acmePort}/dir`,
    caFile,
    httpPort,
    roots: () =>
      new Promise((resolve, reject) => {
        request(`https://127.0.0.1:${mgmtPort}/roots/0`, { agent }, (res) => {
          let body = '';
          res.on('data', (d) => (body += d));
          res.on('end', () => resolve([body]));
        })
          .on('error', reject)
          .end();
      }),
    close: async () => {
      agent.destroy();
      await close();
    },
  };
}
