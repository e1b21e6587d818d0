import { Writable } from 'node:stream';
import { createLogger, type NotificationProvider, resolveProviderConfig, settingsFromRecord } from '@apigate/kernel';
import { assertValidManifest, createForTest, describeNotificationProvider, sampleNotification } from '@apigate/provider-testkit';
import { describe, expect, it } from 'vitest';
import pkg from '../package.json' with { type: 'json' };
import provider, { type LogNotification } from '../src/index.js';

const asLog = (p: NotificationProvider) => p as unknown as LogNotification;

describe('provider-log-notification', () => {
  it('has a valid manifest', () => {
    assertValidManifest(pkg, provider);
  });

  describeNotificationProvider(provider, { name: 'conformance', received: (p) => asLog(p).notifications() });

  /** A provider whose pino output (JSON lines) is collected in `lines`. */
  function withCapturedLogs() {
    const lines: Record<string, any>[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
        done();
      },
    });
    const notifier = provider.create(provider.config.parse({}), {
      capability: 'notification',
      provider: 'log',
      logger: createLogger({ level: 'info', destination: sink }),
      dataDir: '/nonexistent',
      emit: () => {},
    }) as LogNotification;
    return { notifier, lines };
  }

  it('logs at the level of each severity, with the title as message', async () => {
    const { notifier, lines } = withCapturedLogs();
    for (const severity of ['info', 'warning', 'error', 'critical'] as const) {
      await notifier.notify(sampleNotification({ severity, title: `t-${severity}`, fields: { plan: 'pro', n: 3 } }));
    }
    expect(lines.map((l) => [l.level, l.msg])).toEqual([
      [30, 't-info'],
      [40, 't-warning'],
      [50, 't-error'],
      [60, 't-critical'],
    ]);
    expect(lines[0]!.notification).toMatchObject({ event: 'provider.error', severity: 'info', fields: { plan: 'pro', n: 3 } });
    expect(typeof lines[0]!.notification.occurredAt).toBe('string');
  });

  it('keeps only the last N notifications', async () => {
    const { provider: notifier } = await createForTest(provider, { keepLast: '2' });
    const sent = [sampleNotification(), sampleNotification(), sampleNotification()];
    for (const n of sent) await notifier.notify(n);
    expect(
      asLog(notifier)
        .notifications()
        .map((n) => n.id),
    ).toEqual([sent[1]!.id, sent[2]!.id]);
    asLog(notifier).clear();
    expect(asLog(notifier).notifications()).toEqual([]);
  });

  it('reads keepLast from NOTIFICATION_LOG_KEEP_LAST', () => {
    const { config } = resolveProviderConfig(provider, { NOTIFICATION_LOG_KEEP_LAST: '5' }, settingsFromRecord({}));
    expect(config).toEqual({ keepLast: 5 });
  });

  it('rejects a url that is not absolute', async () => {
    const { provider: notifier } = await createForTest(provider);
    await expect(notifier.notify(sampleNotification({ url: '/relative' }))).rejects.toThrow(/url: expected an absolute URL/);
  });
});
