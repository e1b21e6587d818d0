import type { PaymentEvent, SubscriptionState, SubscriptionStatus } from '@apigate/kernel';

/** Metadata keys this provider writes on Stripe objects and reads back from webhooks. */
export const META_USER = 'apigate_user_id';
export const META_PLAN = 'apigate_plan_id';

type Metadata = Record<string, string> | null | undefined;
/** An expandable field: an id, or the object when expanded. */
type Ref = string | { id: string } | null | undefined;

export const idOf = (ref: Ref): string | undefined => (typeof ref === 'string' ? ref : (ref?.id ?? undefined));

/**
 * The parts of Stripe objects this provider reads, loosely typed on purpose: webhook bodies are
 * rendered in the API version of the webhook endpoint, which may be older than the SDK's. Fields
 * that moved in 2025-03-31.basil are read at their new place first, then at the old one.
 */
export interface SubscriptionLike {
  id: string;
  customer: Ref;
  status: string;
  cancel_at_period_end: boolean;
  cancel_at?: number | null;
  ended_at?: number | null;
  metadata?: Metadata;
  /** Before basil the period lived on the subscription. */
  current_period_end?: number;
  items?: {
    data: {
      id: string;
      current_period_end?: number;
      price?: { id: string; metadata?: Metadata; recurring?: { usage_type?: string } | null } | null;
    }[];
  };
}

export interface InvoiceLike {
  id: string;
  customer: Ref;
  currency: string;
  amount_due: number;
  amount_paid: number;
  attempt_count?: number;
  parent?: { subscription_details?: { subscription: Ref; metadata?: Metadata } | null } | null;
  /** Before basil. */
  subscription?: Ref;
  lines?: { data: { pricing?: { price_details?: { price: Ref } | null } | null; price?: Ref }[] };
}

export interface CheckoutSessionLike {
  id: string;
  mode: string;
  customer: Ref;
  subscription: Ref;
  client_reference_id?: string | null;
  metadata?: Metadata;
}

export interface EventLike {
  id: string;
  type: string;
  created: number;
  data?: { object?: unknown };
}

const STATUSES: Record<string, SubscriptionStatus> = {
  trialing: 'trialing',
  active: 'active',
  past_due: 'past_due',
  paused: 'paused',
  canceled: 'canceled',
  incomplete: 'incomplete',
  unpaid: 'unpaid',
  // The first invoice was never paid and Stripe gave up: over, as far as access goes.
  incomplete_expired: 'incomplete_expired',
};

/** Stripe's status in our terms; a status newer than this code grants nothing (incomplete). */
export const mapStatus = (status: string): SubscriptionStatus => STATUSES[status] ?? 'incomplete';

export const isEnded = (status: string): boolean => status === 'canceled' || status === 'incomplete_expired';

/** The item that carries the plan: the first licensed one (a metered overage item rides along next to it). */
export const planItem = <T extends { price?: { recurring?: { usage_type?: string } | null } | null }>(
  items: readonly T[] | undefined,
): T | undefined => items?.find((i) => i.price?.recurring?.usage_type !== 'metered') ?? items?.[0];

export function subscriptionState(sub: SubscriptionLike): SubscriptionState {
  const item = planItem(sub.items?.data);
  const end = item?.current_period_end ?? sub.current_period_end;
  return {
    subscriptionId: sub.id,
    customerId: idOf(sub.customer) ?? '',
    priceId: item?.price?.id ?? '',
    status: mapStatus(sub.status),
    ...(typeof end === 'number' ? { currentPeriodEnd: new Date(end * 1000) } : {}),
    // A cancellation scheduled with cancel_at (what newer portals set) ends the subscription too.
    cancelAtPeriodEnd: sub.cancel_at_period_end || (typeof sub.cancel_at === 'number' && !isEnded(sub.status)),
  };
}

function localRefs(userId: string | null | undefined, planId: string | null | undefined): Pick<PaymentEvent, 'localRefs'> {
  const refs = { ...(userId ? { userId } : {}), ...(planId ? { planId } : {}) };
  return Object.keys(refs).length ? { localRefs: refs } : {};
}

const SUBSCRIPTION_EVENTS = {
  'customer.subscription.created': 'subscription.created',
  'customer.subscription.updated': 'subscription.updated',
  'customer.subscription.deleted': 'subscription.deleted',
} as const;

/** A verified Stripe event in the kernel's terms; types the gateway does not use are `ignored`. */
export function normaliseEvent(event: EventLike): PaymentEvent {
  const base = { id: event.id, occurredAt: new Date(event.created * 1000), raw: event };
  const object = event.data?.object;
  if (!object || typeof object !== 'object') return { ...base, type: 'ignored' };

  if (event.type === 'checkout.session.completed') {
    const s = object as CheckoutSessionLike;
    // Payment-mode or setup-mode sessions are not subscriptions this gateway made.
    if (s.mode !== 'subscription') return { ...base, type: 'ignored' };
    const customerId = idOf(s.customer);
    const subscriptionId = idOf(s.subscription);
    return {
      ...base,
      type: 'checkout.completed',
      ...(customerId ? { customerId } : {}),
      ...(subscriptionId ? { subscriptionId } : {}),
      ...localRefs(s.metadata?.[META_USER] ?? s.client_reference_id, s.metadata?.[META_PLAN]),
    };
  }

  if (event.type in SUBSCRIPTION_EVENTS) {
    const sub = object as SubscriptionLike;
    const state = subscriptionState(sub);
    const price = planItem(sub.items?.data)?.price;
    return {
      ...base,
      type: SUBSCRIPTION_EVENTS[event.type as keyof typeof SUBSCRIPTION_EVENTS],
      customerId: state.customerId,
      subscriptionId: state.subscriptionId,
      ...(state.priceId ? { priceId: state.priceId } : {}),
      subscription: state,
      // The price's plan first: after a plan change (here or in the portal) the subscription's own metadata is stale.
      ...localRefs(sub.metadata?.[META_USER], price?.metadata?.[META_PLAN] ?? sub.metadata?.[META_PLAN]),
    };
  }

  if (event.type === 'invoice.paid' || event.type === 'invoice.payment_failed') {
    const inv = object as InvoiceLike;
    const details = inv.parent?.subscription_details;
    const customerId = idOf(inv.customer);
    const subscriptionId = idOf(details?.subscription ?? inv.subscription);
    const line = inv.lines?.data[0];
    const priceId = idOf(line?.pricing?.price_details?.price ?? line?.price);
    return {
      ...base,
      type: event.type,
      ...(customerId ? { customerId } : {}),
      ...(subscriptionId ? { subscriptionId } : {}),
      ...(priceId ? { priceId } : {}),
      invoice: {
        id: inv.id,
        amountCents: event.type === 'invoice.paid' ? inv.amount_paid : inv.amount_due,
        currency: inv.currency,
        ...(typeof inv.attempt_count === 'number' ? { attempt: inv.attempt_count } : {}),
      },
      // A snapshot of the subscription's metadata taken when the invoice was made.
      ...localRefs(details?.metadata?.[META_USER], details?.metadata?.[META_PLAN]),
    };
  }

  return { ...base, type: 'ignored' };
}
