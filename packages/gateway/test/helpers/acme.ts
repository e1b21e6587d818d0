import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createKernel, discoverPlugins, type Kernel, silentLogger } from '@apigate/kernel';
import acme from '@apigate/provider-acme';
import memoryCache from '@apigate/provider-memory-cache';
import { type Pebble, startPebble } from '@apigate/provider-testkit';
import { createHttpApp, openStore, type RunningServer, type Store, startServer } from '../../src/index.js';
import { KEY_A } from '../helpers.js';

export interface AcmeSetup {
  pebble: Pebble;
  /** Pebble's root certificates, for verifying what the HTTPS listener serves. */
  roots: string[];
  dataDir: string;
  store: Store;
  /** The memory cache (holding the HTTP-01 answers) and the ACME TLS provider pointed at Pebble. */
  kernel: Kernel;
  /** The gateway's HTTP listener on the port Pebble dials for HTTP-01. */
  http: RunningServer;
  close(): Promise<void>;
}

/** One Pebble, store, kernel and gateway HTTP server (answering Pebble's HTTP-01 challenges) for a test file. */
export async function startAcmeSetup(prefix: string): Promise<AcmeSetup> {
  const pebble = await startPebble();
  const roots = await pebble.roots();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), `apigate-gateway-${prefix}-`));
  const store = await openStore({ dataDir, secretKey: KEY_A });
  const kernel = await createKernel({
    catalog: await discoverPlugins({ builtins: [memoryCache, acme] }),
    env: {
      CACHE_PROVIDER: 'memory',
      TLS_ACME_ENABLED: 'true',
      TLS_ACME_DIRECTORY: pebble.directory,
      TLS_ACME_CA_FILE: pebble.caFile,
      TLS_ACME_EMAIL: 'ops@apigate.test',
    },
    settings: store.settings,
    dataDir,
    only: ['cache', 'tls'],
  });
  const http = await startServer({
    app: createHttpApp({ kernel, store, logger: silentLogger() }),
    port: pebble.httpPort,
    host: '127.0.0.1',
  });
  return {
    pebble,
    roots,
    dataDir,
    store,
    kernel,
    http,
    async close() {
      await http.close();
      await kernel.close();
      await store.close();
      await pebble.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
