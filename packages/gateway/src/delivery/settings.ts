import { ConfigError, fields, type SettingsReader } from '@apigate/kernel';

interface IntSetting {
  default: number;
  min: number;
  max: number;
  /** What the value means, for `apigate settings keys` and errors. */
  unit: string;
}

/**
 * The gateway's delivery and alert settings (stored with `apigate settings set`). Defaults: ten
 * tries with exponential backoff from 2 s, so the last one comes about 17 minutes after the
 * first failure (2 + 4 + ... + 512 s): long enough to ride out a mail server restart.
 */
export const DELIVERY_INT_SETTINGS = {
  'delivery.attempts': { default: 10, min: 1, max: 100, unit: 'tries per email or notification, the first included' },
  'delivery.backoff_ms': { default: 2_000, min: 0, max: 3_600_000, unit: 'milliseconds before the first retry; each later wait doubles' },
  'notification.alert_interval_ms': {
    default: 60_000,
    min: 0,
    max: 86_400_000,
    unit: 'milliseconds between two alerts about the same provider and operation (0: no limit)',
  },
} as const satisfies Record<string, IntSetting>;

export type DeliveryIntKey = keyof typeof DELIVERY_INT_SETTINGS;

/** The setting that lists which kernel events become notifications. */
export const ALERT_EVENTS_KEY = 'notification.events';

const EVENT_PATTERN = /^[a-z0-9.*_-]+$/i;

/** What is wrong with `value` for a delivery setting, or undefined when it is fine (for the CLI's `settings set`). */
export function checkDeliverySetting(key: DeliveryIntKey, value: string): string | undefined {
  const s: IntSetting = DELIVERY_INT_SETTINGS[key];
  const parsed = fields.int({ min: s.min, max: s.max }).safeParse(value.trim());
  if (parsed.success) return undefined;
  return `expected a whole number from ${s.min} to ${s.max} (${s.unit})`;
}

/** Parses `notification.events`: a comma list of event names, `*` matching any run of characters. */
export function parseEventList(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

export function checkEventList(value: string): string | undefined {
  const list = parseEventList(value);
  return list.length > 0 && list.every((e) => EVENT_PATTERN.test(e))
    ? undefined
    : 'expected a comma-separated list of event names, e.g. provider.error';
}

/** Whether `event` is named by one of `patterns` (`provider.*` matches `provider.error`). */
export function matchesEvent(patterns: readonly string[], event: string): boolean {
  return patterns.some((p) =>
    new RegExp(
      `^${p
        .split('*')
        .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
        .join('.*')}$`,
      'i',
    ).test(event),
  );
}

export interface DeliverySettings {
  attempts: number;
  backoffMs: number;
  alertEvents: string[];
  alertIntervalMs: number;
}

/** Reads the delivery settings, defaults for the absent ones; a stored value that does not parse is a ConfigError. */
export function readDeliverySettings(settings: SettingsReader): DeliverySettings {
  const int = (key: DeliveryIntKey): number => {
    const raw = settings.get(key);
    if (raw === undefined || raw.trim() === '') return DELIVERY_INT_SETTINGS[key].default;
    const wrong = checkDeliverySetting(key, raw);
    if (wrong) throw new ConfigError({ field: key, settingKey: key, expected: wrong });
    return Number(raw.trim());
  };
  const events = settings.get(ALERT_EVENTS_KEY);
  if (events !== undefined && events.trim() !== '') {
    const wrong = checkEventList(events);
    if (wrong) throw new ConfigError({ field: ALERT_EVENTS_KEY, settingKey: ALERT_EVENTS_KEY, expected: wrong });
  }
  return {
    attempts: int('delivery.attempts'),
    backoffMs: int('delivery.backoff_ms'),
    alertEvents: parseEventList(events),
    alertIntervalMs: int('notification.alert_interval_ms'),
  };
}
