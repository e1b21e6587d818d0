import type { z } from 'zod';
import type { CapabilityMap, CapabilityName, FeatureMap, ProviderContext } from './capabilities/index.js';

/** Global symbol so definitions made by another copy of the kernel are still recognised. */
export const PROVIDER_BRAND: unique symbol = Symbol.for('apigate.provider-definition') as never;

/** Version of the plugin contract. A provider's manifest `kernelApi` must equal it. */
export const KERNEL_API = 1;

/** Config schemas are zod objects whose fields arrive as strings from env or settings. */
export type ConfigSchema = z.ZodObject<z.ZodRawShape>;

export interface ProviderSpec<C extends CapabilityName, S extends ConfigSchema> {
  capability: C;
  /** Lower-case, `a-z0-9-`; the value of `<CAPABILITY>_PROVIDER`. */
  name: string;
  description: string;
  config: S;
  /** Env var(s) for each field; with several, the first one set wins (e.g. QUEUE_REDIS_URL then REDIS_URL). */
  env?: Partial<Record<keyof z.infer<S> & string, string | string[]>>;
  /** Fields masked everywhere and encrypted in settings. */
  secrets?: (keyof z.infer<S> & string)[];
  /**
   * URL fields (besides those declared with `z.url()`): a password or secret query parameter in
   * them is masked wherever the value is shown, and a value carrying one is stored encrypted.
   */
  urls?: (keyof z.infer<S> & string)[];
  features?: FeatureMap[C];
  create(config: z.infer<S>, ctx: ProviderContext): CapabilityMap[C] | Promise<CapabilityMap[C]>;
}

export type ProviderDefinition<C extends CapabilityName = CapabilityName, S extends ConfigSchema = ConfigSchema> = Readonly<
  ProviderSpec<C, S>
> & { readonly [PROVIDER_BRAND]: true; readonly kernelApi: number };

export type AnyProviderDefinition = ProviderDefinition<CapabilityName, ConfigSchema>;

const NAME_RE = /^[a-z][a-z0-9-]*$/;

/** Declares a provider. The package's default export must be the returned object. */
export function defineProvider<C extends CapabilityName, S extends ConfigSchema>(spec: ProviderSpec<C, S>): ProviderDefinition<C, S> {
  if (!NAME_RE.test(spec.name)) {
    throw new TypeError(`defineProvider: name "${spec.name}" must match ${NAME_RE} (lower-case letters, digits, dashes)`);
  }
  const shape = spec.config.shape as Record<string, unknown>;
  for (const field of [...Object.keys(spec.env ?? {}), ...(spec.secrets ?? []), ...(spec.urls ?? [])]) {
    if (!(field in shape)) throw new TypeError(`defineProvider(${spec.capability}/${spec.name}): "${field}" is not a config field`);
  }
  return Object.freeze({ ...spec, kernelApi: KERNEL_API, [PROVIDER_BRAND]: true as const });
}

export function isProviderDefinition(value: unknown): value is AnyProviderDefinition {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[PROVIDER_BRAND] === true;
}
