import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** What a child vitest run reported: its exit code and, per top-level describe block, which tests passed and which did not. */
export interface ChildRun {
  code: number | null;
  suites: Map<string, { passed: string[]; failed: string[] }>;
}

interface JsonReport {
  testResults: { assertionResults: { ancestorTitles: string[]; title: string; status: string }[] }[];
}

/**
 * Runs vitest in a child process (`node_modules/.bin/vitest` of `cwd`, with its own `config`) on
 * `files` and reads its JSON report. This is how a suite is proven to catch bugs: a fixture file
 * runs it against a correct provider and deliberately broken copies, one describe block each, and
 * the parent test checks which tests failed in each. The parent's `VITEST_*` variables are left
 * out, so the child behaves as a top-level run.
 */
export function runVitestChild(opts: { cwd: string; config: string; files?: string[] }): Promise<ChildRun> {
  const out = mkdtempSync(path.join(tmpdir(), 'apigate-child-vitest-'));
  const report = path.join(out, 'report.json');
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VITEST')));
  const args = ['run', '--config', opts.config, '--reporter=json', '--outputFile', report, ...(opts.files ?? [])];
  return new Promise<ChildRun>((resolve, reject) => {
    execFile(
      path.join(opts.cwd, 'node_modules/.bin/vitest'),
      args,
      { cwd: opts.cwd, env, maxBuffer: 64 * 1024 * 1024 },
      (err, _stdout, stderr) => {
        try {
          let parsed: JsonReport;
          try {
            parsed = JSON.parse(readFileSync(report, 'utf8')) as JsonReport;
          } catch {
            reject(
              new Error(`the child vitest wrote no report for ${opts.files?.join(' ') ?? opts.config}: ${err?.message ?? ''}\n${stderr}`),
            );
            return;
          }
          const suites: ChildRun['suites'] = new Map();
          for (const a of parsed.testResults.flatMap((r) => r.assertionResults)) {
            const suite = a.ancestorTitles[0] ?? '';
            if (!suites.has(suite)) suites.set(suite, { passed: [], failed: [] });
            suites.get(suite)![a.status === 'passed' ? 'passed' : 'failed'].push(a.title);
          }
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, suites });
        } finally {
          rmSync(out, { recursive: true, force: true });
        }
      },
    );
  });
}
