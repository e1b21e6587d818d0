// Provider packages in APIGATE_PLUGIN_PATH, installed the way users install them: a plugin folder
// with no kernel of its own (npm install --legacy-peer-deps), one with a kernel copy that must not be
// used, a newer first-party provider replacing the bundled one, and two packages claiming one name.
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { APP_DIR, cleanEnv, cli, REPO_DIR, run, serve, tempDir } from './helpers.js';

const EXAMPLE = path.join(REPO_DIR, 'examples', 'custom-provider');
const LOG_NOTIFICATION = path.join(REPO_DIR, 'plugins', 'provider-log-notification');

/** Copies a built package (package.json, dist) into `<folder>/node_modules/<name>`, as npm would unpack it. */
function install(folder: string, from: string, over: Record<string, unknown> = {}): string {
  const pkg = { ...JSON.parse(readFileSync(path.join(from, 'package.json'), 'utf8')), ...over };
  const dir = path.join(folder, 'node_modules', pkg.name);
  mkdirSync(dir, { recursive: true });
  cpSync(path.join(from, 'dist'), path.join(dir, 'dist'), { recursive: true });
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify(pkg));
  return dir;
}

function pluginFolder(): string {
  const folder = tempDir('plugins');
  writeFileSync(path.join(folder, 'package.json'), JSON.stringify({ name: 'apigate-plugins', private: true }));
  return folder;
}

const envFor = (plugins: string, extra: Record<string, string> = {}) =>
  cleanEnv({ APIGATE_DATA_DIR: tempDir('plugins-data'), APIGATE_PLUGIN_PATH: plugins, ...extra });

describe('plugins in APIGATE_PLUGIN_PATH', () => {
  it('run on the app kernel when the plugin folder has none (npm install --legacy-peer-deps)', async () => {
    const plugins = pluginFolder();
    install(plugins, EXAMPLE);
    expect(existsSync(path.join(plugins, 'node_modules', '@apigate', 'kernel'))).toBe(false);
    const file = path.join(tempDir('jsonl'), 'out.jsonl');
    const env = envFor(plugins, { NOTIFICATION_PROVIDER: 'jsonl', JSONL_NOTIFICATION_PATH: file });

    const list = await cli(['providers', 'list', '--json'], env);
    expect(list.code, list.stderr).toBe(0);
    const out = JSON.parse(list.stdout);
    expect(out.problems).toEqual([]);
    expect(out.providers).toContainEqual(
      expect.objectContaining({
        capability: 'notification',
        name: 'jsonl',
        selected: true,
        source: 'plugin-path',
        description: 'Appends notifications as JSON lines to a file',
      }),
    );
    const test = await cli(['providers', 'test', '--notification', '--json'], env);
    expect(test.code, test.stderr).toBe(0);
    expect(JSON.parse(test.stdout).providers.notification).toMatchObject({ provider: 'jsonl', status: 'connected', detail: file });
  });

  it('use the app kernel even when the plugin folder has a copy of its own', async () => {
    const plugins = pluginFolder();
    install(plugins, EXAMPLE);
    // npm installs peers by default; this copy throws if anything imports it.
    const copy = path.join(plugins, 'node_modules', '@apigate', 'kernel');
    mkdirSync(copy, { recursive: true });
    writeFileSync(
      path.join(copy, 'package.json'),
      JSON.stringify({ name: '@apigate/kernel', version: '1.0.0', type: 'module', exports: { '.': './index.js' } }),
    );
    writeFileSync(path.join(copy, 'index.js'), 'throw new Error("the plugin folder kernel was imported");\n');
    const r = await cli(['providers', 'test', '--notification'], envFor(plugins, { NOTIFICATION_PROVIDER: 'jsonl' }));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/notification\s+jsonl\s+connected/);
  });

  it('let a newer first-party provider in the plugin folder replace the bundled one', async () => {
    const plugins = pluginFolder();
    const dir = install(plugins, LOG_NOTIFICATION, { version: '1.9.0' });
    // Marks the plugin copy, so the test sees which copy the app imported.
    const entry = path.join(dir, 'dist', 'index.js');
    writeFileSync(entry, readFileSync(entry, 'utf8').replace(/description: '([^']*)'/, "description: '$1 (plugin copy)'"));
    const env = envFor(plugins);

    const list = await cli(['providers', 'list', '--json'], env);
    expect(list.code, list.stderr).toBe(0);
    const out = JSON.parse(list.stdout);
    expect(out.problems).toEqual([]);
    const rows = out.providers.filter((p: { capability: string; name: string }) => p.capability === 'notification' && p.name === 'log');
    expect(rows).toEqual([
      expect.objectContaining({
        package: '@apigate/provider-log-notification',
        version: '1.9.0',
        source: 'plugin-path',
        selected: true,
        description: expect.stringMatching(/\(plugin copy\)$/),
        overrides: expect.objectContaining({
          source: 'app',
          version: JSON.parse(readFileSync(path.join(LOG_NOTIFICATION, 'package.json'), 'utf8')).version,
        }),
      }),
    ]);
    const text = await cli(['providers', 'list'], env);
    expect(text.stdout).toMatch(
      /^note: @apigate\/provider-log-notification 1\.9\.0 from the plugin path \(.+\) replaces the bundled \d+\.\d+\.\d+$/m,
    );

    const served = await serve(path.join(APP_DIR, 'dist', 'bin.js'), env);
    try {
      const health = (await (await fetch(`${served.url}/admin/health`)).json()) as {
        providers: Record<string, { provider: string; status: string }>;
      };
      expect(health.providers.notification).toMatchObject({ provider: 'log', status: 'connected' });
    } finally {
      expect(await served.stop()).toBe(0);
    }
  });

  it('refuse two different packages claiming one provider name: list, test and serve all exit 1 with the same line', async () => {
    const plugins = pluginFolder();
    install(plugins, EXAMPLE, { name: 'apigate-provider-jsonl-a' });
    install(plugins, EXAMPLE, { name: 'apigate-provider-jsonl-b' });
    const env = envFor(plugins);
    const line =
      /notification\/jsonl is provided by more than one package: apigate-provider-jsonl-a \(.+\) and apigate-provider-jsonl-b \(.+\); uninstall one/;

    const list = await cli(['providers', 'list'], env);
    expect(list.code).toBe(1);
    expect(list.stdout).toMatch(new RegExp(`^problem \\(duplicate\\): ${line.source}$`, 'm'));
    const json = await cli(['providers', 'list', '--json'], env);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout).problems).toEqual([
      expect.objectContaining({ kind: 'duplicate', message: expect.stringMatching(line) }),
    ]);

    // Not selected, yet refused, as serve refuses it.
    const test = await cli(['providers', 'test', '--cache'], env);
    expect(test.code).toBe(1);
    expect(test.stderr.trim()).toMatch(new RegExp(`^apigate: ${line.source}$`));
    const serveRun = await run(process.execPath, [path.join(APP_DIR, 'dist', 'bin.js'), 'serve', '--port', '0'], { env });
    expect(serveRun.code).toBe(1);
    expect(serveRun.stderr.trim()).toMatch(new RegExp(`^apigate: ${line.source}$`));
  });
});
