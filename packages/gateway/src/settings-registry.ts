import { ALERT_EVENTS_KEY, checkDeliverySetting, checkEventList, DELIVERY_INT_SETTINGS, type DeliveryIntKey } from './delivery/settings.js';
import { checkPublicUrlValue, PUBLIC_URL_SETTING } from './portal/api.js';

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
  // delivery.attempts, delivery.backoff_ms, notification.alert_interval_ms
  ...Object.fromEntries(
    Object.keys(DELIVERY_INT_SETTINGS).map((key) => [key, { validate: (v: string) => checkDeliverySetting(key as DeliveryIntKey, v) }]),
  ),
};
