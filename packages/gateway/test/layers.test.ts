import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The gateway's layers, lowest first (README.md, "Layers"): a folder imports only folders on a lower
// line, never one on its own line or above, so no arrow runs back up. Type-only imports count too: a
// reader follows them the same way. Files at the root of src (index.ts, hotpath.ts, the settings
// registry) are the public surface, above everything.
const LAYERS: string[][] = [
  ['proxy'],
  ['limits', 'metering'],
  ['store'],
  ['domain'],
  ['delivery'],
  ['billing'],
  ['http'],
  ['admin', 'portal', 'tls', 'gate'],
  ['app'],
  ['.'],
];

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

/** Relative imports and re-exports of each file under src, as paths relative to src ('domain/users.ts'). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    const text = readFileSync(file, 'utf8');
    const targets = [...text.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s+'(\.{1,2}\/[^']+)'/gm)].map((m) =>
      path.relative(SRC, path.resolve(path.dirname(file), m[1]!.replace(/\.js$/, '.ts'))),
    );
    graph.set(path.relative(SRC, file), targets);
  }
  return graph;
}

const folderOf = (file: string) => (file.includes(path.sep) ? file.split(path.sep)[0]! : '.');
const levelOf = (folder: string) => LAYERS.findIndex((line) => line.includes(folder));

describe('gateway layers', () => {
  const graph = importGraph();

  it('reads every source file and its imports', () => {
    expect(graph.size).toBeGreaterThan(90);
    expect(graph.get('domain/domain.ts')).toContain('store/changes.ts');
    expect(graph.get('app/http-app.ts')).toContain('admin/api.ts');
  });

  it('places every folder of src in a layer', () => {
    const folders = [...new Set([...graph.keys()].map(folderOf))];
    expect(folders.filter((f) => levelOf(f) < 0)).toEqual([]);
  });

  it('has imports between folders only from a higher layer to a lower one', () => {
    const upward: string[] = [];
    for (const [from, targets] of graph) {
      for (const to of targets) {
        const a = folderOf(from);
        const b = folderOf(to);
        if (a === b) continue;
        if (levelOf(b) >= levelOf(a)) upward.push(`${from} -> ${to}`);
      }
    }
    expect(upward).toEqual([]);
  });

  it('has no import cycle between files', () => {
    // Depth-first search; a file met again while still on the path closes a cycle.
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (file: string, trail: string[]) => {
      state.set(file, 'open');
      for (const next of graph.get(file) ?? []) {
        if (state.get(next) === 'open') cycles.push([...trail.slice(trail.indexOf(next)), next].join(' -> '));
        else if (!state.has(next) && graph.has(next)) visit(next, [...trail, next]);
      }
      state.set(file, 'done');
    };
    for (const file of graph.keys()) if (!state.has(file)) visit(file, [file]);
    expect(cycles).toEqual([]);
  });
});
