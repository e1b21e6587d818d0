import { existsSync } from 'node:fs';
import { readdir, readFile, realpath } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { CapabilityName } from './capabilities/common.js';
import type { AnyProviderDefinition } from './define-provider.js';
import { PluginError } from './errors.js';
import { checkManifest, checkPackage, definitionsOf, isProviderPackageName } from './manifest.js';
import { shareKernelWith } from './plugin-resolution.js';

export type PluginSource = 'app' | 'plugin-path' | 'builtin';

export interface DiscoveredPackage {
  packageName: string;
  version: string;
  /** Real path of the package folder; empty for built-in definitions. */
  dir: string;
  source: PluginSource;
  provides: { capability: CapabilityName; name: string; description?: string }[];
  /** The copy of the same package this one replaces (a bundled provider upgraded through the plugin path). */
  overrides?: { version: string; dir: string; source: PluginSource };
}

export interface DiscoverOptions {
  /** Folder of the app's package.json; its dependencies are searched. */
  appDir?: string;
  /** Folders a user `npm install`ed provider packages into (APIGATE_PLUGIN_PATH, split on the path delimiter). */
  pluginPaths?: string[];
  /** Definitions registered in code (tests, custom composition); no package needed. */
  builtins?: AnyProviderDefinition[];
}

export function pluginPathsFromEnv(value: string | undefined): string[] {
  return (value ?? '')
    .split(path.delimiter)
    .map((s) => s.trim())
    .filter(Boolean);
}

async function readJson(file: string): Promise<Record<string, any>> {
  return JSON.parse(await readFile(file, 'utf8'));
}

/** Finds `node_modules/<name>` from `fromDir` upwards, as Node's resolver would. */
function findPackageDir(name: string, fromDir: string): string | undefined {
  let dir = path.resolve(fromDir);
  for (;;) {
    const candidate = path.join(dir, 'node_modules', name, 'package.json');
    if (existsSync(candidate)) return path.dirname(candidate);
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

async function listProviderPackages(folder: string): Promise<string[]> {
  const nm = path.basename(folder) === 'node_modules' ? folder : path.join(folder, 'node_modules');
  if (!existsSync(nm)) return [];
  const out: string[] = [];
  for (const entry of await readdir(nm, { withFileTypes: true })) {
    if (entry.name.startsWith('@')) {
      for (const sub of await readdir(path.join(nm, entry.name), { withFileTypes: true })) {
        const name = `${entry.name}/${sub.name}`;
        if (isProviderPackageName(name)) out.push(path.join(nm, name));
      }
    } else if (isProviderPackageName(entry.name)) {
      out.push(path.join(nm, entry.name));
    }
  }
  return out.sort();
}

/** Resolves the file `import(pkg)` would load, from `exports` (import/node/default) or `main`. */
function entryFile(pkg: Record<string, any>, dir: string): string {
  const pick = (target: unknown): string | undefined => {
    if (typeof target === 'string') return target;
    if (Array.isArray(target)) return target.map(pick).find(Boolean);
    if (target && typeof target === 'object') {
      const t = target as Record<string, unknown>;
      if ('.' in t) return pick(t['.']);
      for (const cond of ['import', 'node', 'default']) if (cond in t) return pick(t[cond]);
    }
    return undefined;
  };
  const rel = pick(pkg.exports) ?? pkg.module ?? pkg.main ?? 'index.js';
  return path.join(dir, rel);
}

interface Entry {
  pkg: DiscoveredPackage;
  load: () => Promise<AnyProviderDefinition[]>;
}

/**
 * What discovery found: usable packages, and problems kept apart by kind. Reads manifests
 * only; a package's code is imported when one of its providers is selected.
 */
export class PluginCatalog {
  readonly packages: DiscoveredPackage[] = [];
  readonly problems: PluginError[] = [];
  private readonly entries = new Map<string, Entry[]>();
  private readonly loaded = new Map<Entry, Promise<AnyProviderDefinition[]>>();

  /** @internal */
  add(entry: Entry): void {
    this.packages.push(entry.pkg);
    for (const p of entry.pkg.provides) {
      const key = `${p.capability}/${p.name}`;
      const list = this.entries.get(key) ?? [];
      list.push(entry);
      this.entries.set(key, list);
    }
  }

  /** Names of installed providers for a capability. */
  installed(capability: CapabilityName): string[] {
    return [...this.entries.keys()]
      .filter((k) => k.startsWith(`${capability}/`))
      .map((k) => k.slice(capability.length + 1))
      .sort();
  }

  /** Packages that claim the same capability/name. */
  duplicates(): PluginError[] {
    const out: PluginError[] = [];
    for (const [key, list] of this.entries) {
      if (list.length > 1) {
        const names = list.map((e) => `${e.pkg.packageName} (${e.pkg.dir || e.pkg.source})`);
        out.push(
          new PluginError(
            'duplicate',
            list[0]!.pkg.packageName,
            `${key} is provided by more than one package: ${names.join(' and ')}; uninstall one`,
          ),
        );
      }
    }
    return out;
  }

  /** Imports (once) and returns the definition of capability/name. */
  async load(capability: CapabilityName, name: string): Promise<AnyProviderDefinition> {
    const list = this.entries.get(`${capability}/${name}`);
    if (!list?.length) {
      const installed = this.installed(capability);
      throw new PluginError(
        'unknown-provider',
        name,
        `no installed ${capability} provider named "${name}" (installed: ${installed.length ? installed.join(', ') : 'none'})`,
      );
    }
    if (list.length > 1) throw this.duplicates().find((d) => d.message.startsWith(`${capability}/${name} `))!;
    const entry = list[0]!;
    let p = this.loaded.get(entry);
    if (!p) {
      p = entry.load();
      this.loaded.set(entry, p);
    }
    const defs = await p;
    return defs.find((d) => d.capability === capability && d.name === name)!;
  }
}

/**
 * Finds provider packages among the app's dependencies and under every plugin path.
 * Never throws for a bad package: each problem is kept in `catalog.problems`.
 */
export async function discoverPlugins(opts: DiscoverOptions): Promise<PluginCatalog> {
  const catalog = new PluginCatalog();
  const seenDirs = new Set<string>();

  for (const def of opts.builtins ?? []) {
    const pkg: DiscoveredPackage = {
      packageName: `(builtin ${def.capability}/${def.name})`,
      version: '',
      dir: '',
      source: 'builtin',
      provides: [{ capability: def.capability, name: def.name, description: def.description }],
    };
    catalog.add({ pkg, load: async () => [def] });
  }

  const candidates: { dir: string; source: PluginSource }[] = [];
  if (opts.appDir) {
    const appPkg = await readJson(path.join(opts.appDir, 'package.json'));
    const deps = { ...appPkg.optionalDependencies, ...appPkg.dependencies } as Record<string, string>;
    for (const name of Object.keys(deps).filter(isProviderPackageName).sort()) {
      const dir = findPackageDir(name, opts.appDir);
      if (!dir) {
        catalog.problems.push(
          new PluginError(
            'not-installed',
            name,
            `${name} is a dependency of the app but is not installed; run your package manager's install`,
          ),
        );
        continue;
      }
      candidates.push({ dir, source: 'app' });
    }
  }
  for (const folder of opts.pluginPaths ?? []) {
    for (const dir of await listProviderPackages(path.resolve(folder))) candidates.push({ dir, source: 'plugin-path' });
  }
  // Plugins import the app's kernel, so a plugin folder needs no kernel of its own.
  if (opts.pluginPaths?.length) shareKernelWith(opts.pluginPaths.map((f) => path.resolve(f)));

  // Read every manifest first: a package found twice under the same name is one package in two
  // versions, not two providers. A copy in a plugin folder replaces the one bundled with the app (how
  // a user upgrades a first-party provider without a new app release); between plugin folders the
  // first one listed wins, like PATH. Different packages claiming one provider name stay duplicates.
  const found: { dir: string; source: PluginSource; pkg: Record<string, any> }[] = [];
  for (const c of candidates) {
    const dir = await realpath(c.dir);
    if (seenDirs.has(dir)) continue;
    seenDirs.add(dir);
    try {
      found.push({ dir, source: c.source, pkg: await readJson(path.join(dir, 'package.json')) });
    } catch (cause) {
      catalog.problems.push(new PluginError('bad-manifest', path.basename(dir), `${dir}/package.json cannot be read`, { cause }));
    }
  }
  const byName = new Map<string, (typeof found)[number] & { overrides?: DiscoveredPackage['overrides'] }>();
  for (const f of found) {
    const name = String(f.pkg.name ?? path.basename(f.dir));
    const earlier = byName.get(name);
    if (!earlier) byName.set(name, f);
    else if (earlier.source === 'app' && f.source === 'plugin-path') {
      byName.set(name, { ...f, overrides: { version: String(earlier.pkg.version ?? ''), dir: earlier.dir, source: earlier.source } });
    }
  }

  for (const { dir, source, pkg, overrides } of byName.values()) {
    const name = String(pkg.name ?? path.basename(dir));
    const check = checkManifest(pkg);
    if (!check.ok) {
      catalog.problems.push(new PluginError(check.kind, name, `${name}: ${check.reason}`));
      continue;
    }
    const discovered: DiscoveredPackage = {
      packageName: name,
      version: String(pkg.version ?? ''),
      dir,
      source,
      provides: check.manifest.providers.map((p) => ({ ...p })),
      ...(overrides ? { overrides } : {}),
    };
    catalog.add({
      pkg: discovered,
      load: async () => {
        let ns: unknown;
        try {
          ns = await import(pathToFileURL(entryFile(pkg, dir)).href);
        } catch (cause) {
          throw new PluginError('import-failed', name, `${name} threw while importing: ${(cause as Error)?.message ?? cause}`, { cause });
        }
        const problems = checkPackage(pkg, ns);
        if (problems.length) throw new PluginError('bad-export', name, `${name}: ${problems.join('; ')}`);
        const defs = definitionsOf(ns);
        for (const d of defs) {
          const p = discovered.provides.find((x) => x.capability === d.capability && x.name === d.name);
          if (p) p.description = d.description;
        }
        return defs;
      },
    });
  }
  catalog.problems.push(...catalog.duplicates());
  return catalog;
}
