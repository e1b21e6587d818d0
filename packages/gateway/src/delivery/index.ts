import { ApigateError, type Kernel, type Logger, type SettingsReader, silentLogger } from '@apigate/kernel';
import { AlertRouter } from './alerts.js';
import { Outbox } from './outbox.js';
import { readDeliverySettings } from './settings.js';
import { DeliveryWorkers } from './workers.js';

export { ALERTABLE_EVENTS, AlertRouter, type AlertRouterOptions, alertFor } from './alerts.js';
export { decodeEmail, decodeNotification, type EmailJob, encodeEmail, encodeNotification, type NotificationJob } from './codec.js';
export { EMAIL_QUEUE, type Enqueued, type EnqueueOptions, NOTIFICATION_QUEUE, Outbox, type OutboxOptions } from './outbox.js';
export {
  ALERT_EVENTS_KEY,
  checkDeliverySetting,
  checkEventList,
  DELIVERY_INT_SETTINGS,
  type DeliveryIntKey,
  type DeliverySettings,
  matchesEvent,
  parseEventList,
  readDeliverySettings,
} from './settings.js';
export {
  DELIVERY_FAILED_CODE,
  DELIVERY_OPERATION,
  type DeliveryOutcome,
  type OutcomeStatus,
  DeliveryWorkers,
  type DeliveryWorkersOptions,
} from './workers.js';

export {
  postWebhook,
  signWebhook,
  WEBHOOK_HEADERS,
  WEBHOOK_QUEUE,
  WebhookDispatcher,
  type WebhookDispatcherOptions,
  type WebhookEvent,
  WebhookSendError,
} from './outbound-webhooks.js';

/** The outbox on the kernel's queue; throws a one-line error when no queue provider is selected. */
export function createOutbox(kernel: Kernel, settings: SettingsReader): Outbox {
  const queue = kernel.tryGet('queue');
  if (!queue) {
    throw new ApigateError(
      'QUEUE_REQUIRED',
      'email and notifications are delivered through the queue: set QUEUE_PROVIDER to memory or redis (it is none)',
    );
  }
  const s = readDeliverySettings(settings);
  return new Outbox({ queue, attempts: s.attempts, backoffMs: s.backoffMs });
}

/** Delivery workers for the kernel's selected email and notification providers, raising events on `kernel.events`. */
export function startDeliveryWorkers(
  kernel: Kernel,
  opts: { logger?: Logger; concurrency?: number; only?: 'email' | 'notification' } = {},
): DeliveryWorkers {
  const queue = kernel.get('queue');
  const pick = <C extends 'email' | 'notification'>(c: C) => {
    const provider = opts.only && opts.only !== c ? undefined : kernel.tryGet(c);
    // The name is read at each event: a settings change may have switched the provider (kernel.reconfigure).
    return provider
      ? {
          provider,
          get name() {
            return kernel.selected(c)?.name ?? c;
          },
        }
      : undefined;
  };
  return DeliveryWorkers.start({
    queue,
    email: pick('email'),
    notification: pick('notification'),
    raise: (e) => kernel.events.emit('provider.error', e),
    ...(opts.logger ? { logger: opts.logger } : {}),
    ...(opts.concurrency ? { concurrency: opts.concurrency } : {}),
  });
}

export interface Delivery {
  outbox: Outbox;
  workers: DeliveryWorkers;
  alerts: AlertRouter;
  /** Alerts first (their last notifications get queued), then the workers (jobs in flight finish). */
  close(): Promise<void>;
}

/**
 * Everything `apigate serve` runs for delivery: the outbox, its workers, and the alert router
 * for `notification.events`. Start after the kernel; close before it. Returns undefined (and
 * logs why) when no queue provider is selected.
 */
export function startDelivery(opts: { kernel: Kernel; settings: SettingsReader; logger?: Logger }): Delivery | undefined {
  const { kernel } = opts;
  const logger = opts.logger ?? silentLogger();
  if (!kernel.tryGet('queue')) {
    logger.warn('no queue provider selected (QUEUE_PROVIDER=none): email and notifications are not delivered');
    return undefined;
  }
  const s = readDeliverySettings(opts.settings);
  const outbox = createOutbox(kernel, opts.settings);
  const workers = startDeliveryWorkers(kernel, { logger });
  const notification = kernel.tryGet('notification');
  const alerts = new AlertRouter({
    events: kernel.events,
    patterns: s.alertEvents,
    intervalMs: s.alertIntervalMs,
    send: (n) => outbox.notify(n),
    sendDirect: notification ? (n) => notification.notify(n) : undefined,
    logger,
  });
  if (alerts.active) logger.info({ events: s.alertEvents, intervalMs: s.alertIntervalMs }, 'provider errors are sent as notifications');
  return {
    outbox,
    workers,
    alerts,
    close: async () => {
      await alerts.close();
      await workers.close();
    },
  };
}
