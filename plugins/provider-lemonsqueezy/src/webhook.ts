import { createHmac, timingSafeEqual } from 'node:crypto';
import {
  InvalidInputError,
  type PaymentEvent,
  type PaymentEventType,
  type SubscriptionState,
  type SubscriptionStatus,
  WebhookSignatureError,
} from '@apigate/kernel';
import type { Resource } from './client.js';

/** LemonSqueezy signs the raw body alone: hex HMAC-SHA256 with the webhook's signing secret, no timestamp. */
export const SIGNATURE_HEADER = 'x-signature';

/** Keys this provider puts in a checkout's custom data; LemonSqueezy echoes them in `meta.custom_data`. */
export const CUSTOM = { userId: 'user_id', planId: 'plan_id' } as const;

/** The subscription attributes this provider reads (API responses and webhook bodies alike). */
export interface SubscriptionAttributes {
  store_id: number;
  customer_id: number;
  order_id: number;
  variant_id: number;
  status: string;
  cancelled: boolean;
  trial_ends_at: string | null;
  renews_at: string | null;
  ends_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface WebhookBody {
  meta: { event_name: string; custom_data?: Record<string, unknown> | null; webhook_id?: string; test_mode?: boolean };
  data: Resource;
}

const STATUSES: Record<string, SubscriptionStatus> = {
  on_trial: 'trialing',
  active: 'active',
  paused: 'paused',
  past_due: 'past_due',
  unpaid: 'unpaid',
  expired: 'canceled',
};

const date = (v: string | null | undefined): Date | undefined => (v ? new Date(v) : undefined);

/**
 * A LemonSqueezy subscription in the kernel's terms. `cancelled` is LemonSqueezy's grace period:
 * future payments are stopped but access runs until `ends_at`, which is our active (or
 * trialing) with `cancelAtPeriodEnd`; `expired` is the end.
 */
export function toSubscriptionState(r: Resource<SubscriptionAttributes>, now = Date.now()): SubscriptionState {
  const a = r.attributes;
  const trialing = a.trial_ends_at !== null && new Date(a.trial_ends_at).getTime() > now;
  const status: SubscriptionStatus = a.status === 'cancelled' ? (trialing ? 'trialing' : 'active') : (STATUSES[a.status] ?? 'incomplete');
  const end =
    a.status === 'cancelled' || a.status === 'expired'
      ? date(a.ends_at)
      : a.status === 'on_trial'
        ? (date(a.trial_ends_at) ?? date(a.renews_at))
        : date(a.renews_at);
  return {
    subscriptionId: r.id,
    customerId: String(a.customer_id),
    priceId: String(a.variant_id),
    status,
    ...(end ? { currentPeriodEnd: end } : {}),
    cancelAtPeriodEnd: a.status !== 'expired' && (a.status === 'cancelled' || a.cancelled === true),
  };
}

/** Checks `X-Signature` in constant time. */
export function verifySignature(rawBody: Uint8Array, header: string | undefined, secret: string): void {
  if (!header) throw new WebhookSignatureError('payment/lemonsqueezy webhook: the X-Signature header is missing');
  if (!/^[0-9a-f]{64}$/i.test(header.trim()))
    throw new WebhookSignatureError('payment/lemonsqueezy webhook: the X-Signature header is not a hex SHA-256 digest');
  const expected = createHmac('sha256', secret).update(rawBody).digest();
  if (!timingSafeEqual(Buffer.from(header.trim(), 'hex'), expected)) {
    throw new WebhookSignatureError(
      'payment/lemonsqueezy webhook: the signature does not match (another LEMON_WEBHOOK_SECRET, or a changed body)',
    );
  }
}

export function parseBody(rawBody: Uint8Array): WebhookBody {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(rawBody).toString('utf8'));
  } catch {
    throw new InvalidInputError('payment/lemonsqueezy webhook: the body is not JSON');
  }
  const b = json as Partial<WebhookBody> | null;
  if (typeof b?.meta?.event_name !== 'string' || !b.meta.event_name)
    throw new InvalidInputError('payment/lemonsqueezy webhook: body field meta.event_name is missing');
  const d = b.data as Partial<Resource> | undefined;
  if (typeof d?.type !== 'string' || typeof d.id !== 'string' || typeof d.attributes !== 'object' || d.attributes === null) {
    throw new InvalidInputError('payment/lemonsqueezy webhook: body field data is not a JSON:API resource');
  }
  return b as WebhookBody;
}

const SUBSCRIPTION_EVENTS: Record<string, PaymentEventType> = {
  subscription_created: 'subscription.created',
  subscription_updated: 'subscription.updated',
  // Cancelling starts the grace period: still paid up, now set to end. Expiry is the end.
  subscription_cancelled: 'subscription.updated',
  subscription_resumed: 'subscription.updated',
  subscription_paused: 'subscription.updated',
  subscription_unpaused: 'subscription.updated',
  subscription_expired: 'subscription.deleted',
};

const INVOICE_EVENTS: Record<string, PaymentEventType> = {
  subscription_payment_success: 'invoice.paid',
  subscription_payment_recovered: 'invoice.paid',
  subscription_payment_failed: 'invoice.payment_failed',
};

/**
 * The body's event id and time. LemonSqueezy documents no event id; deliveries carry
 * `meta.webhook_id`, the same on every retry of one event, which is used when present. Otherwise
 * the id is built from the event name, the object and its `updated_at`, which a redelivery repeats.
 * The time is the object's `updated_at` (its `created_at` if it has none).
 */
export function identity(body: WebhookBody): { id: string; occurredAt: Date } {
  const a = body.data.attributes as { updated_at?: string; created_at?: string };
  const at = a.updated_at ?? a.created_at;
  if (!at || Number.isNaN(Date.parse(at)))
    throw new InvalidInputError('payment/lemonsqueezy webhook: body field data.attributes.updated_at is missing');
  const id =
    typeof body.meta.webhook_id === 'string' && body.meta.webhook_id
      ? body.meta.webhook_id
      : `${body.meta.event_name}:${body.data.type}:${body.data.id}:${at}`;
  return { id, occurredAt: new Date(at) };
}

function localRefs(custom: Record<string, unknown> | null | undefined): PaymentEvent['localRefs'] | undefined {
  const userId = custom?.[CUSTOM.userId];
  const planId = custom?.[CUSTOM.planId];
  const refs = { ...(typeof userId === 'string' && userId ? { userId } : {}), ...(typeof planId === 'string' && planId ? { planId } : {}) };
  return Object.keys(refs).length ? refs : undefined;
}

/**
 * LemonSqueezy's webhook in the kernel's terms. An `order_created` body does not name the
 * subscription the order started; the provider looks it up by the order id (`data.id`).
 */
export function normalise(body: WebhookBody): PaymentEvent {
  const { id, occurredAt } = identity(body);
  const name = body.meta.event_name;
  const refs = localRefs(body.meta.custom_data);
  const base = { id, occurredAt, raw: body, ...(refs ? { localRefs: refs } : {}) };
  const a = body.data.attributes as Record<string, any>;

  const subscriptionType = SUBSCRIPTION_EVENTS[name];
  if (subscriptionType && body.data.type === 'subscriptions') {
    const subscription = toSubscriptionState(body.data as Resource<SubscriptionAttributes>);
    return {
      ...base,
      type: subscriptionType,
      customerId: subscription.customerId,
      subscriptionId: subscription.subscriptionId,
      priceId: subscription.priceId,
      subscription,
    };
  }
  const invoiceType = INVOICE_EVENTS[name];
  if (invoiceType && body.data.type === 'subscription-invoices') {
    return {
      ...base,
      type: invoiceType,
      customerId: String(a.customer_id),
      subscriptionId: String(a.subscription_id),
      invoice: { id: body.data.id, amountCents: Number(a.total), currency: String(a.currency).toLowerCase() },
    };
  }
  if (name === 'order_created' && body.data.type === 'orders') {
    const variant = a.first_order_item?.variant_id;
    return {
      ...base,
      type: 'checkout.completed',
      customerId: String(a.customer_id),
      ...(variant !== undefined ? { priceId: String(variant) } : {}),
      invoice: { id: body.data.id, amountCents: Number(a.total), currency: String(a.currency).toLowerCase() },
    };
  }
  return { ...base, type: 'ignored' };
}
