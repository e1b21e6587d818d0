import type { Notification, Severity } from './capabilities/notification.js';
import { InvalidInputError } from './errors.js';

/** Every severity, least to most urgent. */
export const NOTIFICATION_SEVERITIES: readonly Severity[] = ['info', 'warning', 'error', 'critical'];

const nonEmpty = (v: unknown): v is string => typeof v === 'string' && v.trim() !== '';

/** Throws InvalidInputError naming the first field of `n` the notification contract forbids. */
export function assertNotification(n: Notification): void {
  if (!n || typeof n !== 'object') throw new InvalidInputError('notification: expected an object');
  if (!nonEmpty(n.id)) throw new InvalidInputError('notification id: a non-empty id is required');
  if (!nonEmpty(n.event)) throw new InvalidInputError(`notification ${n.id} event: a non-empty event name is required`);
  if (!nonEmpty(n.title)) throw new InvalidInputError(`notification ${n.id} title: a non-empty title is required`);
  if (!NOTIFICATION_SEVERITIES.includes(n.severity)) {
    throw new InvalidInputError(
      `notification ${n.id} severity: expected one of ${NOTIFICATION_SEVERITIES.join(', ')}, got ${JSON.stringify(n.severity)}`,
    );
  }
  if (!(n.occurredAt instanceof Date) || Number.isNaN(n.occurredAt.getTime())) {
    throw new InvalidInputError(`notification ${n.id} occurredAt: expected a valid Date`);
  }
  for (const [k, v] of Object.entries(n.fields ?? {})) {
    if (typeof v !== 'string' && (typeof v !== 'number' || !Number.isFinite(v))) {
      throw new InvalidInputError(`notification ${n.id} field "${k}": expected a string or a finite number`);
    }
  }
  if (n.url !== undefined && !URL.canParse(n.url)) throw new InvalidInputError(`notification ${n.id} url: expected an absolute URL`);
}
