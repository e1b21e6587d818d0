import { z } from 'zod';
import { CAPABILITIES, type CapabilityName } from './capabilities/common.js';
import type { AnyProviderDefinition } from './define-provider.js';
import { ConfigError } from './errors.js';
import { looksLikeUrl, urlCredentials } from './secrets.js';

export type Env = Record<string, string | undefined>;

/** Read-only view of the settings table; the gateway's store implements it (values decrypted). */
export interface SettingsReader {
  get(key: string): string | undefined;
  keys(): string[];
}

export const emptySettings: SettingsReader = { get: () => undefined, keys: () => [] };

export function settingsFromRecord(record: Record<string, string>): SettingsReader {
  return { get: (k) => record[k], keys: () => Object.keys(record) };
}

/** Development defaults (the spec's "Testing Providers" block). OAuth and TLS are off unless enabled. */
export const DEFAULT_PROVIDERS: Readonly<Record<CapabilityName, string | undefined>> = {
  payment: 'dummy',
  email: 'log',
  cache: 'memory',
  storage: 'memory',
  queue: 'memory',
  notification: 'log',
  oauth: undefined,
  tls: undefined,
};

/** Capabilities where several providers can be enabled at once, each by `<CAP>_<NAME>_ENABLED`. */
export const MULTI_CAPABILITIES: readonly CapabilityName[] = ['oauth'];

export const camelToSnake = (s: string): string => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
export const snakeToCamel = (s: string): string => s.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());

export function providerSettingKey(capability: CapabilityName, provider: string, field: string): string {
  return `${capability}.${provider}.${camelToSnake(field)}`;
}

const TRUE = new Set(['1', 'true', 'yes', 'on']);
const FALSE = new Set(['0', 'false', 'no', 'off']);

/** Parses a flag the way env vars are written; anything else is a config error, not `false`. */
export function parseFlag(value: string | undefined): boolean | undefined {
  if (value === undefined || value === '') return undefined;
  const v = value.trim().toLowerCase();
  if (TRUE.has(v)) return true;
  if (FALSE.has(v)) return false;
  throw new Error('expected true or false');
}

/** zod helpers for fields that arrive as strings (env vars, settings). */
export const fields = {
  /** A boolean written as true/false, 1/0, yes/no, on/off. */
  flag: (defaultValue: boolean) =>
    z
      .preprocess(
        (v) => (typeof v === 'string' ? (TRUE.has(v.trim().toLowerCase()) ? true : FALSE.has(v.trim().toLowerCase()) ? false : v) : v),
        z.boolean({ error: 'expected true or false' }),
      )
      .default(defaultValue),
  /** A whole number, written as a string or a number. */
  int: (opts: { min?: number; max?: number } = {}) => {
    let n = z.coerce.number({ error: 'expected a whole number' }).int('expected a whole number');
    if (opts.min !== undefined) n = n.min(opts.min, `expected a whole number of at least ${opts.min}`);
    if (opts.max !== undefined) n = n.max(opts.max, `expected a whole number of at most ${opts.max}`);
    return n;
  },
  /** A comma-separated list. */
  list: () =>
    z.preprocess(
      (v) =>
        typeof v === 'string'
          ? v
              .split(',')
              .map((s) => s.trim())
              .filter(Boolean)
          : v,
      z.array(z.string()),
    ),
};

export type SelectionSource = 'env' | 'setting' | 'default';

export interface Selection {
  capability: CapabilityName;
  /** Names of the selected providers; empty when the capability is disabled. */
  names: string[];
  source: SelectionSource;
  /** Where the choice came from, for error messages: e.g. "CACHE_PROVIDER" or "setting cache.provider". */
  origin: string;
}

const nonEmpty = (v: string | undefined): string | undefined => (v === undefined || v.trim() === '' ? undefined : v.trim());

/**
 * Which providers serve `capability`: `<CAP>_PROVIDER` env, else setting `<cap>.provider`,
 * else the development default. OAuth (multi) and TLS also take `<CAP>_<NAME>_ENABLED` /
 * `<cap>.<name>.enabled`; OAuth collects every enabled name.
 */
export function selectProviders(capability: CapabilityName, env: Env, settings: SettingsReader): Selection {
  const envVar = `${capability.toUpperCase()}_PROVIDER`;
  const settingKey = `${capability}.provider`;
  const enabled = enabledByFlag(capability, env, settings);
  if (MULTI_CAPABILITIES.includes(capability)) {
    const fromEnv = nonEmpty(env[envVar]);
    const listed = fromEnv ?? nonEmpty(settings.get(settingKey));
    const names = new Set<string>(
      listed
        ? listed
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
        : [],
    );
    for (const n of enabled.on) names.add(n);
    for (const n of enabled.off) names.delete(n);
    return { capability, names: [...names].sort(), source: names.size ? 'env' : 'default', origin: enabled.origin ?? envVar };
  }
  const fromEnv = nonEmpty(env[envVar]);
  if (fromEnv) return { capability, names: fromEnv === 'none' ? [] : [fromEnv], source: 'env', origin: envVar };
  const fromSetting = nonEmpty(settings.get(settingKey));
  if (fromSetting) {
    return { capability, names: fromSetting === 'none' ? [] : [fromSetting], source: 'setting', origin: `setting ${settingKey}` };
  }
  if (enabled.on.length > 1) {
    throw new ConfigError({
      field: 'provider',
      envVar,
      settingKey,
      expected: `only one ${capability} provider can be enabled, found ${enabled.on.join(', ')}`,
    });
  }
  if (enabled.on.length === 1) return { capability, names: enabled.on, source: 'env', origin: enabled.origin! };
  const def = DEFAULT_PROVIDERS[capability];
  return { capability, names: def ? [def] : [], source: 'default', origin: 'default' };
}

function enabledByFlag(capability: CapabilityName, env: Env, settings: SettingsReader) {
  const on: string[] = [];
  const off: string[] = [];
  let origin: string | undefined;
  const envRe = new RegExp(`^${capability.toUpperCase()}_([A-Z0-9_]+)_ENABLED$`);
  const settingRe = new RegExp(`^${capability}\\.([a-z0-9-]+)\\.enabled$`);
  const seen = new Map<string, { value: boolean; origin: string }>();
  for (const key of settings.keys()) {
    const m = settingRe.exec(key);
    if (m) seen.set(m[1]!, { value: readFlag(settings.get(key), `setting ${key}`, key), origin: `setting ${key}` });
  }
  for (const [key, value] of Object.entries(env)) {
    const m = envRe.exec(key);
    if (m && nonEmpty(value)) {
      const name = m[1]!.toLowerCase().replaceAll('_', '-');
      seen.set(name, { value: readFlag(value, key, `${capability}.${name}.enabled`), origin: key });
    }
  }
  for (const [name, s] of seen) {
    if (s.value) {
      on.push(name);
      origin ??= s.origin;
    } else off.push(name);
  }
  return { on: on.sort(), off, origin };
}

function readFlag(value: string | undefined, where: string, settingKey: string): boolean {
  try {
    return parseFlag(value) ?? false;
  } catch {
    const envVar = where.startsWith('setting ') ? undefined : where;
    throw new ConfigError({ field: 'enabled', ...(envVar ? { envVar } : {}), settingKey, expected: 'expected true or false' });
  }
}

export type FieldSource = { kind: 'env'; name: string } | { kind: 'setting'; key: string } | { kind: 'default' };

export interface ResolvedConfig {
  config: Record<string, unknown>;
  sources: Record<string, FieldSource>;
  /** Raw values of the secret fields, so logs and errors can mask them. */
  secretValues: string[];
}

function envNamesOf(def: AnyProviderDefinition, field: string): string[] {
  const e = (def.env as Record<string, string | string[] | undefined> | undefined)?.[field];
  return e === undefined ? [] : Array.isArray(e) ? e : [e];
}

/** The env var a user should set for a field (the first listed), if any. */
export function primaryEnvName(def: AnyProviderDefinition, field: string): string | undefined {
  return envNamesOf(def, field)[0];
}

/**
 * Resolves a provider's config: each field from its env var(s), else its setting, else the
 * schema default; then validates with the schema. Throws one ConfigError per bad field
 * (as ConfigError[]), never echoing a value.
 */
export function resolveProviderConfig(
  def: AnyProviderDefinition,
  env: Env,
  settings: SettingsReader,
  /** Deployment defaults by setting key, used when neither env nor setting gives a field (before the schema default). */
  defaults?: Readonly<Record<string, string>>,
): ResolvedConfig {
  const shape = def.config.shape as Record<string, z.ZodType>;
  const raw: Record<string, unknown> = {};
  const sources: Record<string, FieldSource> = {};
  for (const field of Object.keys(shape)) {
    const envHit = envNamesOf(def, field).find((n) => nonEmpty(env[n]) !== undefined);
    if (envHit) {
      raw[field] = env[envHit]!.trim();
      sources[field] = { kind: 'env', name: envHit };
      continue;
    }
    const key = providerSettingKey(def.capability, def.name, field);
    const fromSetting = nonEmpty(settings.get(key));
    if (fromSetting !== undefined) {
      raw[field] = fromSetting;
      sources[field] = { kind: 'setting', key };
      continue;
    }
    const fallback = defaults?.[key];
    if (fallback !== undefined) raw[field] = fallback;
    sources[field] = { kind: 'default' };
  }
  // Secret fields as a whole, and the credentials inside any URL-valued field (a password in REDIS_URL).
  const secretValues = [
    ...(def.secrets ?? []).map((f) => raw[f]).filter((v): v is string => typeof v === 'string'),
    ...Object.values(raw).filter(looksLikeUrl).flatMap(urlCredentials),
  ];
  const parsed = def.config.safeParse(raw);
  if (parsed.success) return { config: parsed.data as Record<string, unknown>, sources, secretValues };

  const errors: ConfigError[] = [];
  const reported = new Set<string>();
  for (const issue of parsed.error.issues) {
    const field = String(issue.path[0] ?? '');
    if (reported.has(field)) continue;
    reported.add(field);
    const described = field && shape[field]?.description;
    const missing = field && raw[field] === undefined;
    let expected = missing ? 'is required' : issue.message;
    if (described) expected += `; expected ${described}`;
    const envVar = field ? primaryEnvName(def, field) : undefined;
    errors.push(
      new ConfigError({
        field: field || '(config)',
        ...(envVar ? { envVar } : {}),
        settingKey: field ? providerSettingKey(def.capability, def.name, field) : `${def.capability}.${def.name}`,
        expected,
      }),
    );
  }
  throw errors;
}

/** Every settings key the kernel understands for the installed definitions (for `settings set` validation). */
export function knownSettingKeys(defs: readonly AnyProviderDefinition[]): Map<string, { secret: boolean; url?: boolean; envVar?: string }> {
  const keys = new Map<string, { secret: boolean; url?: boolean; envVar?: string }>();
  for (const cap of CAPABILITIES) keys.set(`${cap}.provider`, { secret: false, envVar: `${cap.toUpperCase()}_PROVIDER` });
  for (const def of defs) {
    for (const field of Object.keys(def.config.shape)) {
      const envVar = primaryEnvName(def, field);
      keys.set(providerSettingKey(def.capability, def.name, field), {
        secret: (def.secrets as string[] | undefined)?.includes(field) ?? false,
        ...(isUrlField(def, field) ? { url: true } : {}),
        ...(envVar ? { envVar } : {}),
      });
    }
    keys.set(`${def.capability}.${def.name}.enabled`, {
      secret: false,
      envVar: `${def.capability.toUpperCase()}_${def.name.toUpperCase().replaceAll('-', '_')}_ENABLED`,
    });
  }
  return keys;
}

/**
 * Checks one value for one field of a provider's config (for `apigate settings set`);
 * returns what is expected when it is wrong, undefined when it is fine or the field is unknown.
 */
export function checkFieldValue(def: AnyProviderDefinition, field: string, value: string): string | undefined {
  const schema = (def.config.shape as Record<string, z.ZodType>)[field];
  if (!schema) return undefined;
  const r = schema.safeParse(value);
  if (r.success) return undefined;
  const msg = r.error.issues[0]?.message ?? 'invalid value';
  return schema.description ? `${msg}; expected ${schema.description}` : msg;
}

/**
 * Whether a provider's config field holds a URL: listed in the definition's `urls`, declared with
 * `z.url()`, or defaulting to a `scheme://` value. Values are also recognised by their shape
 * (`looksLikeUrl`) wherever they are masked, so an undeclared URL field is still masked.
 */
export function isUrlField(def: AnyProviderDefinition, field: string): boolean {
  if ((def.urls as string[] | undefined)?.includes(field)) return true;
  let schema = (def.config.shape as Record<string, z.ZodType>)[field] as z.ZodType | undefined;
  for (let i = 0; schema && i < 5; i++) {
    const d = (schema as unknown as { def?: { type?: string; format?: string; innerType?: z.ZodType; defaultValue?: unknown } }).def;
    if (d?.format === 'url') return true;
    if (d?.type === 'default' && looksLikeUrl(typeof d.defaultValue === 'function' ? undefined : d.defaultValue)) return true;
    schema = d?.innerType;
  }
  return false;
}
