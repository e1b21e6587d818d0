import 'reflect-metadata';
import { EventEmitter } from 'node:events';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { container as rootContainer, type DependencyContainer } from 'tsyringe';
import type { Logger } from 'pino';
import { CAPABILITIES, type CapabilityName, type KernelEvent, type ProviderInstance } from './capabilities/common.js';
import type { CapabilityMap } from './capabilities/index.js';
import { type Env, type FieldSource, resolveProviderConfig, type Selection, selectProviders, type SettingsReader, emptySettings } from './config.js';
import type { AnyProviderDefinition } from './define-provider.js';
import type { PluginCatalog } from './discovery.js';
import { ApigateError, ConfigErrors, PluginError } from './errors.js';
import { aggregateHealth, type HealthReport, type HealthTarget } from './health.js';
import { instrument, type ProviderMetrics } from './instrument.js';
import { silentLogger } from './logger.js';
import { redact, registerSecrets } from './secrets.js';
import { KernelToken, type Resolved, Tokens } from './tokens.js';

export interface KernelOptions {
  catalog: PluginCatalog;
  env?: Env;
  settings?: SettingsReader;
  logger?: Logger;
  /** Root folder for provider data; each provider gets `<dataDir>/providers/<capability>-<name>`. */
  dataDir: string;
  /**
   * Deployment defaults by setting key (e.g. `queue.redis.prefix`): used for a field when neither
   * its env var nor its setting is set, instead of the schema default (the app derives key prefixes
   * from the database's install id here).
   */
  defaults?: Readonly<Record<string, string>>;
  /** Build only these capabilities (CLI commands that need one); default all. */
  only?: readonly CapabilityName[];
  healthTimeoutMs?: number;
  /** A container to register into (a child of tsyringe's root by default). */
  container?: DependencyContainer;
}

export interface ActiveProvider {
  capability: CapabilityName;
  name: string;
  definition: AnyProviderDefinition;
  /** The provider's own object (health checks and close go here). */
  instance: ProviderInstance;
  /** The instrumented wrapper callers get from the container. */
  proxy: ProviderInstance;
  sources: Record<string, FieldSource>;
  metrics: ProviderMetrics;
  secrets: readonly string[];
}

export interface KernelEvents {
  'provider.error': [Extract<KernelEvent, { type: 'provider.error' }>];
  'provider.call': [Extract<KernelEvent, { type: 'provider.call' }>];
}

/** The running kernel: selected providers, built, configured, instrumented and registered. */
export class Kernel {
  readonly events = new EventEmitter<KernelEvents>();
  private closed = false;

  constructor(
    readonly container: DependencyContainer,
    readonly active: readonly ActiveProvider[],
    readonly selections: readonly Selection[],
    private readonly healthTimeoutMs: number,
  ) {}

  /** The instrumented instance serving a capability; throws when it is disabled. */
  get<C extends CapabilityName>(capability: C): Resolved<C> {
    if (!this.container.isRegistered(Tokens[capability])) {
      throw new ApigateError('CAPABILITY_DISABLED', `capability ${capability} has no provider selected`);
    }
    return this.container.resolve(Tokens[capability]);
  }

  tryGet<C extends CapabilityName>(capability: C): Resolved<C> | undefined {
    return this.container.isRegistered(Tokens[capability]) ? this.container.resolve(Tokens[capability]) : undefined;
  }

  health(only?: readonly CapabilityName[]): Promise<HealthReport> {
    const targets: HealthTarget[] = this.active.map((a) => ({
      capability: a.capability,
      provider: a.name,
      instance: a.instance,
      secrets: a.secrets,
    }));
    return aggregateHealth(targets, { timeoutMs: this.healthTimeoutMs, ...(only ? { only } : {}) });
  }

  metrics(): Record<string, ProviderMetrics> {
    return Object.fromEntries(this.active.map((a) => [`${a.capability}/${a.name}`, a.metrics]));
  }

  /** Closes every provider (in reverse order of creation); safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await closeAll(this.active.map((a) => a.instance));
  }
}

async function closeAll(instances: ProviderInstance[]): Promise<void> {
  for (const i of [...instances].reverse()) {
    await i.close().catch(() => undefined);
  }
}

/**
 * Selects, loads, configures and creates every provider, then registers each under its token.
 * All configuration problems are collected and thrown together as ConfigErrors; if any
 * provider fails to start, the ones already started are closed (nothing half-started).
 */
export async function createKernel(opts: KernelOptions): Promise<Kernel> {
  const env = opts.env ?? process.env;
  const settings = opts.settings ?? emptySettings;
  const logger = opts.logger ?? silentLogger();
  const wanted = opts.only ?? CAPABILITIES;

  const problems: ApigateError[] = [];
  const selections: Selection[] = [];
  const plan: { selection: Selection; def: AnyProviderDefinition }[] = [];
  for (const capability of wanted) {
    let selection: Selection;
    try {
      selection = selectProviders(capability, env, settings);
    } catch (err) {
      problems.push(err as ApigateError);
      continue;
    }
    selections.push(selection);
    for (const name of selection.names) {
      try {
        plan.push({ selection, def: await opts.catalog.load(capability, name) });
      } catch (err) {
        if (err instanceof PluginError && err.kind === 'unknown-provider') {
          const where =
            selection.source === 'default'
              ? `${capability} defaults to "${name}" (set ${capability.toUpperCase()}_PROVIDER to choose another)`
              : `${selection.origin}=${name}`;
          problems.push(new PluginError('unknown-provider', name, `${where}: ${err.message}`));
        } else problems.push(err as ApigateError);
      }
    }
  }

  const resolved = plan.map(({ def }) => {
    try {
      return resolveProviderConfig(def, env, settings, opts.defaults);
    } catch (errs) {
      problems.push(...(Array.isArray(errs) ? errs : [errs as ApigateError]));
      return undefined;
    }
  });
  if (problems.length) throw new ConfigErrors(problems);

  const container = opts.container ?? rootContainer.createChildContainer();
  const events = new EventEmitter<KernelEvents>();
  const emit = (e: KernelEvent) => {
    if (e.type === 'provider.error') events.emit('provider.error', e);
    else events.emit('provider.call', e);
  };

  const active: ActiveProvider[] = [];
  try {
    for (const [i, { def }] of plan.entries()) {
      const r = resolved[i]!;
      // From here on every error, log line and health answer in this process masks them.
      registerSecrets(r.secretValues);
      const dataDir = path.join(opts.dataDir, 'providers', `${def.capability}-${def.name}`);
      await mkdir(dataDir, { recursive: true });
      const child = logger.child({ capability: def.capability, provider: def.name });
      let raw: ProviderInstance;
      try {
        raw = (await def.create(r.config as never, { capability: def.capability, provider: def.name, logger: child, dataDir, emit })) as ProviderInstance;
      } catch (cause) {
        throw new ApigateError(
          'PROVIDER_START_FAILED',
          `${def.capability}/${def.name} failed to start: ${redact((cause as Error)?.message ?? String(cause), r.secretValues)}`,
          { cause },
        );
      }
      const { proxy, metrics } = instrument(raw, { capability: def.capability, provider: def.name, secrets: r.secretValues, emit });
      active.push({ capability: def.capability, name: def.name, definition: def, instance: raw, proxy, sources: r.sources, metrics, secrets: r.secretValues });
    }
  } catch (err) {
    await closeAll(active.map((a) => a.instance));
    throw err;
  }

  for (const capability of wanted) {
    const mine = active.filter((a) => a.capability === capability);
    if (capability === 'oauth') {
      container.register(Tokens.oauth, { useValue: new Map(mine.map((a) => [a.name, a.proxy as CapabilityMap['oauth']])) });
    } else if (mine.length === 1) {
      container.register(Tokens[capability] as never, { useValue: mine[0]!.proxy });
    }
  }

  const kernel = new Kernel(container, active, selections, opts.healthTimeoutMs ?? 3000);
  // Route provider events through the kernel's public emitter.
  events.on('provider.error', (e) => kernel.events.emit('provider.error', e));
  events.on('provider.call', (e) => kernel.events.emit('provider.call', e));
  container.register(KernelToken, { useValue: kernel });
  for (const a of active) logger.info({ capability: a.capability, provider: a.name }, `${a.capability} served by ${a.name}`);
  return kernel;
}
