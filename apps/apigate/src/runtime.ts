import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DATABASE_URL_ENV, installPrefixDefaults, openStore, type Store } from '@apigate/gateway';
import {
  type AnyProviderDefinition,
  type CapabilityName,
  ConfigError,
  createKernel,
  discoverPlugins,
  type Env,
  type Kernel,
  type Logger,
  type PluginCatalog,
  PluginError,
  pluginPathsFromEnv,
  silentLogger,
} from '@apigate/kernel';

/** The app package's own folder (its package.json lists the first-party providers). */
export const APP_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export function appVersion(): string {
  return JSON.parse(readFileSync(path.join(APP_DIR, 'package.json'), 'utf8')).version;
}

export interface Runtime {
  env: Env;
  dataDir: string;
  store: Store;
  catalog: PluginCatalog;
  logger: Logger;
  close(): Promise<void>;
}

export interface RuntimeOptions {
  env?: Env;
  logger?: Logger;
  /** Folder to read the app's dependencies from (tests point it elsewhere). */
  appDir?: string;
}

/** Opens the store and discovers plugins: what every command needs before it does its own work. */
export async function openRuntime(opts: RuntimeOptions = {}): Promise<Runtime> {
  const env = opts.env ?? process.env;
  const logger = opts.logger ?? silentLogger();
  const dataDir = path.resolve(env.APIGATE_DATA_DIR?.trim() || './data');
  const catalog = await discoverPlugins({ appDir: opts.appDir ?? APP_DIR, pluginPaths: pluginPathsFromEnv(env.APIGATE_PLUGIN_PATH) });
  const secretKey = env.APIGATE_SECRET_KEY?.trim();
  // APIGATE_DATABASE_URL=postgres://... selects PostgreSQL (several instances share it); unset, SQLite in the data dir.
  const databaseUrl = env[DATABASE_URL_ENV]?.trim();
  const store = await openStore({ dataDir, logger, ...(secretKey ? { secretKey } : {}), ...(databaseUrl ? { databaseUrl } : {}) });
  return { env, dataDir, store, catalog, logger, close: () => store.close() };
}

/** Fails on any discovery problem: a broken plugin stops start-up with its own line, not a half-started server. */
export function assertNoPluginProblems(catalog: PluginCatalog): void {
  if (catalog.problems.length) throw new AggregateLinesError(catalog.problems.map((p) => p.message));
}

export async function startKernel(rt: Runtime, only?: readonly CapabilityName[]): Promise<Kernel> {
  return createKernel({
    catalog: rt.catalog,
    env: rt.env,
    settings: rt.store.settings,
    // Redis key and queue prefixes of this database unless set explicitly (deployments sharing a Redis).
    defaults: installPrefixDefaults(rt.store.installId),
    logger: rt.logger,
    dataDir: rt.dataDir,
    ...(only ? { only } : {}),
  });
}

/** Imports every discovered provider; import failures become problems instead of exceptions. */
export async function loadAllDefinitions(catalog: PluginCatalog): Promise<{ defs: AnyProviderDefinition[]; problems: PluginError[] }> {
  const defs: AnyProviderDefinition[] = [];
  const problems: PluginError[] = [];
  const seen = new Set<string>();
  for (const pkg of catalog.packages) {
    for (const p of pkg.provides) {
      const key = `${p.capability}/${p.name}`;
      if (seen.has(key)) continue;
      seen.add(key);
      try {
        defs.push(await catalog.load(p.capability, p.name));
      } catch (err) {
        if (err instanceof PluginError && err.kind === 'duplicate') continue; // already in catalog.problems
        problems.push(err instanceof PluginError ? err : new PluginError('import-failed', pkg.packageName, String(err)));
      }
    }
  }
  return { defs, problems };
}

/** Several one-line problems reported together. */
export class AggregateLinesError extends Error {
  constructor(readonly lines: string[]) {
    super(lines.join('\n'));
  }
}

export function parsePort(value: string | undefined, name: string, settingKey?: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    throw new ConfigError({
      field: 'port',
      envVar: name,
      settingKey: settingKey ?? 'server.port',
      expected: 'expected a port number from 0 to 65535',
    });
  }
  return n;
}
