import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  type AnyProviderDefinition,
  ApigateError,
  type CapabilityMap,
  type CapabilityName,
  ConfigError,
  ConfigErrors,
  instrument,
  type KernelEvent,
  providerSettingKey,
  redact,
  resolveProviderConfig,
  settingsFromRecord,
  silentLogger,
} from '@apigate/kernel';

export interface TestInstance<C extends CapabilityName> {
  /** The provider wrapped by the kernel's instrumentation, exactly as the gateway sees it. */
  provider: CapabilityMap[C];
  /** Kernel events the provider and its wrapper emitted. */
  events: KernelEvent[];
  dataDir: string;
  /** The values the kernel masks for this instance: its secret fields and URL credentials. */
  secrets: string[];
}

/**
 * Builds a provider from its definition exactly the way the kernel does: each config field is
 * read as the setting `<capability>.<name>.<field>` would be (values as strings, like env vars),
 * resolved and validated by the kernel's own `resolveProviderConfig` (a bad value throws the same
 * `ConfigErrors` the server stops with, one line per field, never a raw ZodError); an untyped error
 * from `create` becomes `PROVIDER_START_FAILED` with secrets masked; the instance is wrapped by the
 * kernel's `instrument()` with the secret values it masks (typed errors, key guards). Use it in a
 * suite's `create`.
 */
export async function createForTest<C extends CapabilityName>(
  def: AnyProviderDefinition & { capability: C },
  config: Record<string, unknown> = {},
  opts: { dataDir?: string } = {},
): Promise<TestInstance<C>> {
  const record: Record<string, string> = {};
  for (const [field, value] of Object.entries(config)) {
    if (value === undefined) continue;
    if (typeof value === 'object' || typeof value === 'function') {
      throw new TypeError(`createForTest: config.${field} must be a string, number or boolean, as an env var or setting would be`);
    }
    record[providerSettingKey(def.capability, def.name, field)] = String(value);
  }
  let resolved: ReturnType<typeof resolveProviderConfig>;
  try {
    resolved = resolveProviderConfig(def, {}, settingsFromRecord(record));
  } catch (err) {
    if (Array.isArray(err) && err.every((e) => e instanceof ConfigError)) throw new ConfigErrors(err);
    throw err;
  }
  const dataDir = opts.dataDir ?? mkdtempSync(path.join(tmpdir(), `apigate-${def.capability}-${def.name}-`));
  const events: KernelEvent[] = [];
  const emit = (e: KernelEvent) => events.push(e);
  const secrets = resolved.secretValues;
  let raw: unknown;
  try {
    raw = await def.create(resolved.config as never, {
      capability: def.capability,
      provider: def.name,
      logger: silentLogger(),
      dataDir,
      emit,
    });
  } catch (cause) {
    // Typed kernel errors (a ConfigError naming the env var) stay as they are, for tests to assert
    // their fields; the kernel prints the same message after "<capability>/<name> failed to start: ".
    if (cause instanceof ApigateError) throw cause;
    throw new ApigateError(
      'PROVIDER_START_FAILED',
      `${def.capability}/${def.name} failed to start: ${redact((cause as Error)?.message ?? String(cause), secrets)}`,
      {
        cause,
      },
    );
  }
  const { proxy } = instrument(raw as object, { capability: def.capability, provider: def.name, secrets, emit });
  return { provider: proxy as CapabilityMap[C], events, dataDir, secrets };
}

export interface TestInstances<C extends CapabilityName> {
  /** Builds an instance with `createForTest(definition, config)` and keeps it for `closeAll`. */
  make(config?: Record<string, unknown>): Promise<CapabilityMap[C]>;
  /** Closes every instance made so far (call it in the file's afterAll, before stopping what they talk to). */
  closeAll(): Promise<void>;
}

/** The instances a provider's own test file makes, kept so that they are all closed after its tests. */
export function testInstances<C extends CapabilityName>(def: AnyProviderDefinition & { capability: C }): TestInstances<C> {
  const open: CapabilityMap[C][] = [];
  return {
    async make(config = {}) {
      const { provider } = await createForTest(def, config);
      open.push(provider);
      return provider;
    },
    async closeAll() {
      await Promise.all(open.splice(0).map((p) => p.close()));
    },
  };
}
