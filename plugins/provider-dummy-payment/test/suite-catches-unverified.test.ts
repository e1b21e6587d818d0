import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

// The payment suite is only worth something if a provider that does not verify fails it. The
// fixture runs the real suite in a child vitest on the dummy and on a copy whose verifyWebhook
// skips the signature; the child's JSON report says which tests failed in each.
const pkgDir = fileURLToPath(new URL('..', import.meta.url));
const out = mkdtempSync(path.join(tmpdir(), 'apigate-dummy-fixture-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

interface Report {
  testResults: { assertionResults: { ancestorTitles: string[]; title: string; status: string }[] }[];
}

describe('the payment conformance suite', () => {
  it('fails a provider whose verifyWebhook skips the signature check, or whose listInvoices maps wrongly, and passes the real one', async () => {
    const report = path.join(out, 'report.json');
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VITEST')));
    const code = await new Promise<number>((resolve) => {
      execFile(
        path.join(pkgDir, 'node_modules/.bin/vitest'),
        ['run', '--config', 'test/fixtures/vitest.config.ts', '--reporter=json', '--outputFile', report],
        { cwd: pkgDir, env, maxBuffer: 64 * 1024 * 1024 },
        (err) => resolve(err ? ((err as { code?: number }).code ?? 1) : 0),
      );
    });
    const results = (JSON.parse(readFileSync(report, 'utf8')) as Report).testResults.flatMap((r) => r.assertionResults);
    const failed = (suite: string) => results.filter((a) => a.ancestorTitles[0] === suite && a.status !== 'passed').map((a) => a.title);
    expect(code).not.toBe(0);
    expect(failed('reference')).toEqual([]);
    expect(results.filter((a) => a.ancestorTitles[0] === 'reference').length).toBeGreaterThan(30);
    expect(failed('verifyWebhook skips the signature').sort()).toEqual(
      [
        'rejects a tampered body',
        'rejects a signature made with the wrong secret',
        'rejects a webhook without its signature headers',
        'rejects a garbled signature header',
        'rejects an event of the other mode (test vs live) with WEBHOOK_MODE_MISMATCH',
        'normalises a body verified earlier, without checking the signature again (the inbox replays stored bodies)',
        'rejects a stale signature (replay)',
      ].sort(),
    );
    expect(failed('listInvoices maps wrongly').sort()).toEqual(
      [
        'lists the paid first invoice of a checkout with its amount, currency, status, dates and period',
        'keeps to the limit',
      ].sort(),
    );
  }, 120_000);
});
