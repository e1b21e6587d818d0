import { inspect } from 'node:util';
import { NOTIFICATION_SEVERITIES, type Notification, type NotificationProvider, type ProviderError, type Severity } from '@apigate/kernel';
import { describe, expect, it, vi } from 'vitest';
import { ARRIVAL_TIMEOUT_MS, expectFinalRejection, instancePerTest, lifecycleTests, token } from './expectations.js';
import { describeFailingServer, expectRetryable } from './failing-server.js';
import { closedReceiverUrl, startTestReceiver, type TestReceiver } from './receiver.js';
import { type DefinitionOf, describeSuite, resolveSuite, type SuiteSetup, type TestConfig } from './suite.js';

export interface NotificationSuiteContext {
  /** The instance made by `create` for the current test. */
  provider(): NotificationProvider;
}

export interface NotificationSuiteOptions {
  name?: string;
  /** Timeout of each test in ms (default 30 s). */
  timeout?: number;
  /** Called before each test; the suite closes the instance after it. */
  create: () => NotificationProvider | Promise<NotificationProvider>;
  /**
   * Everything the receiving side has seen so far, as it saw it (Slack payloads, webhook bodies,
   * log entries). Each delivered notification must carry its `id` and `title` somewhere in its
   * item (the suite searches the item's JSON), so the suite can count deliveries per id.
   */
  received?: (provider: NotificationProvider) => unknown[] | Promise<unknown[]>;
  additionalTests?: (ctx: NotificationSuiteContext) => void;
  /**
   * For providers that deliver by HTTP to a configured URL (webhooks, chat incoming webhooks):
   * the suite then runs its receiver-failure tests against a local receiver it controls.
   */
  receiver?: NotificationReceiverOptions;
}

export interface NotificationReceiverOptions {
  /**
   * An instance that delivers to `url` (and checks it in `check()`), with its request timeout set
   * to `timeoutMs`. The URL's last path segment is a secret token, as in a Slack webhook URL.
   */
  create: (url: string) => NotificationProvider | Promise<NotificationProvider>;
  /** The timeout `create` configures; a receiver that never answers must fail the call within it (+10 s). Default 2000. */
  timeoutMs?: number;
}

/** What `describeNotificationProvider(definition, setup)` takes besides the setup every suite takes. */
export interface NotificationSuiteSetup extends SuiteSetup, Pick<NotificationSuiteOptions, 'received' | 'additionalTests'> {
  /**
   * For providers that deliver by HTTP to a configured URL: the config fields that point an
   * instance at `url` with its request timeout set to `timeoutMs`, merged over the suite's `config`
   * and `secrets`. The suite then runs its receiver-failure tests against a local receiver it controls.
   */
  receiver?: { config: (url: string) => TestConfig; timeoutMs?: number };
}

const TEST_TIMEOUT = 30_000;

/** A valid notification with a unique id; override any field. */
export function sampleNotification(over: Partial<Notification> = {}): Notification {
  const id = `ntf_conformance_${token()}`;
  return {
    id,
    event: 'provider.error',
    // Its own marker, not the id: the suite checks the id and the title arrived separately.
    title: `Conformance notification ${token()}`,
    severity: 'info',
    occurredAt: new Date(),
    ...over,
  };
}

const serialise = (item: unknown): string => (typeof item === 'string' ? item : (JSON.stringify(item) ?? ''));

/**
 * Conformance suite for notification providers: what `notify` accepts and rejects and, given
 * `received`, what arrived. Each test gets a new instance of `definition`, made by `createForTest`
 * from the setup's `config` and `secrets`.
 */
export function describeNotificationProvider(definition: DefinitionOf<'notification'>, setup?: NotificationSuiteSetup): void;
/** @deprecated The 1.0 form: pass the definition and its config instead, `describeNotificationProvider(definition, { config })`. */
export function describeNotificationProvider(opts: NotificationSuiteOptions): void;
export function describeNotificationProvider(
  first: DefinitionOf<'notification'> | NotificationSuiteOptions,
  setup?: NotificationSuiteSetup,
): void {
  const suite = resolveSuite('notification', 'notification provider conformance', first, setup, (make, s) => ({
    receiver: s.receiver && { create: (url) => make(s.receiver!.config(url)), timeoutMs: s.receiver.timeoutMs },
  }));
  const opts = suite.opts;
  describeSuite(suite, TEST_TIMEOUT, () => {
    const provider = instancePerTest('notification', opts.create);

    const received = opts.received;
    const itemsWith = async (id: string): Promise<string[]> => (await received!(provider())).map(serialise).filter((s) => s.includes(id));
    /** Waits for the notification to arrive and checks it arrived once, carrying its title. */
    const arrivedOnce = async (n: Notification): Promise<string> => {
      const hits = await vi.waitFor(
        async () => {
          const found = await itemsWith(n.id);
          if (found.length === 0) throw new Error(`notification ${n.id} has not arrived`);
          return found;
        },
        { timeout: ARRIVAL_TIMEOUT_MS, interval: 50 },
      );
      expect(hits, `deliveries of ${n.id}`).toHaveLength(1);
      expect(hits[0]).toContain(n.title);
      return hits[0]!;
    };

    describe('notify', () => {
      for (const severity of NOTIFICATION_SEVERITIES) {
        it(`delivers a ${severity} notification`, async () => {
          const n = sampleNotification({ severity, text: `Severity ${severity} body text.` });
          await expect(provider().notify(n)).resolves.toBeUndefined();
          if (received) expect(await arrivedOnce(n)).toContain(n.text);
        });
      }

      it('delivers fields and a url', async () => {
        const n = sampleNotification({
          severity: 'warning',
          text: 'Quota almost used up.',
          fields: { plan: 'pro-conformance', usedPercent: 93 },
          url: 'https://apigate.example.com/admin/users/usr_conformance',
        });
        await provider().notify(n);
        if (received) {
          const item = await arrivedOnce(n);
          expect(item).toContain('pro-conformance');
          expect(item).toContain('93');
          expect(item).toContain(n.url);
        }
      });

      it('delivers a notification with only the required fields', async () => {
        const n = sampleNotification();
        await provider().notify(n);
        if (received) await arrivedOnce(n);
      });

      it('delivers concurrent notifications once each', async () => {
        const batch = Array.from({ length: 5 }, (_v, i) => sampleNotification({ severity: NOTIFICATION_SEVERITIES[i % 4]! }));
        await Promise.all(batch.map((n) => provider().notify(n)));
        if (received) for (const n of batch) await arrivedOnce(n);
      });
    });

    describe('invalid input', () => {
      const invalid: [string, () => Notification][] = [
        ['no id', () => ({ ...sampleNotification(), id: '' })],
        ['no title', () => ({ ...sampleNotification(), title: '' })],
        ['an unknown severity', () => sampleNotification({ severity: 'fatal' as Severity })],
        ['an invalid date', () => sampleNotification({ occurredAt: new Date(Number.NaN) })],
      ];
      for (const [what, make] of invalid) {
        it(`rejects a notification with ${what}, without retry`, async () => {
          const n = make();
          await expectFinalRejection(() => provider().notify(n), `a notification with ${what}`);
          if (received) {
            // A later good notification arriving shows delivery works; the bad one must not be there.
            const after = sampleNotification();
            await provider().notify(after);
            await arrivedOnce(after);
            const items = (await received(provider())).map(serialise);
            for (const mark of [n.id, n.title].filter(Boolean)) {
              expect(
                items.filter((s) => s.includes(mark)),
                `deliveries of the rejected "${mark}"`,
              ).toEqual([]);
            }
          }
        });
      }
    });

    describe('lifecycle', () => {
      lifecycleTests(provider);
    });

    if (opts.receiver) receiverFailureTests(opts.receiver);

    opts.additionalTests?.({ provider });
  });
}

/**
 * What a delivering provider must do when the receiver misbehaves: reject (never swallow an HTTP
 * error), as retryable for 429, 5xx, no answer and no connection, as final for other 4xx; resolve
 * only once the receiver answered; keep the secret URL out of every error and health answer; and
 * report a receiver that is down or failing as not connected.
 */
function receiverFailureTests(opts: NotificationReceiverOptions): void {
  const timeoutMs = opts.timeoutMs ?? 2000;
  const server = { start: startTestReceiver, address: (r: TestReceiver) => r.url, create: opts.create };
  describeFailingServer('when the receiver fails', server, ({ server: receiver, make, failure }) => {
    const noSecretIn = (what: string, value: unknown, secret = receiver().secret) => {
      expect(inspect(value, { depth: 10 }), `${what} must not contain the secret part of the URL`).not.toContain(secret);
    };
    /** The rejection of `notify`, checked to be a ProviderError without the secret. */
    const notifyFailure = async (p: NotificationProvider, secret?: string): Promise<ProviderError> => {
      const error = await failure(p.notify(sampleNotification()), 'the receiver did not accept the notification');
      noSecretIn('the error', error, secret);
      return error;
    };

    it('delivers to the receiver once (the failure tests start from here)', async () => {
      const p = await make();
      const n = sampleNotification();
      await p.notify(n);
      expect(
        receiver()
          .posts()
          .filter((r) => r.body.includes(n.id)),
      ).toHaveLength(1);
    });

    for (const [status, headers] of [
      [500, {}],
      [503, {}],
      [429, { 'retry-after': '7' }],
    ] as const) {
      it(`rejects as retryable when the receiver answers ${status}`, async () => {
        receiver().setMode({ kind: 'answer', status, body: 'receiver failure', headers });
        const err = await notifyFailure(await make());
        expect(receiver().posts().length, 'the receiver got the POST').toBeGreaterThanOrEqual(1);
        expectRetryable(err, true, `a ${status}`);
      });
    }

    it('rejects as final when the receiver answers 400', async () => {
      receiver().setMode({ kind: 'answer', status: 400, body: 'invalid_payload' });
      expectRetryable(await notifyFailure(await make()), false, 'a 400');
    });

    it(
      'rejects as retryable when the receiver never answers, within its timeout',
      async () => {
        receiver().setMode({ kind: 'hang' });
        const started = Date.now();
        expectRetryable(await notifyFailure(await make()), true, 'no answer');
        expect(Date.now() - started, 'time until notify gave up').toBeLessThan(timeoutMs + 10_000);
      },
      timeoutMs + 20_000,
    );

    it('rejects as retryable when nothing listens at the URL', async () => {
      const down = await closedReceiverUrl();
      expectRetryable(await notifyFailure(await make(down.url), down.secret), true, 'a refused connection');
    });

    it('resolves only after the receiver answered', async () => {
      receiver().setMode({ kind: 'hold' });
      const p = await make();
      let settled = false;
      const done = p.notify(sampleNotification()).finally(() => {
        settled = true;
      });
      await vi.waitFor(() => expect(receiver().pending(), 'the receiver got the whole POST').toBe(1), {
        timeout: ARRIVAL_TIMEOUT_MS,
        interval: 20,
      });
      await new Promise((r) => setTimeout(r, 300));
      expect(settled, 'notify settled before the receiver answered').toBe(false);
      receiver().release();
      await expect(done).resolves.toBeUndefined();
    });

    it('check() is not connected while nothing listens at the URL, and names no secret', async () => {
      const down = await closedReceiverUrl();
      const health = await (await make(down.url)).check(AbortSignal.timeout(10_000));
      expect(health.status, 'check() of a receiver that is down').not.toBe('connected');
      noSecretIn('check()', health, down.secret);
    });

    it('check() is not connected while the receiver answers 503, and names no secret', async () => {
      receiver().setMode({ kind: 'answer', status: 503, body: 'down for maintenance' });
      const health = await (await make()).check(AbortSignal.timeout(10_000));
      expect(health.status, 'check() of a receiver answering 503').not.toBe('connected');
      noSecretIn('check()', health);
    });
  });
}
