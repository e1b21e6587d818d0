import { NOTIFICATION_SEVERITIES, type Notification, type NotificationProvider, type Severity } from '@apigate/kernel';
import { describe, expect, it, vi } from 'vitest';
import { ARRIVAL_TIMEOUT_MS, expectFinalRejection, instancePerTest, lifecycleTests, token } from './expectations.js';

export interface NotificationSuiteContext {
  /** The instance made by `create` for the current test. */
  provider(): NotificationProvider;
}

export interface NotificationSuiteOptions {
  name?: string;
  /** Called before each test; the suite closes the instance after it. */
  create: () => NotificationProvider | Promise<NotificationProvider>;
  /**
   * Everything the receiving side has seen so far, as it saw it (Slack payloads, webhook bodies,
   * log entries). Each delivered notification must carry its `id` and `title` somewhere in its
   * item (the suite searches the item's JSON), so the suite can count deliveries per id.
   */
  received?: (provider: NotificationProvider) => unknown[] | Promise<unknown[]>;
  additionalTests?: (ctx: NotificationSuiteContext) => void;
}

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

const serialise = (item: unknown): string => (typeof item === 'string' ? item : JSON.stringify(item) ?? '');

/** Conformance suite for notification providers: what `notify` accepts and rejects and, given `received`, what arrived. */
export function describeNotificationProvider(opts: NotificationSuiteOptions): void {
  describe(opts.name ?? 'notification provider conformance', () => {
    const provider = instancePerTest('notification', opts.create);

    const received = opts.received;
    const itemsWith = async (id: string): Promise<string[]> =>
      (await received!(provider())).map(serialise).filter((s) => s.includes(id));
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
              expect(items.filter((s) => s.includes(mark)), `deliveries of the rejected "${mark}"`).toEqual([]);
            }
          }
        });
      }
    });

    describe('lifecycle', () => {
      lifecycleTests(provider);
    });

    opts.additionalTests?.({ provider });
  });
}
