import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runVitestChild } from '../src/index.js';

// The suites are only worth something if a broken provider fails them. Each fixture runs the real
// suite in a child vitest against a tiny correct implementation and deliberately broken copies;
// this test reads the child's JSON report and checks exactly which tests failed.

const pkgDir = fileURLToPath(new URL('..', import.meta.url));
const runFixture = (file: string) => runVitestChild({ cwd: pkgDir, config: 'test/fixtures/vitest.config.ts', files: [file] });

// The children start at once; each test awaits its own.
const cacheRun = runFixture('cache.fixture.ts');
const storageRun = runFixture('storage.fixture.ts');
const notificationRun = runFixture('notification.fixture.ts');
const emailRun = runFixture('email.fixture.ts');

const RECEIVER = {
  status: [
    'rejects as retryable when the receiver answers 500',
    'rejects as retryable when the receiver answers 503',
    'rejects as retryable when the receiver answers 429',
  ],
  final: 'rejects as final when the receiver answers 400',
  hang: 'rejects as retryable when the receiver never answers, within its timeout',
  down: 'rejects as retryable when nothing listens at the URL',
  early: 'resolves only after the receiver answered',
  delivered: 'delivers to the receiver once (the failure tests start from here)',
  check: [
    'check() is not connected while nothing listens at the URL, and names no secret',
    'check() is not connected while the receiver answers 503, and names no secret',
  ],
};

const SMTP = {
  baseline: 'sends through the stub server (the failure tests start from here)',
  refused: 'rejects as final when the server refuses the recipient (550)',
  temporary: 'rejects as retryable when the server fails the message temporarily (451)',
  unavailable: 'rejects as retryable when the server is unavailable (421)',
  down: 'rejects as retryable when nothing listens',
  silent: 'rejects as retryable when the server never greets, within its timeout',
  bulk: 'reports a refused message in sendBulk instead of counting it sent',
  check: 'check() is not connected while nothing listens',
};

describe('the conformance suites catch broken providers', () => {
  it('cache suite: the reference passes, each broken cache fails exactly the tests for its bug', async () => {
    const { code, suites } = await cacheRun;
    expect(code).not.toBe(0);
    const reference = suites.get('reference')!;
    expect(reference.failed).toEqual([]);
    expect(reference.passed.length).toBeGreaterThanOrEqual(25);
    expect(suites.get('non-atomic increment')!.failed).toEqual([
      'is atomic under concurrency: 200 concurrent increments give 200 distinct results 1..200',
    ]);
    expect(suites.get('initial ignored')!.failed).toEqual([
      'starts a key it creates from `initial` (a re-seeded counter), and ignores `initial` once the key exists',
    ]);
    expect(suites.get('ttl ignored')!.failed).toEqual([
      'expires a key after ttlMs, keeps keys with a long or no ttl',
      'set without ttl removes an earlier ttl',
      'setMany applies ttl to every entry',
      'applies ttlMs only when the increment creates the key',
      'does not extend the ttl of a counter it increments',
    ]);
    expect(suites.get('binary as text')!.failed).toEqual([
      'round-trips binary values byte-exact, including 0x00 and invalid UTF-8',
      'round-trips a large random value',
      'getMany returns values in the order asked, undefined for missing keys',
      'setMany writes every entry, strings and bytes, overwriting existing ones',
    ]);
  }, 120_000);

  it('storage suite: the reference passes, each broken store fails exactly the tests for its bug', async () => {
    const { code, suites } = await storageRun;
    expect(code).not.toBe(0);
    const reference = suites.get('reference')!;
    expect(reference.failed).toEqual([]);
    expect(reference.passed.length).toBeGreaterThanOrEqual(25);
    expect(suites.get('pagination drops items')!.failed).toEqual([
      'sorts keys by code point, across "/" boundaries',
      'paginates with cursor and limit: no duplicates, no gaps, cursor only while more follow',
    ]);
    expect(suites.get('range end exclusive')!.failed).toEqual(['reads inclusive byte ranges, clipping an end past the last byte']);
    expect(suites.get('delete before write')!.failed).toEqual([
      'rejects a put whose body stream fails, leaving no object and the previous version intact',
    ]);
  }, 120_000);

  it('notification suite: the reference passes, each broken notifier fails the receiver tests for its bug', async () => {
    const { code, suites } = await notificationRun;
    expect(code).not.toBe(0);
    const reference = suites.get('reference')!;
    expect(reference.failed).toEqual([]);
    expect(reference.passed).toEqual(
      expect.arrayContaining([...RECEIVER.status, RECEIVER.final, RECEIVER.hang, RECEIVER.down, RECEIVER.early, ...RECEIVER.check]),
    );
    expect(suites.get('swallows HTTP errors')!.failed).toEqual([...RECEIVER.status, RECEIVER.final]);
    expect(suites.get('429 and 5xx final')!.failed).toEqual(RECEIVER.status);
    expect(suites.get('secret URL in errors')!.failed).toEqual([...RECEIVER.status, RECEIVER.final, RECEIVER.hang, RECEIVER.down]);
    expect(suites.get('check always connected')!.failed).toEqual(RECEIVER.check);
    // Fire and forget: every rejection test fails; whether the POST already arrived when notify
    // returned in the delivery test is a race, so that one may go either way.
    const early = suites.get('resolves before the POST completes')!.failed.filter((t) => t !== RECEIVER.delivered);
    expect(early).toEqual([...RECEIVER.status, RECEIVER.final, RECEIVER.hang, RECEIVER.down, RECEIVER.early]);
  }, 180_000);

  it('email suite: the reference passes, each broken email provider fails the tests for its bug', async () => {
    const { code, suites } = await emailRun;
    expect(code).not.toBe(0);
    const reference = suites.get('reference')!;
    expect(reference.failed).toEqual([]);
    expect(reference.passed).toEqual(
      expect.arrayContaining([...Object.values(SMTP), 'sends attachments byte for byte', 'sends cc visibly and bcc hidden']),
    );
    expect(suites.get('drops attachments')!.failed).toEqual(['sends attachments byte for byte']);
    expect(suites.get('ignores cc and bcc')!.failed).toEqual(['sends cc visibly and bcc hidden']);
    expect(suites.get('success on SMTP 5xx')!.failed).toEqual([SMTP.refused, SMTP.bulk]);
    // SMTP's 5xx is final and 4xx temporary, the opposite of HTTP: unclassified, the kernel gets all three wrong.
    expect(suites.get('no retry classification')!.failed).toEqual([SMTP.refused, SMTP.temporary, SMTP.unavailable]);
    expect(suites.get('check always connected')!.failed).toEqual([SMTP.check]);
  }, 180_000);
});
