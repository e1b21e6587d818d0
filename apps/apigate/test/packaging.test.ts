// How users get APIGate: the app image's `pnpm deploy` bundle run with plain node, and
// provider packages installed with npm from tarballs into folders outside the workspace.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, cli, REPO_DIR, run, type Served, serve, tempDir } from './helpers.js';

const pnpm = (args: string[], cwd = REPO_DIR) => execFileSync('pnpm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

function workspacePackages(): { name: string; path: string }[] {
  return JSON.parse(pnpm(['-r', 'ls', '--depth', '-1', '--json'])) as { name: string; path: string }[];
}

describe('the app image bundle (pnpm deploy)', () => {
  const bundle = path.join(tempDir('bundle'), 'app');
  let served: Served | undefined;

  beforeAll(() => {
    pnpm(['--filter', '@apigate/app', 'deploy', '--legacy', '--prod', bundle]);
    // As the Dockerfile does: the bundle's manifests get real ranges instead of workspace:.
    execFileSync(process.execPath, [path.join(REPO_DIR, 'scripts', 'deploy-ranges.mjs'), bundle], { encoding: 'utf8' });
  });

  it('has no workspace: ranges left in any package.json of the bundle', () => {
    const grep = spawnSync('grep', ['-rl', '--include=package.json', '"workspace:', bundle], { encoding: 'utf8' });
    expect(grep.status, 'grep exits 1 when nothing matches').toBe(1);
    expect(grep.stdout).toBe('');
  });
  afterAll(async () => {
    await served?.stop();
  });

  it('runs with plain node and answers /admin/health', async () => {
    served = await serve(path.join(bundle, 'dist', 'bin.js'), cleanEnv({ APIGATE_DATA_DIR: tempDir('bundle-data') }), bundle);
    const res = await fetch(`${served.url}/admin/health`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    expect(body).toMatchObject({ status: 'healthy', providers: { cache: { provider: 'memory', status: 'connected' } } });
  });
});

describe('installing packed packages with npm outside the workspace', () => {
  const root = tempDir('npm');
  const tarballs = path.join(root, 'tarballs');
  const appDir = path.join(root, 'app');
  const pluginsDir = path.join(root, 'plugins');
  const tgz: Record<string, string> = {};
  let served: Served | undefined;

  beforeAll(async () => {
    mkdirSync(tarballs);
    // Pack every workspace package the app needs, the kernel, and the third-party example.
    const wanted = workspacePackages().filter(
      (p) => (p.name.startsWith('@apigate/') && p.name !== '@apigate/bench') || p.name === 'apigate-provider-jsonl-notification',
    );
    for (const p of wanted) {
      const before = new Set(readdirSync(tarballs));
      pnpm(['pack', '--pack-destination', tarballs], p.path);
      const file = readdirSync(tarballs).find((f) => !before.has(f))!;
      tgz[p.name] = `file:${path.join(tarballs, file)}`;
    }
    const overrides = Object.fromEntries(
      Object.entries(tgz).filter(([n]) => n.startsWith('@apigate/') && n !== '@apigate/provider-testkit'),
    );
    const npmInstall = async (dir: string, deps: Record<string, string>) => {
      mkdirSync(dir, { recursive: true });
      writeFileSync(
        path.join(dir, 'package.json'),
        JSON.stringify({ name: path.basename(dir), private: true, dependencies: deps, overrides }),
      );
      const r = await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], {
        env: process.env,
        cwd: dir,
      });
      if (r.code !== 0) throw new Error(`npm install in ${dir} failed:\n${r.stderr}`);
    };
    // The app image: the app and its first-party providers.
    await npmInstall(appDir, { '@apigate/app': tgz['@apigate/app']! });
    // A plugins folder a user installs a third-party provider into (its kernel peer comes along).
    await npmInstall(pluginsDir, { 'apigate-provider-jsonl-notification': tgz['apigate-provider-jsonl-notification']! });
  });
  afterAll(async () => {
    await served?.stop();
  });

  const bin = () => path.join(appDir, 'node_modules', '@apigate', 'app', 'dist', 'bin.js');
  const env = () => cleanEnv({ APIGATE_DATA_DIR: tempDir('npm-data'), APIGATE_PLUGIN_PATH: pluginsDir });

  it('turns workspace: ranges into real version ranges in the packed manifests', () => {
    const pkg = JSON.parse(readFileSync(path.join(appDir, 'node_modules/@apigate/app/package.json'), 'utf8'));
    expect(pkg.dependencies['@apigate/kernel']).toMatch(/^\^\d+\.\d+\.\d+$/);
  });

  it('finds the third-party provider through APIGATE_PLUGIN_PATH', async () => {
    const r = await cli(['providers', 'list', '--json'], env(), bin());
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.problems).toEqual([]);
    expect(out.providers).toContainEqual(
      expect.objectContaining({
        capability: 'notification',
        name: 'jsonl',
        package: 'apigate-provider-jsonl-notification',
        source: 'plugin-path',
        selected: false,
      }),
    );
    expect(out.providers).toContainEqual(expect.objectContaining({ capability: 'cache', name: 'memory', source: 'app' }));
  });

  it('serves with the third-party provider when it is selected', async () => {
    const file = path.join(tempDir('jsonl'), 'out.jsonl');
    served = await serve(bin(), { ...env(), NOTIFICATION_PROVIDER: 'jsonl', JSONL_NOTIFICATION_PATH: file }, appDir);
    const body = (await (await fetch(`${served.url}/admin/health`)).json()) as any;
    expect(body.providers.notification).toMatchObject({ provider: 'jsonl', status: 'connected', detail: file });
    expect(served.logs()).toContain('notification served by jsonl');
  });

  it('runs the testkit against the provider outside the workspace, as a third party would', async () => {
    // The example's sources, with its workspace ranges swapped for the packed tarballs and npm ranges.
    const dir = path.join(root, 'third-party');
    const example = path.join(REPO_DIR, 'examples', 'custom-provider');
    cpSync(path.join(example, 'src'), path.join(dir, 'src'), { recursive: true });
    cpSync(path.join(example, 'test'), path.join(dir, 'test'), { recursive: true });
    cpSync(path.join(example, 'vitest.config.ts'), path.join(dir, 'vitest.config.ts'));
    const pkg = JSON.parse(readFileSync(path.join(example, 'package.json'), 'utf8'));
    const vitestRange = pkg.devDependencies.vitest;
    pkg.peerDependencies = { '@apigate/kernel': '^1.0.0' };
    pkg.devDependencies = {
      '@apigate/kernel': tgz['@apigate/kernel'],
      '@apigate/provider-testkit': tgz['@apigate/provider-testkit'],
      vitest: vitestRange,
    };
    pkg.overrides = { '@apigate/kernel': tgz['@apigate/kernel'] };
    writeFileSync(path.join(dir, 'package.json'), JSON.stringify(pkg, null, 2));
    const install = await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], {
      env: process.env,
      cwd: dir,
    });
    expect(install.code, install.stderr).toBe(0);
    const r = await run(path.join(dir, 'node_modules', '.bin', 'vitest'), ['run', '--reporter=json'], {
      env: cleanEnv({ CI: 'true' }),
      cwd: dir,
    });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const report = JSON.parse(r.stdout.slice(r.stdout.indexOf('{')));
    expect(report.numFailedTests).toBe(0);
    // The manifest check, the default-path test and the notification conformance suite all ran.
    expect(report.numPassedTests).toBeGreaterThanOrEqual(10);
  });

  it('without the plugin path, selecting it fails in one line', async () => {
    const r = await cli(
      ['providers', 'test', '--notification'],
      { ...env(), APIGATE_PLUGIN_PATH: '', NOTIFICATION_PROVIDER: 'jsonl' },
      bin(),
    );
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(
      /^apigate: NOTIFICATION_PROVIDER=jsonl: no installed notification provider named "jsonl" \(installed: .*log.*\)$/,
    );
  });
});
