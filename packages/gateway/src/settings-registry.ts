import { ALERT_EVENTS_KEY, checkDeliverySetting, checkEventList, DELIVERY_INT_SETTINGS, type DeliveryIntKey } from './delivery/settings.js';
import { checkPublicUrlValue, PUBLIC_URL_SETTING } from './portal/api.js';
import { checkShutdownTimeout, SHUTDOWN_TIMEOUT_ENV, SHUTDOWN_TIMEOUT_SETTING } from './shutdown-settings.js';
import { PAST_DUE_GRACE_SETTING } from './billing/processor.js';
import { checkWebhookMaxBytes, WEBHOOK_MAX_BYTES_ENV, WEBHOOK_MAX_BYTES_SETTING } from './billing/inbound-webhooks.js';
import { PAYMENT_ATTEMPTS_SETTING, PAYMENT_BACKOFF_SETTING } from './billing/worker.js';
import { checkIntervalMinutes, RECONCILE_INTERVAL_SETTING, USAGE_REPORT_INTERVAL_SETTING } from './billing/jobs.js';
import { checkRetentionDays, USAGE_RETENTION_SETTING } from './app/housekeeping.js';

const wholeNumber = (min: number, max: number, unit: string) => (v: string) =>
  /^\d+$/.test(v.trim()) && Number(v) >= min && Number(v) <= max ? undefined : `expected a whole number from ${min} to ${max} (${unit})`;

export interface GatewaySetting {
  /** Returns what is expected when `value` is wrong, undefined when it is fine. */
  validate(value: string): string | undefined;
  /** The env var that takes precedence over the setting, if any. */
  envVar?: string;
  secret?: boolean;
}

/**
 * Every setting the gateway itself reads (as opposed to a provider's config), in one place so
 * `apigate settings set` accepts and checks exactly these.
 */
export const GATEWAY_SETTINGS: Readonly<Record<string, GatewaySetting>> = {
  [ALERT_EVENTS_KEY]: { validate: checkEventList },
  [PUBLIC_URL_SETTING]: { validate: checkPublicUrlValue, envVar: 'APIGATE_PUBLIC_URL' },
  [SHUTDOWN_TIMEOUT_SETTING]: { validate: checkShutdownTimeout, envVar: SHUTDOWN_TIMEOUT_ENV },
  // Days the housekeeping job keeps per-minute usage and traffic rows (app/housekeeping.ts); 0 keeps them forever.
  [USAGE_RETENTION_SETTING]: { validate: checkRetentionDays },
  // The payment webhook inbox and the access rules (billing/).
  [WEBHOOK_MAX_BYTES_SETTING]: { validate: checkWebhookMaxBytes, envVar: WEBHOOK_MAX_BYTES_ENV },
  [PAST_DUE_GRACE_SETTING]: { validate: wholeNumber(0, 365, 'days a past_due subscription keeps its plan') },
  [PAYMENT_ATTEMPTS_SETTING]: { validate: wholeNumber(1, 50, 'tries per payment event, the first included') },
  // Reconciliation with the provider and overage reporting (billing/jobs.ts); 0 turns one off.
  [RECONCILE_INTERVAL_SETTING]: { validate: checkIntervalMinutes },
  [USAGE_REPORT_INTERVAL_SETTING]: { validate: checkIntervalMinutes },
  [PAYMENT_BACKOFF_SETTING]: {
    validate: wholeNumber(0, 3_600_000, 'milliseconds before the first retry of a payment event; each later wait doubles'),
  },
  // delivery.attempts, delivery.backoff_ms, notification.alert_interval_ms
  ...Object.fromEntries(
    Object.keys(DELIVERY_INT_SETTINGS).map((key) => [key, { validate: (v: string) => checkDeliverySetting(key as DeliveryIntKey, v) }]),
  ),
};
