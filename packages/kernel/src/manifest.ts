import { z } from 'zod';
import { CAPABILITIES, type CapabilityName } from './capabilities/common.js';
import { type AnyProviderDefinition, isProviderDefinition, KERNEL_API } from './define-provider.js';

/** Package names discovery considers: `@apigate/provider-*`, `apigate-provider-*`, `@scope/apigate-provider-*`. */
export const PROVIDER_PACKAGE_RE =
  /^(?:@apigate\/provider-[a-z0-9._-]+|apigate-provider-[a-z0-9._-]+|@[a-z0-9._-]+\/apigate-provider-[a-z0-9._-]+)$/;

export function isProviderPackageName(name: string): boolean {
  return PROVIDER_PACKAGE_RE.test(name);
}

const manifestSchema = z.object({
  role: z.literal('provider', { error: 'apigate.role must be "provider"' }),
  kernelApi: z.number({ error: 'apigate.kernelApi must be a number' }).int(),
  providers: z
    .array(
      z.object({
        capability: z.enum(CAPABILITIES, { error: `capability must be one of ${CAPABILITIES.join(', ')}` }),
        name: z.string().regex(/^[a-z][a-z0-9-]*$/, 'name must be lower-case letters, digits and dashes'),
      }),
    )
    .min(1, 'apigate.providers must list at least one provider'),
});

export interface ProviderManifest {
  role: 'provider';
  kernelApi: number;
  providers: { capability: CapabilityName; name: string }[];
}

export type ManifestCheck =
  | { ok: true; manifest: ProviderManifest }
  | { ok: false; kind: 'bad-manifest' | 'incompatible-kernel-api'; reason: string };

/** Checks the `apigate` block of a package.json. Pure: reads nothing from disk. */
export function checkManifest(pkg: unknown): ManifestCheck {
  const block = (pkg as { apigate?: unknown } | null)?.apigate;
  if (block === undefined) return { ok: false, kind: 'bad-manifest', reason: 'package.json has no "apigate" block' };
  const parsed = manifestSchema.safeParse(block);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = ['apigate', ...issue.path].join('.');
    return { ok: false, kind: 'bad-manifest', reason: `${path}: ${issue.message}` };
  }
  if (parsed.data.kernelApi !== KERNEL_API) {
    return {
      ok: false,
      kind: 'incompatible-kernel-api',
      reason: `apigate.kernelApi is ${parsed.data.kernelApi}, this kernel speaks ${KERNEL_API}`,
    };
  }
  return { ok: true, manifest: parsed.data };
}

/** The default export: one definition, or an array when a package ships several. */
export function definitionsOf(moduleNamespace: unknown): AnyProviderDefinition[] {
  const exported = (moduleNamespace as { default?: unknown } | null)?.default;
  const list = Array.isArray(exported) ? exported : [exported];
  return list.every(isProviderDefinition) ? (list as AnyProviderDefinition[]) : [];
}

/**
 * Checks that a package's manifest and default export agree. Returns problems as lines;
 * empty means valid. Used by the loader and by the testkit's `assertValidManifest`.
 */
export function checkPackage(pkg: unknown, moduleNamespaceOrDefault: unknown): string[] {
  const problems: string[] = [];
  const name = (pkg as { name?: unknown })?.name;
  if (typeof name !== 'string' || !isProviderPackageName(name)) {
    problems.push(`package name "${String(name)}" must be @apigate/provider-*, apigate-provider-* or @scope/apigate-provider-*`);
  }
  const keywords = (pkg as { keywords?: unknown }).keywords;
  if (!Array.isArray(keywords) || !keywords.includes('apigate-provider')) {
    problems.push('package.json keywords must include "apigate-provider"');
  }
  const peer = (pkg as { peerDependencies?: Record<string, string> }).peerDependencies;
  if (!peer?.['@apigate/kernel']) problems.push('package.json must list @apigate/kernel in peerDependencies');
  const check = checkManifest(pkg);
  if (!check.ok) {
    problems.push(check.reason);
    return problems;
  }
  const ns =
    moduleNamespaceOrDefault && typeof moduleNamespaceOrDefault === 'object' && 'default' in moduleNamespaceOrDefault
      ? moduleNamespaceOrDefault
      : { default: moduleNamespaceOrDefault };
  const defs = definitionsOf(ns);
  if (defs.length === 0) {
    problems.push('default export is not made with defineProvider() from @apigate/kernel');
    return problems;
  }
  for (const declared of check.manifest.providers) {
    if (!defs.some((d) => d.capability === declared.capability && d.name === declared.name)) {
      problems.push(`manifest declares ${declared.capability}/${declared.name} but the default export does not define it`);
    }
  }
  for (const d of defs) {
    if (!check.manifest.providers.some((m) => m.capability === d.capability && m.name === d.name)) {
      problems.push(`default export defines ${d.capability}/${d.name} but the manifest does not declare it`);
    }
  }
  return problems;
}
