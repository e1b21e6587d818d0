// The one command that runs everything (`pnpm test`): services, then build, typecheck and
// lint of every package, then every package's tests, then one summary line in the plain
// "N passed, N failed" form CI reads. Turbo caches and runs packages in parallel.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RESULTS = '.vitest-results.json';
const run = (cmd, args) => spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: process.env }).status ?? 1;

function workspaceDirs() {
  const out = spawnSync('pnpm', ['-r', 'ls', '--depth', '-1', '--json'], { cwd: root, encoding: 'utf8' });
  return JSON.parse(out.stdout)
    .map((p) => p.path)
    .filter((p) => p !== root);
}

if (run('node', ['scripts/services.mjs']) !== 0) process.exit(1);
for (const dir of workspaceDirs()) rmSync(path.join(dir, RESULTS), { force: true });

const concurrency = process.env.APIGATE_TEST_CONCURRENCY ?? '3';
let status = run('pnpm', ['exec', 'turbo', 'run', 'build', 'typecheck', 'lint', '--output-logs=errors-only']);
if (status === 0) {
  status = run('pnpm', [
    'exec',
    'turbo',
    'run',
    'test',
    `--concurrency=${concurrency}`,
    '--continue',
    '--output-logs=new-only',
    '--',
    '--reporter=default',
    '--reporter=json',
    `--outputFile.json=${RESULTS}`,
  ]);
}

let passed = 0;
let failed = 0;
let skipped = 0;
const failures = [];
for (const dir of workspaceDirs()) {
  const file = path.join(dir, RESULTS);
  if (!existsSync(file)) continue;
  const r = JSON.parse(readFileSync(file, 'utf8'));
  passed += r.numPassedTests;
  failed += r.numFailedTests;
  skipped += r.numPendingTests + (r.numTodoTests ?? 0);
  for (const f of r.testResults ?? []) {
    for (const a of f.assertionResults ?? []) {
      if (a.status === 'failed') failures.push(`${path.relative(root, f.name)} > ${a.fullName}`);
    }
  }
}
for (const f of failures) console.log(`FAILED ${f}`);
if (status !== 0 && failed === 0) console.log('a build, typecheck, lint or test task failed before its tests ran (see above)');
console.log(`Tests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(status !== 0 || failed > 0 ? 1 : 0);
