// `pnpm db:generate --name <short_name>`: regenerates src/store/schema.pg.ts from schema.ts, then
// writes the next migration for both dialects (drizzle/ for SQLite, drizzle/pg/ for PostgreSQL)
// with the same name, so the two never drift.
import { spawnSync } from 'node:child_process';

const args = process.argv.slice(2);
const steps = [
  ['node', ['scripts/pg-schema.mjs']],
  ['drizzle-kit', ['generate', ...args]],
  ['drizzle-kit', ['generate', '--config', 'drizzle.pg.config.ts', ...args]],
];
for (const [cmd, argv] of steps) {
  const r = spawnSync(cmd === 'node' ? process.execPath : cmd, argv, { stdio: 'inherit', shell: cmd !== 'node' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
