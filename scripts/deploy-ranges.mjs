#!/usr/bin/env node
// `node scripts/deploy-ranges.mjs <deploy dir>`: after `pnpm deploy --legacy`, the bundle's
// package.json files still say `workspace:^` for APIGate packages (pnpm deploy copies manifests as
// they are). A user who runs npm in the bundle, or reads its manifests, must see real ranges, as in
// the published packages: `workspace:^` -> `^<version>`, `workspace:~` -> `~<version>`,
// `workspace:*` -> `<version>`, `workspace:<range>` -> `<range>`. Exits 1 if one is left.
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.resolve(process.argv[2] ?? '');
if (!process.argv[2] || !existsSync(path.join(out, 'package.json'))) {
  console.error('usage: node scripts/deploy-ranges.mjs <pnpm deploy output folder>');
  process.exit(2);
}

const versions = new Map();
for (const group of ['packages', 'plugins', 'apps', 'examples']) {
  const dir = path.join(root, group);
  if (!existsSync(dir)) continue;
  for (const name of readdirSync(dir)) {
    const file = path.join(dir, name, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8'));
      versions.set(pkg.name, pkg.version);
    }
  }
}

function realRange(name, spec) {
  const range = spec.slice('workspace:'.length);
  const version = versions.get(name);
  if (range === '*') return version;
  if (range === '^' || range === '~') return `${range}${version}`;
  return range;
}

/** Every package.json of the bundle: its own, and those of workspace packages copied under node_modules. */
function manifests(dir, depth = 0) {
  const found = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isFile() && e.name === 'package.json') found.push(p);
    else if (e.isDirectory() && depth < 8) found.push(...manifests(p, depth + 1));
  }
  return found;
}

let changed = 0;
const left = [];
for (const file of manifests(out)) {
  const text = readFileSync(file, 'utf8');
  if (!text.includes('"workspace:')) continue;
  const pkg = JSON.parse(text);
  for (const field of ['dependencies', 'devDependencies', 'peerDependencies', 'optionalDependencies']) {
    for (const [name, spec] of Object.entries(pkg[field] ?? {})) {
      if (typeof spec !== 'string' || !spec.startsWith('workspace:')) continue;
      const range = realRange(name, spec);
      if (!range) left.push(`${path.relative(out, file)}: ${name} ${spec}`);
      else pkg[field][name] = range;
    }
  }
  // pnpm hard-links files from the workspace into the bundle: write a new file, never through the link.
  writeFileSync(`${file}.tmp`, `${JSON.stringify(pkg, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
  changed++;
}
if (left.length) {
  console.error(`deploy-ranges: no workspace package for:\n${left.join('\n')}`);
  process.exit(1);
}
console.log(`deploy-ranges: ${changed} package.json files rewritten in ${out}`);
