// Runs the benchmarks one after another (never at once: they would measure each other).
//
//   pnpm bench                        # builds everything, then runs cache, queue, storage and gateway
//   node bench/run.mjs [cache|queue|storage|gateway ...]   # after a build; the environment is passed on
//
// Each script prints its own figures; this exits non-zero when any of them failed.
import { spawn } from 'node:child_process';
import path from 'node:path';

const ALL = ['cache', 'queue', 'storage', 'gateway'];
const wanted = process.argv.slice(2);
const unknown = wanted.filter((name) => !ALL.includes(name));
if (unknown.length) {
  console.error(`bench/run.mjs: unknown benchmark ${unknown.join(', ')} (expected any of ${ALL.join(', ')})`);
  process.exit(2);
}

const failed = [];
for (const name of wanted.length ? wanted : ALL) {
  console.log(`\n=== bench/${name}.mjs ===`);
  const child = spawn(process.execPath, [path.join(import.meta.dirname, `${name}.mjs`)], { stdio: 'inherit' });
  const code = await new Promise((resolve) => {
    child.once('error', () => resolve(-1));
    child.once('close', (c) => resolve(c ?? -1));
  });
  if (code !== 0) failed.push(`${name} (exit ${code})`);
}
if (failed.length) {
  console.error(`\nfailed: ${failed.join(', ')}`);
  process.exitCode = 1;
}
