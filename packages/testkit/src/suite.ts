import { type AnyProviderDefinition, type CapabilityMap, type CapabilityName, isProviderDefinition } from '@apigate/kernel';
import { afterAll, beforeAll, describe } from 'vitest';
import { createForTest } from './harness.js';

/**
 * Config fields as `createForTest` takes them: strings, numbers and booleans, each read as its
 * setting would be; `undefined` leaves a field out.
 */
export type TestConfig = Record<string, unknown>;

/** A config, or a function giving it: called for each instance, so it may read values known only once a service runs. */
export type TestConfigSource = TestConfig | (() => TestConfig | Promise<TestConfig>);

/**
 * How a conformance suite builds the provider under test from its definition: the second argument
 * of every `describe<Capability>Provider(definition, setup)`. Each instance is made by
 * `createForTest`, exactly as the kernel makes it.
 */
export interface SuiteSetup {
  /** Title of the describe block (default `<capability>/<name> conformance`). */
  name?: string;
  /** The provider's config fields, as `createForTest` takes them. */
  config?: TestConfigSource;
  /**
   * Secret config fields (API keys, webhook secrets), merged over `config`. Each must be one the
   * definition declares in `secrets`, so the kernel masks it; the suite refuses to start otherwise.
   */
  secrets?: TestConfigSource;
  /** The data directory of every instance (default: a new temp directory per instance). */
  dataDir?: string;
  /** Timeout of each test of the suite in ms (default: the suite's own, 30 s or more). */
  timeout?: number;
  /**
   * Service hooks, registered inside the suite: start what the provider talks to (a fake vendor
   * API, a private server) before its first test, and stop it after its last. Both get `timeout`.
   */
  beforeAll?: () => unknown;
  afterAll?: () => unknown;
}

/** A provider definition of capability `C`, as `createForTest` takes it. */
export type DefinitionOf<C extends CapabilityName> = AnyProviderDefinition & { capability: C };

/** Makes a new instance; `over` is merged over the suite's config and secrets (a failure test's server address). */
export type InstanceFactory<C extends CapabilityName> = (over?: TestConfigSource) => Promise<CapabilityMap[C]>;

const configOf = async (source: TestConfigSource | undefined): Promise<TestConfig> =>
  typeof source === 'function' ? await source() : (source ?? {});

/**
 * Makes instances of `def` as `setup` describes, through `createForTest`: `config`, then `secrets`,
 * then `over`, each merged over the one before. Refuses a secret the definition does not declare,
 * which the kernel would show unmasked.
 */
export function suiteFactory<C extends CapabilityName>(
  def: DefinitionOf<C>,
  setup: Pick<SuiteSetup, 'config' | 'secrets' | 'dataDir'>,
): InstanceFactory<C> {
  return async (over) => {
    const secrets = await configOf(setup.secrets);
    const declared: readonly string[] = def.secrets ?? [];
    const undeclared = Object.keys(secrets).filter((f) => !declared.includes(f));
    if (undeclared.length) {
      const them = undeclared.length > 1 ? 'them' : 'it';
      throw new Error(
        `${def.capability}/${def.name}: ${undeclared.join(', ')} passed as secrets, but the definition does not declare ${them} in \`secrets\`, so the kernel would show ${them} unmasked`,
      );
    }
    const config = { ...(await configOf(setup.config)), ...secrets, ...(await configOf(over)) };
    return (await createForTest(def, config, setup.dataDir === undefined ? {} : { dataDir: setup.dataDir })).provider;
  };
}

/** The suite-wide options every suite takes, in either form. */
export interface SuiteCommon {
  /** Title of the describe block. */
  name?: string;
  /** Timeout of each test of the suite in ms (default: the suite's own). */
  timeout?: number;
}

/** What a suite needs from either form of its call. */
export interface ResolvedSuite<O> {
  opts: O;
  /** Default describe title. */
  title: string;
  hooks: Pick<SuiteSetup, 'beforeAll' | 'afterAll'>;
}

/**
 * Both ways to call a suite: `(definition, setup)`, or the 1.0 form `(options)` with its own
 * `create`. For the first, the options are `setup` with `create` building instances through
 * `suiteFactory` and `features` taken from the definition; `derive` turns setup-only options (a
 * failure test's `config`) into the suite's own (its `create`).
 */
export function resolveSuite<C extends CapabilityName, O extends SuiteCommon, S extends SuiteSetup>(
  capability: C,
  fallbackTitle: string,
  first: DefinitionOf<C> | O,
  setup: S | undefined,
  derive?: (make: InstanceFactory<C>, setup: S) => Partial<O>,
): ResolvedSuite<O> {
  if (!isProviderDefinition(first)) return { opts: first as O, title: fallbackTitle, hooks: {} };
  if (first.capability !== capability) {
    throw new TypeError(`the ${capability} conformance suite got ${first.capability}/${first.name}, a ${first.capability} provider`);
  }
  const s = (setup ?? {}) as S;
  const make = suiteFactory(first as DefinitionOf<C>, s);
  const opts = { ...s, ...derive?.(make, s), create: () => make(), features: first.features } as unknown as O;
  return { opts, title: `${capability}/${first.name} conformance`, hooks: { beforeAll: s.beforeAll, afterAll: s.afterAll } };
}

/**
 * The suite's describe block: its title, one timeout for every test in it (a test with its own
 * timeout keeps it), and the setup's service hooks around it.
 */
export function describeSuite<O extends SuiteCommon>(suite: ResolvedSuite<O>, defaultTimeout: number, body: () => void): void {
  const timeout = suite.opts.timeout ?? defaultTimeout;
  describe(suite.opts.name ?? suite.title, { timeout }, () => {
    const { beforeAll: start, afterAll: stop } = suite.hooks;
    if (start) beforeAll(async () => void (await start()), timeout);
    if (stop) afterAll(async () => void (await stop()), timeout);
    body();
  });
}
