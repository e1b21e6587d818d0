import { mkdirSync, mkdtempSync, realpathSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { discoverPlugins, PluginError } from '../src/index.js';
import { makeApp, manifest, providerSource, writePackage } from './fixtures.js';

describe('discovery', () => {
  it('finds app dependencies and plugin-path packages by name pattern and manifest, and imports only on load', async () => {
    const app = makeApp(
      ['@apigate/provider-good-cache', 'left-pad'],
      [
        { name: '@apigate/provider-good-cache', manifest: manifest('cache', 'good'), source: providerSource('cache', 'good') },
        { name: 'left-pad', manifest: manifest('cache', 'ignored') },
      ],
    );
    const plugins = mkdtempSync(path.join(tmpdir(), 'apigate-plugins-'));
    const pnm = path.join(plugins, 'node_modules');
    mkdirSync(path.join(pnm, '@apigate'), { recursive: true });
    // npm installs the kernel peer beside plugins installed into a plugins folder.
    symlinkSync(realpathSync(path.join(app, 'node_modules/@apigate/kernel')), path.join(pnm, '@apigate/kernel'), 'dir');
    writePackage(pnm, { name: 'apigate-provider-extra', manifest: manifest('email', 'extra'), source: providerSource('email', 'extra') });
    writePackage(pnm, {
      name: '@acme/apigate-provider-scoped',
      manifest: manifest('queue', 'scoped'),
      source: 'throw new Error("must not be imported")',
    });
    writePackage(pnm, { name: 'not-a-provider', manifest: manifest('queue', 'nope') });

    const catalog = await discoverPlugins({ appDir: app, pluginPaths: [plugins] });
    expect(catalog.problems).toEqual([]);
    expect(catalog.packages.map((p) => [p.packageName, p.source]).sort()).toEqual([
      ['@acme/apigate-provider-scoped', 'plugin-path'],
      ['@apigate/provider-good-cache', 'app'],
      ['apigate-provider-extra', 'plugin-path'],
    ]);
    expect(catalog.installed('cache')).toEqual(['good']);
    const def = await catalog.load('email', 'extra');
    expect(def).toMatchObject({ capability: 'email', name: 'extra', description: 'extra fixture' });
  });

  it('keeps each kind of problem apart, naming the package', async () => {
    const app = makeApp(
      [
        '@apigate/provider-missing',
        '@apigate/provider-norole',
        '@apigate/provider-badcap',
        '@apigate/provider-future',
        '@apigate/provider-throws',
        '@apigate/provider-dup-a',
        '@apigate/provider-dup-b',
        '@apigate/provider-noexport',
      ],
      [
        { name: '@apigate/provider-norole', manifest: { kernelApi: 1, providers: [{ capability: 'cache', name: 'x' }] } },
        { name: '@apigate/provider-badcap', manifest: manifest('teleport', 'x') },
        { name: '@apigate/provider-future', manifest: manifest('cache', 'future', 2) },
        { name: '@apigate/provider-throws', manifest: manifest('cache', 'throws'), source: 'throw new Error("boom at import");' },
        { name: '@apigate/provider-dup-a', manifest: manifest('cache', 'dup'), source: providerSource('cache', 'dup') },
        { name: '@apigate/provider-dup-b', manifest: manifest('cache', 'dup'), source: providerSource('cache', 'dup') },
        { name: '@apigate/provider-noexport', manifest: manifest('cache', 'noexport'), source: 'export default { capability: "cache" };' },
      ],
    );
    const catalog = await discoverPlugins({ appDir: app });
    const kinds = Object.fromEntries(catalog.problems.map((p) => [p.packageName, [p.kind, p.message]]));
    expect(kinds['@apigate/provider-missing']?.[0]).toBe('not-installed');
    expect(kinds['@apigate/provider-norole']).toEqual([
      'bad-manifest',
      '@apigate/provider-norole: apigate.role: apigate.role must be "provider"',
    ]);
    expect(kinds['@apigate/provider-badcap']?.[0]).toBe('bad-manifest');
    expect(kinds['@apigate/provider-badcap']?.[1]).toMatch(/capability must be one of payment, email, cache/);
    expect(kinds['@apigate/provider-future']).toEqual([
      'incompatible-kernel-api',
      '@apigate/provider-future: apigate.kernelApi is 2, this kernel speaks 1',
    ]);
    expect(kinds['@apigate/provider-dup-a']?.[0]).toBe('duplicate');
    expect(kinds['@apigate/provider-dup-a']?.[1]).toMatch(
      /cache\/dup is provided by more than one package: @apigate\/provider-dup-a .* and @apigate\/provider-dup-b/,
    );

    const thrown = await catalog.load('cache', 'throws').catch((e: unknown) => e);
    expect(thrown).toBeInstanceOf(PluginError);
    expect(thrown).toMatchObject({ kind: 'import-failed', packageName: '@apigate/provider-throws' });
    expect((thrown as Error).message).toBe('@apigate/provider-throws threw while importing: boom at import');
    expect(((thrown as Error).cause as Error).message).toBe('boom at import');

    await expect(catalog.load('cache', 'noexport')).rejects.toMatchObject({ kind: 'bad-export' });
    await expect(catalog.load('cache', 'dup')).rejects.toMatchObject({ kind: 'duplicate' });
    await expect(catalog.load('cache', 'nope')).rejects.toThrow(
      'no installed cache provider named "nope" (installed: dup, noexport, throws)',
    );
  });

  it('lets a plugin-path copy of a bundled provider package replace it instead of calling it a duplicate', async () => {
    const app = makeApp(
      ['@apigate/provider-good-cache'],
      [
        {
          name: '@apigate/provider-good-cache',
          manifest: manifest('cache', 'good'),
          source: 'throw new Error("the bundled copy must not be imported")',
        },
      ],
    );
    const plugins = mkdtempSync(path.join(tmpdir(), 'apigate-plugins-'));
    const pnm = path.join(plugins, 'node_modules');
    writePackage(pnm, {
      name: '@apigate/provider-good-cache',
      manifest: manifest('cache', 'good'),
      source: providerSource('cache', 'good'),
      extra: { version: '1.9.0' },
    });

    const catalog = await discoverPlugins({ appDir: app, pluginPaths: [plugins] });
    expect(catalog.problems).toEqual([]);
    expect(catalog.packages).toHaveLength(1);
    expect(catalog.packages[0]).toMatchObject({
      packageName: '@apigate/provider-good-cache',
      version: '1.9.0',
      source: 'plugin-path',
      dir: realpathSync(path.join(pnm, '@apigate/provider-good-cache')),
      overrides: { version: '1.2.3', source: 'app' },
    });
    await expect(catalog.load('cache', 'good')).resolves.toMatchObject({ description: 'good fixture' });
  });

  it('still refuses two different plugin-path packages that claim one provider name', async () => {
    const plugins = mkdtempSync(path.join(tmpdir(), 'apigate-plugins-'));
    const pnm = path.join(plugins, 'node_modules');
    writePackage(pnm, {
      name: 'apigate-provider-jsonl-a',
      manifest: manifest('notification', 'jsonl'),
      source: providerSource('notification', 'jsonl'),
    });
    writePackage(pnm, {
      name: 'apigate-provider-jsonl-b',
      manifest: manifest('notification', 'jsonl'),
      source: providerSource('notification', 'jsonl'),
    });
    const catalog = await discoverPlugins({ pluginPaths: [plugins] });
    expect(catalog.problems.map((p) => p.kind)).toEqual(['duplicate']);
    expect(catalog.problems[0]!.message).toMatch(
      /^notification\/jsonl is provided by more than one package: apigate-provider-jsonl-a \(.+\) and apigate-provider-jsonl-b \(.+\); uninstall one$/,
    );
  });
});
