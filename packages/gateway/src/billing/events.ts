import type { PaymentEvent, PaymentEventType } from '@apigate/kernel';
import { and, eq } from 'drizzle-orm';
import type { AppDatabase } from '../store/db.js';
import { paymentEvents } from '../store/schema.js';

/** The queue payment webhook events are processed from (one job per event, id `<provider>:<event id>`). */
export const PAYMENT_QUEUE = 'payment.events';

export type PaymentEventStatus = 'queued' | 'applied' | 'skipped' | 'failed';

/** A normalised event as it travels on the queue: JSON-safe (ISO times), without the provider's raw body. */
export interface PaymentJob {
  provider: string;
  event: Omit<PaymentEvent, 'raw' | 'occurredAt' | 'subscription'> & {
    occurredAt: string;
    subscription?: Omit<NonNullable<PaymentEvent['subscription']>, 'currentPeriodEnd'> & { currentPeriodEnd?: string };
  };
}

function jsonState(s: NonNullable<PaymentEvent['subscription']>): NonNullable<PaymentJob['event']['subscription']> {
  const { currentPeriodEnd, ...rest } = s;
  return { ...rest, ...(currentPeriodEnd ? { currentPeriodEnd: currentPeriodEnd.toISOString() } : {}) };
}

export function toJob(provider: string, e: PaymentEvent): PaymentJob {
  const { raw: _raw, occurredAt, subscription, ...rest } = e;
  return {
    provider,
    event: {
      ...rest,
      occurredAt: occurredAt.toISOString(),
      ...(subscription ? { subscription: jsonState(subscription) } : {}),
    },
  };
}

export function fromJob(job: PaymentJob): PaymentEvent {
  const { occurredAt, subscription, ...rest } = job.event;
  const { currentPeriodEnd, ...sub } = subscription ?? ({} as NonNullable<PaymentJob['event']['subscription']>);
  return {
    ...rest,
    occurredAt: new Date(occurredAt),
    ...(subscription ? { subscription: { ...sub, ...(currentPeriodEnd ? { currentPeriodEnd: new Date(currentPeriodEnd) } : {}) } } : {}),
    raw: undefined,
  };
}

export interface RecordedPaymentEvent {
  provider: string;
  eventId: string;
  type: string;
  occurredAt: Date;
  status: PaymentEventStatus;
  receivedAt: Date;
}

/** The `payment_events` table: which provider events were received and what became of them. */
export class PaymentEventLog {
  constructor(private readonly db: AppDatabase) {}

  /** Records the event; false when (provider, event id) was already recorded (a redelivery). */
  record(provider: string, e: { id: string; type: PaymentEventType; occurredAt: Date }, now = new Date()): boolean {
    const res = this.db
      .insert(paymentEvents)
      .values({ provider, eventId: e.id, type: e.type, occurredAt: e.occurredAt, status: 'queued', receivedAt: now })
      .onConflictDoNothing()
      .run();
    return res.changes > 0;
  }

  setStatus(provider: string, eventId: string, status: PaymentEventStatus): void {
    this.db
      .update(paymentEvents)
      .set({ status })
      .where(and(eq(paymentEvents.provider, provider), eq(paymentEvents.eventId, eventId)))
      .run();
  }

  find(provider: string, eventId: string): RecordedPaymentEvent | undefined {
    return this.db
      .select()
      .from(paymentEvents)
      .where(and(eq(paymentEvents.provider, provider), eq(paymentEvents.eventId, eventId)))
      .get();
  }

  /** Forgets an event whose job could not be queued, so the provider's retry is taken again. */
  forget(provider: string, eventId: string): void {
    this.db
      .delete(paymentEvents)
      .where(and(eq(paymentEvents.provider, provider), eq(paymentEvents.eventId, eventId)))
      .run();
  }
}
