#!/usr/bin/env node
// `pnpm test:registry`: the release path end to end, against a private npm registry, as a
// maintainer, a user and a third-party provider author meet it. Needs the network to the npm
// registry (Verdaccio proxies every non-APIGate package to it) and Node's build tools or a
// better-sqlite3 prebuilt binary. Prints one progress line per step; exits 1 on the first failure.
//
//  1. builds every package (turbo, cached), copies the repository to a scratch folder, adds a test
//     changeset (kernel minor, app patch) and runs `changeset version` there: the kernel becomes a
//     minor, and no package that only has the kernel as a peer is bumped to a new major;
//  2. starts Verdaccio 6.8.0 (the root devDependency) on a free loopback port with a temp config:
//     @apigate/* and apigate-provider-* are served only from its own storage, everything else is
//     proxied to the npm registry; a user is created for publishing;
//  3. `changeset publish` from the scratch copy publishes every public package (pnpm turns
//     `workspace:` ranges into real ones);
//  4. in an empty folder: `npm install @apigate/app`, `npx -p @apigate/app apigate providers list`,
//     `apigate serve` answering /admin/health, stopped with SIGTERM;
//  5. a third-party provider (examples/custom-provider copied out, depending on @apigate/kernel and
//     @apigate/provider-testkit from the registry) installs, builds, passes its testkit suite and is
//     published; `npm install --legacy-peer-deps` puts it into a plugin folder that has no kernel of
//     its own, and the app finds and runs it from APIGATE_PLUGIN_PATH.
//
// Options (env): APIGATE_REGISTRY_TEST_KEEP=1 keeps the temp folder; NPM_UPLINK overrides the
// registry Verdaccio proxies to (default: `npm config get registry`).
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const work = mkdtempSync(path.join(tmpdir(), 'apigate-registry-test-'));
const started = Date.now();
const children = new Set();

const log = (line) => console.log(`registry-test [${((Date.now() - started) / 1000).toFixed(0).padStart(3)} s] ${line}`);
function fail(message) {
  console.error(`registry-test: FAILED: ${message}`);
  cleanup();
  process.exit(1);
}
let stopping = false;
function cleanup() {
  stopping = true;
  for (const c of children) c.kill('SIGTERM');
  if (process.env.APIGATE_REGISTRY_TEST_KEEP) log(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
process.on('SIGINT', () => fail('interrupted'));

/** Runs a command to completion; fails the test with its output when it exits non-zero. */
function sh(cmd, args, { cwd, env = process.env, allowFail = false } = {}) {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (!allowFail && r.status !== 0) fail(`${cmd} ${args.join(' ')} (in ${cwd}) exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return r;
}
const readJson = (file) => JSON.parse(readFileSync(file, 'utf8'));
const writeJson = (file, value) => writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitFor(what, probe, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v;
    } catch {}
    if (Date.now() > deadline) fail(`${what} not ready after ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function startChild(cmd, args, opts) {
  const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise((r) =>
    child.on('close', (code, signal) => {
      children.delete(child);
      r({ code, signal });
    }),
  );
  return { child, output: () => out, exited };
}

// ── 1. build, scratch copy, changeset version ──────────────────────────────────────────────
log('building every package (turbo, cached)');
sh('pnpm', ['exec', 'turbo', 'run', 'build', '--output-logs=errors-only'], { cwd: root });

const scratch = path.join(work, 'repo');
log(`copying the repository to ${scratch}`);
const skip = new Set(['node_modules', '.git', '.turbo', 'data', '.vitest-results.json']);
cpSync(root, scratch, { recursive: true, filter: (src) => !skip.has(path.basename(src)) });
// pnpm publish resolves workspace: ranges from installed links, and the changesets CLI runs from
// there too: an offline install from the store the repository's install filled (no builds needed).
log('pnpm install --offline in the scratch copy');
sh('pnpm', ['install', '--frozen-lockfile', '--offline', '--ignore-scripts'], { cwd: scratch });

const workspaces = () =>
  ['packages', 'plugins', 'apps']
    .flatMap((d) => (existsSync(path.join(scratch, d)) ? readdirSync(path.join(scratch, d)).map((n) => path.join(scratch, d, n)) : []))
    .filter((d) => existsSync(path.join(d, 'package.json')))
    .map((dir) => ({ dir, pkg: readJson(path.join(dir, 'package.json')) }))
    .filter((p) => !p.pkg.private);
const before = new Map(workspaces().map((p) => [p.pkg.name, p.pkg.version]));

writeFileSync(
  path.join(scratch, '.changeset', 'registry-test.md'),
  '---\n"@apigate/kernel": minor\n"@apigate/app": patch\n---\n\nregistry test: a kernel minor and an app patch\n',
);
log('changeset version (test changeset: @apigate/kernel minor, @apigate/app patch)');
sh(path.join(scratch, 'node_modules', '.bin', 'changeset'), ['version'], { cwd: scratch });
const after = workspaces();
const bumped = after.filter((p) => p.pkg.version !== before.get(p.pkg.name));
const major = (v) => Number(v.split('.')[0]);
const kernel = after.find((p) => p.pkg.name === '@apigate/kernel').pkg.version;
if (major(kernel) !== major(before.get('@apigate/kernel')) || kernel === before.get('@apigate/kernel'))
  fail(`kernel went ${before.get('@apigate/kernel')} -> ${kernel}, expected a minor`);
const majors = after.filter((p) => major(p.pkg.version) > major(before.get(p.pkg.name)));
if (majors.length) fail(`a kernel minor released majors of ${majors.map((p) => p.pkg.name).join(', ')}`);
if (!readFileSync(path.join(scratch, 'packages/kernel/CHANGELOG.md'), 'utf8').includes('registry test: a kernel minor'))
  fail('kernel CHANGELOG.md lacks the test changeset');
log(`versioned ${bumped.length} packages (kernel ${kernel}, no majors); CHANGELOG.md written`);

// ── 2. Verdaccio ───────────────────────────────────────────────────────────────────────────
const port = await freePort();
const registry = `http://127.0.0.1:${port}/`;
const uplink = process.env.NPM_UPLINK || sh('npm', ['config', 'get', 'registry'], { cwd: work }).stdout.trim();
const vd = path.join(work, 'verdaccio');
mkdirSync(vd);
writeFileSync(
  path.join(vd, 'config.yaml'),
  `storage: ${path.join(vd, 'storage')}
auth:
  htpasswd:
    file: ${path.join(vd, 'htpasswd')}
    max_users: 10
uplinks:
  npmjs:
    url: ${uplink}
    timeout: 120s
    max_fails: 5
packages:
  '@apigate/*':
    access: $all
    publish: $authenticated
  'apigate-provider-*':
    access: $all
    publish: $authenticated
  '**':
    access: $all
    publish: $authenticated
    proxy: npmjs
server:
  keepAliveTimeout: 60
max_body_size: 200mb
log: { type: stdout, format: pretty, level: warn }
`,
);
log(`starting Verdaccio on ${registry} (uplink ${uplink})`);
const verdaccio = startChild(
  path.join(root, 'node_modules', '.bin', 'verdaccio'),
  ['--config', path.join(vd, 'config.yaml'), '--listen', `127.0.0.1:${port}`],
  { cwd: vd },
);
await Promise.race([
  waitFor('Verdaccio', async () => (await fetch(`${registry}-/ping`)).ok, 60_000),
  verdaccio.exited.then(({ code }) => stopping || fail(`Verdaccio exited ${code}:\n${verdaccio.output()}`)),
]);
const userRes = await fetch(`${registry}-/user/org.couchdb.user:release`, {
  method: 'PUT',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ name: 'release', password: 'registry-test-password' }),
});
if (!userRes.ok) fail(`cannot create the Verdaccio user: ${userRes.status} ${await userRes.text()}`);
const { token } = await userRes.json();
const npmrc = path.join(work, 'npmrc');
// A user config of its own: registry and token, plus what this machine's own npm config needs
// (CA bundle, node headers for compiling better-sqlite3).
const userConfig = (key) => sh('npm', ['config', 'get', key], { cwd: work }).stdout.trim();
const extra = ['cafile', 'nodedir'].map((k) => [k, userConfig(k)]).filter(([, v]) => v && v !== 'null' && v !== 'undefined');
writeFileSync(
  npmrc,
  [
    `registry=${registry}`,
    `//127.0.0.1:${port}/:_authToken=${token}`,
    'audit=false',
    'fund=false',
    'update-notifier=false',
    ...extra.map(([k, v]) => `${k}=${v}`),
  ].join('\n'),
);
const npmEnv = { ...process.env, NPM_CONFIG_USERCONFIG: npmrc, npm_config_registry: registry };
for (const k of Object.keys(npmEnv)) if (/^(npm_config_(?!registry$|userconfig$))/i.test(k) || k === 'npm_execpath') delete npmEnv[k];
log('Verdaccio up, with a publishing user');

// ── 3. publish ─────────────────────────────────────────────────────────────────────────────
log('changeset publish (pnpm publish of every public package)');
sh(path.join(scratch, 'node_modules', '.bin', 'changeset'), ['publish', '--no-git-tag'], { cwd: scratch, env: npmEnv });
/** GET as JSON, retried: Verdaccio may close a kept-alive socket under load (EPIPE). */
async function getJson(url) {
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await fetch(url, { headers: { connection: 'close' } });
      return res.ok ? await res.json() : undefined;
    } catch (err) {
      if (attempt === 5) fail(`GET ${url}: ${err.cause?.code ?? err.message}`);
      await new Promise((r) => setTimeout(r, 500 * attempt));
    }
  }
}
for (const p of after) {
  const meta = await getJson(`${registry}${p.pkg.name.replace('/', '%2f')}`);
  if (!meta?.versions?.[p.pkg.version]) fail(`${p.pkg.name}@${p.pkg.version} is not in the registry`);
  const published = meta.versions[p.pkg.version];
  const ranges = JSON.stringify({ ...published.dependencies, ...published.peerDependencies });
  if (ranges.includes('workspace:')) fail(`${p.pkg.name} was published with workspace: ranges: ${ranges}`);
}
log(`published ${after.length} packages, no workspace: ranges left`);

// ── 4. a user installs the app ─────────────────────────────────────────────────────────────
const userDir = path.join(work, 'user');
mkdirSync(userDir);
log('npm install @apigate/app in an empty folder (better-sqlite3 is fetched prebuilt or compiled)');
const t0 = Date.now();
sh('npm', ['install', '--no-audit', '--no-fund', '@apigate/app'], { cwd: userDir, env: npmEnv });
log(`installed in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
const installedApp = readJson(path.join(userDir, 'node_modules/@apigate/app/package.json'));
const installedKernel = readJson(path.join(userDir, 'node_modules/@apigate/kernel/package.json'));
if (installedKernel.version !== kernel) fail(`the app got kernel ${installedKernel.version}, expected ${kernel}`);
log(`@apigate/app ${installedApp.version} with @apigate/kernel ${installedKernel.version}`);

const appEnv = (extra = {}) => {
  const env = Object.fromEntries(Object.entries(npmEnv).filter(([k]) => !/_PROVIDER$|^APIGATE_|^REDIS_|^SMTP_|^OAUTH_|^TLS_/.test(k)));
  return { ...env, APIGATE_DATA_DIR: path.join(work, 'data'), ...extra };
};
const list = sh('npx', ['--no-install', '-p', '@apigate/app', 'apigate', 'providers', 'list', '--json'], { cwd: userDir, env: appEnv() });
const listed = JSON.parse(list.stdout);
if (listed.problems.length) fail(`providers list reports problems: ${JSON.stringify(listed.problems)}`);
const selected = listed.providers.filter((p) => p.selected).map((p) => `${p.capability}/${p.name}`);
log(`npx -p @apigate/app apigate providers list: ${listed.providers.length} providers, selected ${selected.join(', ')}`);

async function serveAndCheck(extraEnv, expect) {
  const httpPort = await freePort();
  const bin = path.join(userDir, 'node_modules', '.bin', 'apigate');
  const s = startChild(bin, ['serve', '--host', '127.0.0.1'], {
    cwd: userDir,
    env: appEnv({ APIGATE_PORT: String(httpPort), ...extraEnv }),
  });
  const url = `http://127.0.0.1:${httpPort}/admin/health`;
  let answered = false;
  const health = await Promise.race([
    waitFor(
      'apigate serve',
      async () => {
        const res = await fetch(url);
        return res.status === 200 ? res.json() : undefined;
      },
      60_000,
    ),
    s.exited.then(({ code }) => answered || fail(`apigate serve exited ${code} before answering:\n${s.output()}`)),
  ]);
  answered = true;
  expect(health, s.output());
  s.child.kill('SIGTERM');
  const { code } = await s.exited;
  if (code !== 0) fail(`apigate serve exited ${code} after SIGTERM:\n${s.output()}`);
  return health;
}
const health = await serveAndCheck({}, (h) => {
  if (h.status !== 'healthy') fail(`/admin/health says ${JSON.stringify(h)}`);
});
log(`apigate serve: /admin/health ${health.status}; stopped cleanly on SIGTERM`);

// ── 5. a third-party provider author ──────────────────────────────────────────────────────
const tp = path.join(work, 'third-party');
const example = path.join(root, 'examples', 'custom-provider');
for (const f of ['src', 'test', 'README.md', 'tsconfig.json', 'tsconfig.build.json', 'vitest.config.ts'])
  cpSync(path.join(example, f), path.join(tp, f), { recursive: true });
const tpPkg = readJson(path.join(example, 'package.json'));
delete tpPkg.private;
delete tpPkg.scripts.lint; // the monorepo's linter
const testkitVersion = after.find((p) => p.pkg.name === '@apigate/provider-testkit').pkg.version;
tpPkg.devDependencies = { ...tpPkg.devDependencies, '@apigate/kernel': `^${kernel}`, '@apigate/provider-testkit': `^${testkitVersion}` };
writeJson(path.join(tp, 'package.json'), tpPkg);
log('third-party provider: npm install (@apigate/kernel and @apigate/provider-testkit from the registry)');
sh('npm', ['install', '--no-audit', '--no-fund'], { cwd: tp, env: npmEnv });
sh('npm', ['run', 'build'], { cwd: tp, env: npmEnv });
sh('npm', ['run', 'typecheck'], { cwd: tp, env: npmEnv });
const vt = sh(path.join(tp, 'node_modules', '.bin', 'vitest'), ['run', '--reporter=json', '--outputFile', path.join(work, 'tp.json')], {
  cwd: tp,
  env: { ...npmEnv, CI: 'true' },
  allowFail: true,
});
const report = existsSync(path.join(work, 'tp.json')) ? readJson(path.join(work, 'tp.json')) : undefined;
if (vt.status !== 0 || !report || report.numFailedTests > 0 || report.numPassedTests < 10) {
  fail(
    `the third-party provider's tests failed (${report?.numPassedTests ?? 0} passed, ${report?.numFailedTests ?? '?'} failed):\n${vt.stdout}\n${vt.stderr}`,
  );
}
log(`third-party provider: built, typechecked, testkit suite passed (${report.numPassedTests} tests)`);
sh('npm', ['publish'], { cwd: tp, env: npmEnv });
log(`published ${tpPkg.name}@${tpPkg.version}`);

const plugins = path.join(work, 'plugins');
mkdirSync(plugins);
writeJson(path.join(plugins, 'package.json'), { name: 'apigate-plugins', private: true });
sh('npm', ['install', '--no-audit', '--no-fund', '--legacy-peer-deps', tpPkg.name], { cwd: plugins, env: npmEnv });
if (existsSync(path.join(plugins, 'node_modules', '@apigate', 'kernel'))) fail('the plugin folder got a kernel of its own');
log('npm install --legacy-peer-deps of the provider into a plugin folder: no kernel copy there');
const pluginEnv = {
  APIGATE_PLUGIN_PATH: plugins,
  NOTIFICATION_PROVIDER: 'jsonl',
  JSONL_NOTIFICATION_PATH: path.join(work, 'notifications.jsonl'),
};
const pl = JSON.parse(
  sh(path.join(userDir, 'node_modules', '.bin', 'apigate'), ['providers', 'list', '--json'], { cwd: userDir, env: appEnv(pluginEnv) })
    .stdout,
);
if (!pl.providers.some((p) => p.name === 'jsonl' && p.selected && p.source === 'plugin-path'))
  fail(`providers list does not select jsonl from the plugin path: ${JSON.stringify(pl)}`);
await serveAndCheck(pluginEnv, (h) => {
  if (h.providers?.notification?.provider !== 'jsonl' || h.providers.notification.status !== 'connected')
    fail(`health with the plugin: ${JSON.stringify(h)}`);
});
log('apigate serve with NOTIFICATION_PROVIDER=jsonl from APIGATE_PLUGIN_PATH: notification connected');

log(`PASSED in ${((Date.now() - started) / 1000).toFixed(0)} s`);
cleanup();
process.exit(0);
