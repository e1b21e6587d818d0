// `prepack` of every public package: refuses to pack a missing or partial dist/ (a file per source), so a
// publish can never ship an empty package. It checks instead of building, since a package's
// build needs its workspace dependencies built first (`pnpm release` runs `turbo run build`).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const dir = process.cwd();
const name = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')).name;
const fail = (why) => {
  console.error(`prepack ${name}: ${why}; run \`pnpm exec turbo run build --filter=${name}...\` from the repository root first`);
  process.exit(1);
};

function sources(folder) {
  return readdirSync(folder, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(folder, e.name);
    if (e.isDirectory()) return sources(p);
    return /\.(ts|mts)$/.test(e.name) && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

if (!existsSync(path.join(dir, 'dist'))) fail('dist/ does not exist');
for (const src of sources(path.join(dir, 'src'))) {
  const rel = path.relative(path.join(dir, 'src'), src).replace(/\.(m?)ts$/, '.$1js');
  const out = path.join(dir, 'dist', rel);
  if (!existsSync(out)) fail(`dist/${rel} is missing`);
}
