import { EventEmitter } from 'node:events';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { CAPABILITIES, type CapabilityName, type KernelEvent, type ProviderInstance } from './capabilities/common.js';
import type { CapabilityMap, FeatureMap } from './capabilities/index.js';
import {
  type Env,
  type FieldSource,
  resolveProviderConfig,
  type Selection,
  selectProviders,
  type SettingsReader,
  emptySettings,
} from './config.js';
import type { AnyProviderDefinition } from './define-provider.js';
import { describeError } from './error-chain.js';
import type { PluginCatalog } from './discovery.js';
import { ApigateError, ConfigErrors, PluginError } from './errors.js';
import { aggregateHealth, type HealthReport, type HealthTarget } from './health.js';
import { instrument, type ProviderMetrics } from './instrument.js';
import { maskingLogger, silentLogger } from './logger.js';
import { redact, registerSecrets } from './secrets.js';

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
  /** How long `reconfigure()` lets calls already started on a replaced provider finish before closing it. Default 10000 ms. */
  drainTimeoutMs?: number;
}

/** What a capability's `get` returns: one instance, or a name->instance map for oauth. */
export type Resolved<C extends CapabilityName> = C extends 'oauth' ? ReadonlyMap<string, CapabilityMap['oauth']> : CapabilityMap[C];

export interface ActiveProvider {
  capability: CapabilityName;
  name: string;
  definition: AnyProviderDefinition;
  /** The provider's own object (health checks go here). */
  instance: ProviderInstance;
  /** The instrumented wrapper (what `get` forwards to while this provider serves). */
  proxy: ProviderInstance;
  sources: Record<string, FieldSource>;
  metrics: ProviderMetrics;
  secrets: readonly string[];
}

/** The provider serving a capability, with its feature flags typed by `FeatureMap`. */
export interface SelectedProvider<C extends CapabilityName> {
  capability: C;
  name: string;
  /** The definition's `features`, `{}` when it declares none. */
  features: Partial<FeatureMap[C]>;
  /** The provider's own object, for provider-specific extras (e.g. a dummy's test helpers). */
  instance: CapabilityMap[C];
  active: ActiveProvider;
}

/** What `reconfigure()` did, per capability. */
export interface ReconfigureReport {
  /** Providers rebuilt and swapped in, e.g. `email/log -> email/smtp` or `email/smtp` (same provider, new settings). */
  rebuilt: string[];
  /** Capabilities whose new settings failed (selection, validation or start): the old provider keeps serving. */
  failed: { capability: CapabilityName; message: string }[];
  /** Capabilities whose settings changed but that apply only at the next start. */
  restart: { capability: CapabilityName; reason: string }[];
}

/**
 * Capabilities `reconfigure()` rebuilds in a running process. Callers reach them only through
 * `get()` (a stable handle per capability), so a swap is seen by the next call. The queue is not
 * among them (its workers are bound to the instance they were registered on), nor TLS (certificates
 * are ordered and served per provider). Payment and OAuth take new settings for the same provider(s);
 * choosing another provider there changes routes (the payment webhook path, the sign-in buttons) and
 * waits for a restart.
 */
export const LIVE_CAPABILITIES: readonly CapabilityName[] = ['payment', 'email', 'cache', 'storage', 'notification', 'oauth'];
const SWITCHABLE: readonly CapabilityName[] = ['email', 'cache', 'storage', 'notification'];

const NO_FEATURES = Object.freeze({});

export interface KernelEvents {
  'provider.error': [Extract<KernelEvent, { type: 'provider.error' }>];
  'provider.call': [Extract<KernelEvent, { type: 'provider.call' }>];
}

/** One built provider plus what the kernel needs to compare, drain and close it. */
interface Built {
  active: ActiveProvider;
  /** The resolved config, serialised: a reconfigure rebuilds the provider when it differs. */
  configKey: string;
  /** Promise-returning calls started through the capability's handle and not settled yet. */
  inflight: number;
  drained?: () => void;
  /** Per method: the handle's counting wrapper (made once, like instrument's). */
  wrapped: Map<PropertyKey, unknown>;
}

interface BuildContext {
  catalog: PluginCatalog;
  env: Env;
  settings: SettingsReader;
  defaults: Readonly<Record<string, string>> | undefined;
  logger: Logger;
  dataDir: string;
  emit: (e: KernelEvent) => void;
}

/**
 * The running kernel: the selected providers, built, configured and instrumented, each reached
 * through `get(capability)`. A typed registry: `get` is typed by `CapabilityMap`, `selected` by
 * `FeatureMap`; there is nothing to inject (see the README's "Why no DI container").
 */
export class Kernel {
  readonly events = new EventEmitter<KernelEvents>();
  #closed = false;
  readonly #slots = new Map<CapabilityName, Built[]>();
  readonly #handles = new Map<CapabilityName, unknown>();
  /** The oauth handle: one Map, refilled in place when the providers are rebuilt. */
  readonly #oauth = new Map<string, CapabilityMap['oauth']>();
  #selections: Selection[];
  readonly #retiring = new Set<Promise<void>>();
  #reconfiguring: Promise<ReconfigureReport> | undefined;

  /** @internal Use `createKernel`. */
  constructor(
    built: readonly Built[],
    selections: readonly Selection[],
    private readonly wanted: readonly CapabilityName[],
    private readonly ctx: BuildContext,
    private readonly healthTimeoutMs: number,
    private readonly drainTimeoutMs: number,
  ) {
    this.#selections = [...selections];
    for (const capability of wanted)
      this.#fill(
        capability,
        built.filter((b) => b.active.capability === capability),
      );
  }

  /** The providers serving now, in capability order (a reconfigure may replace some). */
  get active(): readonly ActiveProvider[] {
    return CAPABILITIES.flatMap((c) => (this.#slots.get(c) ?? []).map((b) => b.active));
  }

  /** How each capability's providers were chosen (env, setting or default). */
  get selections(): readonly Selection[] {
    return this.#selections;
  }

  /**
   * The capability's instance (instrumented); throws when the capability has no provider.
   * The object is a stable handle: it forwards each call to the provider serving at that moment,
   * so holding it is safe across `reconfigure()`.
   */
  get<C extends CapabilityName>(capability: C): Resolved<C> {
    const handle = this.tryGet(capability);
    if (!handle) throw new ApigateError('CAPABILITY_DISABLED', `capability ${capability} has no provider selected`);
    return handle;
  }

  tryGet<C extends CapabilityName>(capability: C): Resolved<C> | undefined {
    // OAuth answers a map (empty when no provider is enabled) whenever the kernel built the capability.
    if (capability === 'oauth') return this.wanted.includes('oauth') ? (this.#oauth as unknown as Resolved<C>) : undefined;
    if (!this.#slots.get(capability)?.length) return undefined;
    let handle = this.#handles.get(capability);
    if (!handle) {
      handle = this.#handle(capability);
      this.#handles.set(capability, handle);
    }
    return handle as Resolved<C>;
  }

  /** The provider serving `capability` (the first one for oauth), its features typed; undefined when disabled. */
  selected<C extends CapabilityName>(capability: C): SelectedProvider<C> | undefined {
    const b = this.#slots.get(capability)?.[0];
    if (!b) return undefined;
    const a = b.active;
    return {
      capability,
      name: a.name,
      features: (a.definition.features ?? {}) as Partial<FeatureMap[C]>,
      instance: a.instance as CapabilityMap[C],
      active: a,
    };
  }

  /**
   * The features the provider serving `capability` declares (`selected(c).features` without
   * building the description: cheap enough to ask per request, as a reconfigure may switch it).
   */
  features<C extends CapabilityName>(capability: C): Partial<FeatureMap[C]> | undefined {
    const b = this.#slots.get(capability)?.[0];
    return b ? ((b.active.definition.features ?? NO_FEATURES) as Partial<FeatureMap[C]>) : undefined;
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

  /**
   * Re-reads the selection and config of every capability from the env and the settings reader
   * (call it after the settings snapshot was reloaded) and rebuilds the providers whose resolved
   * config changed, for the capabilities in `LIVE_CAPABILITIES`. A new provider is built first and
   * swapped in (the next call through `get` reaches it); the old one then gets up to `drainTimeoutMs`
   * for the calls it already started and is closed. New settings that fail keep the old provider and
   * are reported in `failed` (and logged). Calls are serialised.
   */
  reconfigure(): Promise<ReconfigureReport> {
    const run = async (): Promise<ReconfigureReport> => {
      await previous;
      return this.#reconfigure();
    };
    const previous = this.#reconfiguring?.catch(() => undefined);
    const next = run();
    this.#reconfiguring = next;
    return next;
  }

  /** Closes every provider (in reverse order of creation), after those being drained; safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#reconfiguring?.catch(() => undefined);
    for (const b of this.#all()) b.drained?.(); // stop waiting for drains: everything closes now
    await Promise.all(this.#retiring);
    await closeAll(this.#all().map((b) => b.active));
  }

  #all(): Built[] {
    return CAPABILITIES.flatMap((c) => this.#slots.get(c) ?? []);
  }

  #fill(capability: CapabilityName, built: Built[]): void {
    this.#slots.set(capability, built);
    if (capability === 'oauth') {
      this.#oauth.clear();
      for (const b of built) this.#oauth.set(b.active.name, this.#handle('oauth', b) as CapabilityMap['oauth']);
    }
  }

  /** A handle forwarding to the capability's current provider (or to `fixed`, one oauth provider). */
  #handle(capability: CapabilityName, fixed?: Built): object {
    const current = (): Built => {
      if (fixed) return this.#oauthCurrent(fixed);
      const b = this.#slots.get(capability)?.[0];
      if (!b) throw new ApigateError('CAPABILITY_DISABLED', `capability ${capability} has no provider selected`);
      return b;
    };
    return new Proxy(Object.create(null) as object, {
      get: (_t, prop) => {
        const b = current();
        const value = Reflect.get(b.active.proxy, prop);
        if (typeof value !== 'function' || prop === 'close' || prop === 'check') return value;
        let fn = b.wrapped.get(prop);
        if (!fn) {
          fn = countCalls(b, value as (...args: unknown[]) => unknown);
          b.wrapped.set(prop, fn);
        }
        return fn;
      },
      has: (_t, prop) => Reflect.has(current().active.proxy, prop),
    });
  }

  /** The oauth provider of the same name serving now (a rebuild replaces it). */
  #oauthCurrent(b: Built): Built {
    return this.#slots.get('oauth')?.find((x) => x.active.name === b.active.name) ?? b;
  }

  async #reconfigure(): Promise<ReconfigureReport> {
    const report: ReconfigureReport = { rebuilt: [], failed: [], restart: [] };
    const { logger } = this.ctx;
    for (const capability of this.wanted) {
      if (this.#closed) break;
      const old = this.#slots.get(capability) ?? [];
      const oldNames = old.map((b) => b.active.name);
      let plan: { def: AnyProviderDefinition; configKey: string }[];
      let selection: Selection;
      try {
        selection = selectProviders(capability, this.ctx.env, this.ctx.settings);
        plan = [];
        for (const name of selection.names) {
          const def = old.find((b) => b.active.name === name)?.active.definition ?? (await this.ctx.catalog.load(capability, name));
          plan.push({ def, configKey: configKey(resolveProviderConfig(def, this.ctx.env, this.ctx.settings, this.ctx.defaults).config) });
        }
      } catch (err) {
        const message = describeConfigFailure(err);
        report.failed.push({ capability, message });
        logger.warn(
          { capability },
          `${capability}: the new settings are not applied, ${oldNames.join(', ') || 'no provider'} keeps serving: ${message}`,
        );
        continue;
      }
      const newNames = selection.names;
      const sameNames = newNames.length === oldNames.length && newNames.every((n, i) => n === oldNames[i]);
      if (sameNames && plan.every((p, i) => p.configKey === old[i]!.configKey)) continue;
      const what = sameNames
        ? `${capability}/${newNames.join(',')}`
        : `${capability}/${oldNames.join(',') || 'none'} -> ${capability}/${newNames.join(',') || 'none'}`;
      const reason = !LIVE_CAPABILITIES.includes(capability)
        ? `${capability} settings apply at the next start`
        : !sameNames && !SWITCHABLE.includes(capability)
          ? `choosing another ${capability} provider applies at the next start`
          : old.length === 0 || newNames.length === 0
            ? `enabling or disabling ${capability} applies at the next start`
            : undefined;
      if (reason) {
        report.restart.push({ capability, reason });
        logger.warn({ capability }, `${what}: ${reason} (restart apigate serve)`);
        continue;
      }
      let fresh: Built[];
      try {
        fresh = await buildProviders(
          plan.map((p) => p.def),
          this.ctx,
        );
      } catch (err) {
        const message = describeConfigFailure(err);
        report.failed.push({ capability, message });
        logger.warn({ capability }, `${capability}: the new settings are not applied, ${oldNames.join(', ')} keeps serving: ${message}`);
        continue;
      }
      this.#fill(capability, fresh);
      this.#selections = this.#selections.map((s) => (s.capability === capability ? selection : s));
      report.rebuilt.push(what);
      logger.info(
        { capability, providers: newNames },
        `${what} rebuilt with the new settings; the old one is closed once its calls finish`,
      );
      for (const b of old) this.#retire(b);
    }
    return report;
  }

  /** Waits (up to drainTimeoutMs) for the calls a replaced provider started, then closes it. */
  #retire(b: Built): void {
    const p = (async () => {
      if (b.inflight > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.drainTimeoutMs);
          timer.unref();
          b.drained = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      await closeAll([b.active]);
      this.ctx.logger.info(
        { capability: b.active.capability, provider: b.active.name },
        `${b.active.capability}/${b.active.name} closed: replaced after a settings change`,
      );
    })();
    this.#retiring.add(p);
    void p.finally(() => this.#retiring.delete(p));
  }
}

/** Wraps a method so the kernel knows when the promise-returning calls made on this provider have settled. */
function countCalls(b: Built, fn: (...args: unknown[]) => unknown): (...args: unknown[]) => unknown {
  const settled = () => {
    if (--b.inflight === 0) b.drained?.();
  };
  return (...args: unknown[]) => {
    const result = fn(...args);
    if (result && typeof (result as Promise<unknown>).then === 'function') {
      b.inflight++;
      (result as Promise<unknown>).then(settled, settled);
    }
    return result;
  };
}

function configKey(config: unknown): string {
  return JSON.stringify(config, (_k, v: unknown) => (v instanceof Map || v instanceof Set ? [...v] : v));
}

function describeConfigFailure(err: unknown): string {
  if (Array.isArray(err)) return err.map((e) => describeError(e)).join('; ');
  return describeError(err);
}

async function closeAll(active: ActiveProvider[]): Promise<void> {
  for (const a of [...active].reverse()) {
    await a.proxy.close().catch(() => undefined);
  }
}

/** Creates and instruments each definition's provider; on a failure closes the ones it made and throws. */
async function buildProviders(defs: readonly AnyProviderDefinition[], ctx: BuildContext): Promise<Built[]> {
  const built: Built[] = [];
  try {
    for (const def of defs) {
      const r = resolveProviderConfig(def, ctx.env, ctx.settings, ctx.defaults);
      // From here on every error, log line and health answer in this process masks them.
      registerSecrets(r.secretValues);
      const dataDir = path.join(ctx.dataDir, 'providers', `${def.capability}-${def.name}`);
      await mkdir(dataDir, { recursive: true });
      // Whatever logger the app passed: the provider's messages, fields and errors are masked with its secrets.
      const child = maskingLogger(ctx.logger.child({ capability: def.capability, provider: def.name }), r.secretValues);
      let raw: ProviderInstance;
      try {
        raw = (await def.create(r.config as never, {
          capability: def.capability,
          provider: def.name,
          logger: child,
          dataDir,
          emit: ctx.emit,
        })) as ProviderInstance;
      } catch (cause) {
        throw new ApigateError(
          'PROVIDER_START_FAILED',
          `${def.capability}/${def.name} failed to start: ${redact((cause as Error)?.message ?? String(cause), r.secretValues)}`,
          { cause },
        );
      }
      const { proxy, metrics } = instrument(raw, {
        capability: def.capability,
        provider: def.name,
        secrets: r.secretValues,
        emit: ctx.emit,
      });
      built.push({
        active: {
          capability: def.capability,
          name: def.name,
          definition: def,
          instance: raw,
          proxy,
          sources: r.sources,
          metrics,
          secrets: r.secretValues,
        },
        configKey: configKey(r.config),
        inflight: 0,
        wrapped: new Map(),
      });
    }
  } catch (err) {
    await closeAll(built.map((b) => b.active));
    throw err;
  }
  return built;
}

/**
 * Selects, loads, configures and creates every provider. All configuration problems are
 * collected and thrown together as ConfigErrors; if any provider fails to start, the ones
 * already started are closed (nothing half-started).
 */
export async function createKernel(opts: KernelOptions): Promise<Kernel> {
  const env = opts.env ?? process.env;
  const settings = opts.settings ?? emptySettings;
  const logger = opts.logger ?? silentLogger();
  const wanted = opts.only ?? CAPABILITIES;

  const problems: ApigateError[] = [];
  const selections: Selection[] = [];
  const plan: AnyProviderDefinition[] = [];
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
        plan.push(await opts.catalog.load(capability, name));
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
  // Every field problem of every provider at once, before anything starts.
  for (const def of plan) {
    try {
      resolveProviderConfig(def, env, settings, opts.defaults);
    } catch (errs) {
      problems.push(...(Array.isArray(errs) ? errs : [errs as ApigateError]));
    }
  }
  if (problems.length) throw new ConfigErrors(problems);

  const events = new EventEmitter<KernelEvents>();
  const emit = (e: KernelEvent) => {
    if (e.type === 'provider.error') events.emit('provider.error', e);
    else events.emit('provider.call', e);
  };
  const ctx: BuildContext = { catalog: opts.catalog, env, settings, defaults: opts.defaults, logger, dataDir: opts.dataDir, emit };
  const built = await buildProviders(plan, ctx);

  const kernel = new Kernel(built, selections, wanted, ctx, opts.healthTimeoutMs ?? 3000, opts.drainTimeoutMs ?? 10_000);
  // Route provider events through the kernel's public emitter.
  events.on('provider.error', (e) => kernel.events.emit('provider.error', e));
  events.on('provider.call', (e) => kernel.events.emit('provider.call', e));
  for (const a of kernel.active) logger.info({ capability: a.capability, provider: a.name }, `${a.capability} served by ${a.name}`);
  return kernel;
}
