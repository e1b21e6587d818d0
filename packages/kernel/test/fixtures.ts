import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const KERNEL_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface FixturePackage {
  name: string;
  manifest?: unknown;
  /** ESM source of index.js; `@apigate/kernel` resolves to this repo's kernel. */
  source?: string;
  extra?: Record<string, unknown>;
}

export const providerSource = (capability: string, name: string) => `
import { defineProvider, z } from '@apigate/kernel';
export default defineProvider({
  capability: '${capability}', name: '${name}', description: '${name} fixture',
  config: z.object({}),
  create: () => ({ check: async () => ({ status: 'connected', latencyMs: 0 }), close: async () => {} }),
});
`;

export function writePackage(nodeModules: string, p: FixturePackage): void {
  const dir = path.join(nodeModules, p.name);
  mkdirSync(dir, { recursive: true });
  const pkg = {
    name: p.name,
    version: '1.2.3',
    type: 'module',
    keywords: ['apigate-provider'],
    exports: { '.': './index.js', './package.json': './package.json' },
    peerDependencies: { '@apigate/kernel': '^1.0.0' },
    ...(p.manifest === undefined ? {} : { apigate: p.manifest }),
    ...p.extra,
  };
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify(pkg));
  writeFileSync(path.join(dir, 'index.js'), p.source ?? 'export default {};');
}

/** A temp app folder whose package.json depends on `deps`, with `@apigate/kernel` linked in. */
export function makeApp(deps: string[], packages: FixturePackage[]): string {
  const root = mkdtempSync(path.join(tmpdir(), 'apigate-discovery-'));
  const nm = path.join(root, 'node_modules');
  mkdirSync(path.join(nm, '@apigate'), { recursive: true });
  symlinkSync(KERNEL_DIR, path.join(nm, '@apigate', 'kernel'), 'dir');
  writeFileSync(
    path.join(root, 'package.json'),
    JSON.stringify({ name: 'app', dependencies: Object.fromEntries(deps.map((d) => [d, '*'])) }),
  );
  for (const p of packages) writePackage(nm, p);
  return root;
}

export const manifest = (capability: string, name: string, kernelApi = 1) => ({
  role: 'provider',
  kernelApi,
  providers: [{ capability, name }],
});
