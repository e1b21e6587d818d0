import { EventEmitter } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  ConfigError,
  createKernel,
  discoverPlugins,
  type Kernel,
  type KernelEvents,
  type Notification,
  type ProviderErrorEvent,
  settingsFromRecord,
} from '@apigate/kernel';
import memoryQueue from '@apigate/provider-memory-queue';
import smtp from '@apigate/provider-smtp';
import webhook from '@apigate/provider-webhook-notification';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  AlertRouter,
  DELIVERY_FAILED_CODE,
  type Delivery,
  NOTIFICATION_QUEUE,
  matchesEvent,
  readDeliverySettings,
  startDelivery,
} from '../src/delivery/index.js';
import { startReceiver, type WebhookReceiver } from './helpers/delivery.js';
import { closedPort } from './helpers/http.js';

const event = (over: Partial<ProviderErrorEvent> = {}): ProviderErrorEvent => ({
  type: 'provider.error',
  capability: 'email',
  provider: 'smtp',
  operation: 'send',
  retryable: true,
  code: 'ECONNECTION',
  message: 'email/smtp send: connection refused',
  at: new Date('2025-03-01T10:00:00Z'),
  ...over,
});

/** A router on its own emitter, a clock the test moves, and every notification it hands over. */
function router(patterns: string[], intervalMs = 60_000) {
  const events = new EventEmitter<KernelEvents>();
  const queued: Notification[] = [];
  const direct: Notification[] = [];
  let now = 1_000_000;
  const r = new AlertRouter({
    events,
    patterns,
    intervalMs,
    send: async (n) => queued.push(n),
    sendDirect: async (n) => direct.push(n),
    now: () => now,
  });
  return { r, events, queued, direct, advance: (ms: number) => (now += ms) };
}

describe('alert router', () => {
  it('sends one alert per capability, provider and operation per interval; the next one carries the suppressed count', async () => {
    const { r, events, queued, advance } = router(['provider.error']);
    expect(r.active).toBe(true);
    events.emit('provider.error', event());
    for (let i = 0; i < 3; i++) {
      advance(10_000);
      events.emit('provider.error', event());
    }
    // Another operation of the same provider is another key: not held back by the first.
    events.emit(
      'provider.error',
      event({ operation: 'deliver', retryable: false, code: DELIVERY_FAILED_CODE, message: 'job moved to the failed set' }),
    );
    expect(queued.map((n) => n.title)).toEqual(['email/smtp send failed', 'email/smtp deliver failed']);
    expect(queued[0]).toMatchObject({
      event: 'provider.error',
      severity: 'warning',
      text: 'email/smtp send: connection refused',
      fields: { capability: 'email', provider: 'smtp', operation: 'send', retryable: 'yes', code: 'ECONNECTION' },
      occurredAt: new Date('2025-03-01T10:00:00Z'),
    });
    expect(queued[0]!.fields).not.toHaveProperty('suppressed');
    expect(queued[1]).toMatchObject({ severity: 'error', fields: { retryable: 'no', code: DELIVERY_FAILED_CODE } });

    advance(30_000); // 60 s after the first alert
    events.emit('provider.error', event());
    expect(queued).toHaveLength(3);
    expect(queued[2]!.fields).toMatchObject({ suppressed: 3 });
    expect(queued[2]!.text).toContain('3 more like this since the last alert were not sent');
    expect(new Set(queued.map((n) => n.id)).size, 'each alert has its own id (its idempotency id)').toBe(3);

    advance(60_000);
    events.emit('provider.error', event());
    expect(queued[3]!.fields, 'the count restarts after it was reported').not.toHaveProperty('suppressed');
    expect(r.counts).toEqual({ sent: 4, suppressed: 3, skipped: 0 });
    await r.close();
    events.emit('provider.error', event({ provider: 'other' }));
    expect(queued).toHaveLength(4);
  });

  it('never alerts about the notification capability, so a failing notification provider cannot loop', async () => {
    const { r, events, queued, direct } = router(['provider.error']);
    events.emit('provider.error', event({ capability: 'notification', provider: 'slack', operation: 'notify' }));
    events.emit('provider.error', event({ capability: 'notification', provider: 'slack', operation: 'deliver' }));
    expect([...queued, ...direct]).toEqual([]);
    expect(r.counts.skipped).toBe(2);
    await r.close();
  });

  it('sends alerts about the queue straight to the notification provider, not through the failing queue', async () => {
    const { r, events, queued, direct } = router(['provider.*']);
    events.emit('provider.error', event({ capability: 'queue', provider: 'redis', operation: 'publish' }));
    expect(queued).toEqual([]);
    expect(direct.map((n) => n.title)).toEqual(['queue/redis publish failed']);
    await r.close();
  });

  it('listens only when notification.events names provider.error; interval 0 sends every event', async () => {
    const off = router(['payment.failed']);
    expect(off.r.active).toBe(false);
    off.events.emit('provider.error', event());
    expect(off.queued).toEqual([]);
    const none = router([]);
    expect(none.r.active).toBe(false);
    const every = router(['PROVIDER.ERROR'], 0);
    for (let i = 0; i < 3; i++) every.events.emit('provider.error', event());
    expect(every.queued).toHaveLength(3);
    await Promise.all([off.r.close(), none.r.close(), every.r.close()]);
  });
});

describe('delivery settings', () => {
  it('has defaults, reads stored values and names the key of a bad one', () => {
    expect(readDeliverySettings(settingsFromRecord({}))).toEqual({
      attempts: 10,
      backoffMs: 2000,
      alertEvents: [],
      alertIntervalMs: 60_000,
    });
    expect(
      readDeliverySettings(
        settingsFromRecord({
          'delivery.attempts': '3',
          'delivery.backoff_ms': '0',
          'notification.events': ' provider.error , payment.* ',
          'notification.alert_interval_ms': '5000',
        }),
      ),
    ).toEqual({ attempts: 3, backoffMs: 0, alertEvents: ['provider.error', 'payment.*'], alertIntervalMs: 5000 });
    const bad = (() => {
      try {
        readDeliverySettings(settingsFromRecord({ 'delivery.attempts': '0' }));
      } catch (err) {
        return err;
      }
    })();
    expect(bad).toBeInstanceOf(ConfigError);
    expect((bad as Error).message).toBe(
      'setting delivery.attempts: expected a whole number from 1 to 100 (tries per email or notification, the first included)',
    );
    expect(() => readDeliverySettings(settingsFromRecord({ 'notification.events': 'provider error' }))).toThrow(/notification\.events/);
  });

  it('matches event names with * as a wildcard, case-insensitively', () => {
    expect(matchesEvent(['provider.*'], 'provider.error')).toBe(true);
    expect(matchesEvent(['*'], 'provider.error')).toBe(true);
    expect(matchesEvent(['provider.error'], 'providerXerror'), 'a dot is a dot').toBe(false);
    expect(matchesEvent(['provider.err'], 'provider.error')).toBe(false);
  });
});

describe('alerts through a running kernel', () => {
  const SECRET = 'alerts-test-secret-0123456789';
  const open: { kernel: Kernel; delivery?: Delivery | undefined; receiver?: WebhookReceiver }[] = [];
  afterEach(async () => {
    for (const o of open.splice(0)) {
      await o.delivery?.close();
      await o.kernel.close();
      await o.receiver?.stop();
    }
  });

  async function start(settings: Record<string, string>, env: Record<string, string> = {}) {
    const receiver = await startReceiver(SECRET);
    const stored = settingsFromRecord({ 'delivery.backoff_ms': '10', ...settings });
    const catalog = await discoverPlugins({ builtins: [memoryQueue, smtp, webhook] });
    const kernel = await createKernel({
      catalog,
      only: ['email', 'queue', 'notification'],
      dataDir: mkdtempSync(path.join(tmpdir(), 'apigate-alerts-')),
      env: {
        EMAIL_PROVIDER: 'smtp',
        SMTP_HOST: '127.0.0.1',
        SMTP_PORT: String(await closedPort()),
        SMTP_FROM: 'noreply@apigate.test',
        SMTP_TLS: 'false',
        QUEUE_PROVIDER: 'memory',
        NOTIFICATION_PROVIDER: 'webhook',
        NOTIFICATION_WEBHOOK_URL: receiver.url,
        NOTIFICATION_WEBHOOK_SECRET: SECRET,
        ...env,
      },
      settings: stored,
    });
    const delivery = startDelivery({ kernel, settings: stored });
    open.push({ kernel, delivery, receiver });
    return { kernel, delivery: delivery!, receiver };
  }

  it('turns the email provider failing into two rate-limited webhook alerts: the first failed try and the final failure', async () => {
    const { kernel, delivery, receiver } = await start({ 'notification.events': 'provider.error', 'delivery.attempts': '3' });
    await delivery.outbox.sendEmail(
      { to: 'ops@example.com', subject: 'will not arrive', text: 'SMTP is down' },
      { idempotencyId: 'alert-mail-1' },
    );
    await vi.waitFor(() => expect(receiver.deliveries).toHaveLength(2), { timeout: 20_000 });
    const queue = kernel.get('queue');
    await vi.waitFor(async () => expect(await queue.stats(NOTIFICATION_QUEUE)).toMatchObject({ waiting: 0, active: 0, delayed: 0 }));

    const first = receiver.deliveries.find((d) => d.data.title === 'email/smtp send failed');
    const final = receiver.deliveries.find((d) => d.data.title === 'email/smtp deliver failed');
    expect(first).toMatchObject({ type: 'provider.error', data: { title: 'email/smtp send failed', severity: 'warning' } });
    expect(first!.data.fields).toMatchObject({ capability: 'email', provider: 'smtp', operation: 'send', retryable: 'yes' });
    expect(final).toMatchObject({ data: { title: 'email/smtp deliver failed', severity: 'error' } });
    expect(final!.data.fields).toMatchObject({ operation: 'deliver', code: DELIVERY_FAILED_CODE });
    expect(final!.data.text).toContain('alert-mail-1');
    // Three failed tries: the first alerted, the next two held back by the interval.
    expect(delivery.alerts.counts).toEqual({ sent: 2, suppressed: 2, skipped: 0 });
  });

  it('does not alert about its own failing notification provider', async () => {
    const { kernel, delivery, receiver } = await start({ 'notification.events': 'provider.error', 'delivery.attempts': '2' });
    receiver.answer = 500;
    await delivery.outbox.sendEmail({ to: 'ops@example.com', subject: 'will not arrive', text: 'SMTP is down' });
    const queue = kernel.get('queue');
    // Both alerts (first try, final failure) are tried twice at the receiver, then fail for good.
    await vi.waitFor(
      async () => expect(await queue.stats(NOTIFICATION_QUEUE)).toMatchObject({ failed: 2, waiting: 0, delayed: 0, active: 0 }),
      {
        timeout: 20_000,
      },
    );
    expect(receiver.requests).toBe(4);
    // 2 alerts x (2 failed notify tries + 1 final delivery event), all about the notification capability: none routed.
    expect(delivery.alerts.counts).toEqual({ sent: 2, suppressed: 1, skipped: 6 });
  });

  it('is off without notification.events, and there is no delivery without a queue', async () => {
    const { delivery } = await start({});
    expect(delivery.alerts.active).toBe(false);
    const catalog = await discoverPlugins({ builtins: [memoryQueue] });
    const kernel = await createKernel({
      catalog,
      only: ['queue'],
      env: { QUEUE_PROVIDER: 'none' },
      dataDir: mkdtempSync(path.join(tmpdir(), 'apigate-alerts-')),
    });
    open.push({ kernel });
    expect(startDelivery({ kernel, settings: settingsFromRecord({}) })).toBeUndefined();
  });
});
