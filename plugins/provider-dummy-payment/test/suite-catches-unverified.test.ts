import { fileURLToPath } from 'node:url';
import { runVitestChild } from '@apigate/provider-testkit';
import { describe, expect, it } from 'vitest';

// The payment suite is only worth something if a provider that does not verify fails it. The
// fixture runs the real suite in a child vitest on the dummy and on a copy whose verifyWebhook
// skips the signature; the child's JSON report says which tests failed in each.
const pkgDir = fileURLToPath(new URL('..', import.meta.url));

describe('the payment conformance suite', () => {
  it('fails a provider whose verifyWebhook skips the signature check, or whose listInvoices maps wrongly, and passes the real one', async () => {
    const { code, suites } = await runVitestChild({ cwd: pkgDir, config: 'test/fixtures/vitest.config.ts' });
    const failed = (suite: string) => suites.get(suite)?.failed ?? [`no suite "${suite}" ran`];
    expect(code).not.toBe(0);
    expect(failed('reference')).toEqual([]);
    expect(suites.get('reference')!.passed.length).toBeGreaterThan(30);
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
      ['lists the paid first invoice of a checkout with its amount, currency, status, dates and period', 'keeps to the limit'].sort(),
    );
  }, 120_000);
});
