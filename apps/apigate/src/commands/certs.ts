import {
  CertificateManager,
  CertificateStore,
  type RunningServer,
  type Store,
  type StoredCertificate,
  startChallengeServer,
} from '@apigate/gateway';
import type { Kernel, Logger } from '@apigate/kernel';
import type { Command } from 'commander';
import { print, printJson, table } from '../output.js';
import { openRuntime, parsePort } from '../runtime.js';
import { CliError, withJson } from './common.js';
import { withKernel } from './queue.js';

/** The selected TLS provider, or a one-line error saying how to enable one. */
export function tlsManager(kernel: Kernel, store: Store, logger: Logger): CertificateManager {
  const tls = kernel.tryGet('tls');
  if (!tls) throw new CliError('no TLS provider is enabled; set TLS_ACME_ENABLED=true and TLS_ACME_EMAIL (see the provider-acme README)');
  const cache = kernel.tryGet('cache');
  if (!cache) throw new CliError('ACME challenges are kept in the cache, but no cache provider is selected (CACHE_PROVIDER=none)');
  return new CertificateManager({ store, tls, cache, logger });
}

function summary(c: StoredCertificate, now = Date.now()) {
  return {
    domains: c.domains,
    serial: c.serialNumber,
    issuer: c.issuer,
    notBefore: c.notBefore.toISOString(),
    notAfter: c.notAfter.toISOString(),
    daysLeft: Math.floor((c.notAfter.getTime() - now) / 86_400_000),
  };
}

export function registerCerts(program: Command): void {
  const certs = program
    .command('certs')
    .description('TLS certificates obtained over ACME (HTTP-01), stored encrypted and served by apigate serve');

  withJson(
    certs
      .command('obtain')
      .description('order a certificate covering the given names now and store it')
      .argument('<domain...>', 'names the certificate covers; each must reach this gateway on port 80')
      .option(
        '--http-port <port>',
        'answer the challenges from this process on this port (when no apigate serve sharing the cache answers them, e.g. with the memory cache)',
      ),
  ).action(async (domains: string[], o: { json?: boolean; httpPort?: string }) =>
    withKernel(['cache', 'tls'], async (rt, kernel) => {
      const manager = tlsManager(kernel, rt.store, rt.logger);
      const shared = kernel.selected('cache')?.features.shared === true;
      // Progress goes to stderr with --json so stdout stays one JSON document.
      const progress = (line: string) => (o.json ? process.stderr.write(`${line}\n`) : print(line));
      let listener: RunningServer | undefined;
      if (o.httpPort !== undefined) {
        listener = await startChallengeServer({
          cache: kernel.get('cache'),
          port: parsePort(o.httpPort, '--http-port'),
          host: process.env.APIGATE_HOST ?? '0.0.0.0',
        });
        progress(`answering ACME challenges on ${listener.url}/.well-known/acme-challenge/`);
      } else if (!shared) {
        progress(
          'note: the cache is not shared, so only this process sees the challenge answers; pass --http-port unless a server answers them',
        );
      }
      try {
        const cert = await manager.obtain(domains, progress);
        if (o.json) printJson(summary(cert));
      } finally {
        await listener?.close();
      }
    }),
  );

  withJson(certs.command('list').description('stored certificates, soonest expiry first')).action(async (o: { json?: boolean }) => {
    const rt = await openRuntime();
    try {
      const rows = (await new CertificateStore(rt.store).all())
        .sort((a, b) => a.notAfter.getTime() - b.notAfter.getTime())
        .map((c) => summary(c));
      if (o.json) return printJson({ items: rows });
      if (rows.length === 0) return print('no certificates stored; obtain one with apigate certs obtain <domain...>');
      print(
        table(
          rows.map((r) => ({ ...r, domains: r.domains.join(',') })),
          ['domains', 'serial', 'notAfter', 'daysLeft', 'issuer'],
        ),
      );
    } finally {
      await rt.close();
    }
  });
}
