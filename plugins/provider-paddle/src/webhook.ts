import { createHmac, timingSafeEqual } from 'node:crypto';
import {
  InvalidInputError,
  type PaymentEvent,
  type PaymentEventType,
  type SubscriptionState,
  type SubscriptionStatus,
  type VerifiedWebhook,
  WebhookSignatureError,
} from '@apigate/kernel';
import { type EventEntity, Webhooks } from '@paddle/paddle-node-sdk';

/** The header Paddle Billing signs every notification with: `ts=<unix seconds>;h1=<hex>`. */
export const SIGNATURE_HEADER = 'paddle-signature';

/** custom_data keys this provider writes on customers, products, prices and transactions. */
export const CUSTOM = {
  userId: 'apigate_user_id',
  planId: 'apigate_plan_id',
  /** On a checkout's trial copy of a price: the catalog price it copies. */
  basePriceId: 'apigate_price_id',
} as const;

type CustomData = Record<string, unknown> | null | undefined;

/** The parts of a Paddle price this provider reads (API entity and notification entity alike). */
interface PriceLike {
  id: string;
  customData?: CustomData;
}

/** The parts of a Paddle subscription this provider reads; the SDK's API and notification entities both fit. */
export interface SubscriptionLike {
  id: string;
  status: string;
  customerId: string;
  canceledAt?: string | null;
  updatedAt: string;
  currentBillingPeriod?: { endsAt: string } | null;
  scheduledChange?: { action: string } | null;
  items: { price?: PriceLike | null }[];
  customData?: CustomData;
}

interface TransactionLike {
  id: string;
  origin: string;
  customerId?: string | null;
  subscriptionId?: string | null;
  currencyCode: string;
  customData?: CustomData;
  items: { price?: PriceLike | null }[];
  details?: { totals?: { grandTotal: string } | null } | null;
  payments: unknown[];
}

const STATUSES: Record<string, SubscriptionStatus> = {
  active: 'active',
  trialing: 'trialing',
  past_due: 'past_due',
  paused: 'paused',
  canceled: 'canceled',
};

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** The plan's price: a checkout's trial copy (a custom price) names the catalog price it copies. */
export function planPriceId(price: PriceLike | null | undefined): string | undefined {
  if (!price) return undefined;
  return str(price.customData?.[CUSTOM.basePriceId]) ?? price.id;
}

export function toSubscriptionState(s: SubscriptionLike): SubscriptionState {
  // A canceled subscription has no billing period; its access ended when it was canceled.
  const end = s.currentBillingPeriod?.endsAt ?? (s.status === 'canceled' ? s.canceledAt : undefined);
  return {
    subscriptionId: s.id,
    customerId: s.customerId,
    priceId: planPriceId(s.items.find((i) => i.price)?.price) ?? '',
    // Paddle's five statuses are ours; anything newer is treated as not paying.
    status: STATUSES[s.status] ?? 'incomplete',
    ...(end ? { currentPeriodEnd: new Date(end) } : {}),
    cancelAtPeriodEnd: s.scheduledChange?.action === 'cancel',
  };
}

function localRefs(data: CustomData): PaymentEvent['localRefs'] | undefined {
  const userId = str(data?.[CUSTOM.userId]);
  const planId = str(data?.[CUSTOM.planId]);
  return userId || planId ? { ...(userId ? { userId } : {}), ...(planId ? { planId } : {}) } : undefined;
}

/**
 * Checks `Paddle-Signature` as Paddle documents it: HMAC-SHA256 of `<ts>:<raw body>` with the
 * destination's secret key, hex, compared in constant time against every `h1` (Paddle sends
 * several while a secret is being rotated). The SDK's own check allows only 5 seconds of age and
 * one `h1`, so it is done here, with a configurable tolerance either side of now.
 */
export function verifySignature(
  rawBody: Uint8Array,
  header: string | undefined,
  secret: string,
  toleranceSeconds: number,
  now = Date.now(),
): void {
  if (!header) throw new WebhookSignatureError('payment/paddle webhook: the Paddle-Signature header is missing');
  let ts: string | undefined;
  const h1: string[] = [];
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 'ts') ts = value;
    else if (key === 'h1') h1.push(value);
  }
  if (!ts || !/^\d+$/.test(ts) || h1.length === 0) {
    throw new WebhookSignatureError('payment/paddle webhook: the Paddle-Signature header is not "ts=<seconds>;h1=<hex>"');
  }
  const age = Math.round(now / 1000 - Number(ts));
  if (Math.abs(age) > toleranceSeconds) {
    throw new WebhookSignatureError(
      `payment/paddle webhook: signed ${age} s ${age >= 0 ? 'ago' : 'in the future'}, outside the ${toleranceSeconds} s tolerance (a replay, or a clock that is off)`,
    );
  }
  const expected = createHmac('sha256', secret).update(`${ts}:`).update(rawBody).digest();
  const ok = h1.some((sig) => {
    const given = /^[0-9a-f]{64}$/i.test(sig) ? Buffer.from(sig, 'hex') : undefined;
    return given !== undefined && timingSafeEqual(given, expected);
  });
  if (!ok) {
    throw new WebhookSignatureError(
      'payment/paddle webhook: the signature does not match (another PADDLE_WEBHOOK_SECRET, or a changed body)',
    );
  }
}

/** The notification's JSON with its envelope fields checked. */
function envelopeJson(rawBody: Uint8Array): Record<string, unknown> & { event_id: string; event_type: string; occurred_at: string } {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(rawBody).toString('utf8'));
  } catch {
    throw new InvalidInputError('payment/paddle webhook: the body is not JSON');
  }
  const j = json as Record<string, unknown> | null;
  for (const field of ['event_id', 'event_type', 'occurred_at'] as const) {
    if (typeof j?.[field] !== 'string' || j[field] === '')
      throw new InvalidInputError(`payment/paddle webhook: body field ${field} is missing`);
  }
  if (Number.isNaN(Date.parse(j!.occurred_at as string)))
    throw new InvalidInputError('payment/paddle webhook: body field occurred_at is not a date');
  return j as Record<string, unknown> & { event_id: string; event_type: string; occurred_at: string };
}

/** The envelope of a verified notification: id, Paddle's event type and time (no environment: see verifyWebhook). */
export function readEnvelope(rawBody: Uint8Array): VerifiedWebhook {
  const j = envelopeJson(rawBody);
  return { id: j.event_id, type: j.event_type, occurredAt: new Date(j.occurred_at) };
}

/** Parses a verified body with the SDK's event classes (camelCase entities, typed by event type). */
export function parseNotification(rawBody: Uint8Array): { event: EventEntity; json: unknown } {
  const json = envelopeJson(rawBody);
  const j = json;
  try {
    return { event: Webhooks.fromJson(json as never), json };
  } catch (err) {
    // The SDK's entity constructors dereference required fields; a body without them is not a Paddle notification.
    throw new InvalidInputError(`payment/paddle webhook: the ${j!.event_type as string} body is incomplete (${(err as Error).message})`);
  }
}

function fromTransaction(type: PaymentEventType, t: TransactionLike): Partial<PaymentEvent> {
  const total = t.details?.totals?.grandTotal;
  const refs = localRefs(t.customData);
  const priceId = planPriceId(t.items.find((i) => i.price)?.price);
  return {
    type,
    ...(t.customerId ? { customerId: t.customerId } : {}),
    ...(t.subscriptionId ? { subscriptionId: t.subscriptionId } : {}),
    ...(priceId ? { priceId } : {}),
    ...(total !== undefined && /^-?\d+$/.test(total)
      ? {
          invoice: {
            id: t.id,
            amountCents: Number(total),
            currency: t.currencyCode.toLowerCase(),
            ...(t.payments.length ? { attempt: t.payments.length } : {}),
          },
        }
      : {}),
    ...(refs ? { localRefs: refs } : {}),
  };
}

function fromSubscription(type: PaymentEventType, s: SubscriptionLike): Partial<PaymentEvent> {
  const subscription = toSubscriptionState(s);
  const refs = localRefs(s.customData);
  return {
    type,
    customerId: subscription.customerId,
    subscriptionId: subscription.subscriptionId,
    ...(subscription.priceId ? { priceId: subscription.priceId } : {}),
    subscription,
    ...(refs ? { localRefs: refs } : {}),
  };
}

const SUBSCRIPTION_EVENTS: Record<string, PaymentEventType> = {
  'subscription.created': 'subscription.created',
  'subscription.updated': 'subscription.updated',
  'subscription.canceled': 'subscription.deleted',
};

/**
 * Paddle's notification in the kernel's terms. `transaction.completed` is the checkout
 * completing when the transaction came from a checkout (origin `web`, or `api` as our
 * createCheckout makes them) and a paid renewal or charge otherwise. A failed payment on a
 * transaction without a subscription is a card declined on the checkout page: not a billing
 * failure, so ignored, as is the zero transaction of a payment-method change. Paddle's status-specific events (subscription.activated, .past_due, ...)
 * are ignored too: Paddle sends subscription.updated with the same state alongside each.
 */
export function normalise(event: EventEntity, json: unknown): PaymentEvent {
  // occurred_at has microseconds (RFC 3339, 6 digits, UTC): the exact string orders events of one millisecond.
  const base = { id: event.eventId, occurredAt: new Date(event.occurredAt), sequence: event.occurredAt, raw: json };
  const subscriptionType = SUBSCRIPTION_EVENTS[event.eventType];
  let facts: Partial<PaymentEvent> = { type: 'ignored' };
  if (subscriptionType) facts = fromSubscription(subscriptionType, event.data as unknown as SubscriptionLike);
  else if (event.eventType === 'transaction.completed') {
    const t = event.data as unknown as TransactionLike;
    // A payment-method change completes a zero transaction: nothing was paid.
    if (t.origin !== 'subscription_payment_method_change') {
      facts = fromTransaction(t.origin === 'web' || t.origin === 'api' ? 'checkout.completed' : 'invoice.paid', t);
    }
  } else if (event.eventType === 'transaction.payment_failed') {
    const t = event.data as unknown as TransactionLike;
    if (t.subscriptionId) facts = fromTransaction('invoice.payment_failed', t);
  }
  return { ...base, ...facts } as PaymentEvent;
}
