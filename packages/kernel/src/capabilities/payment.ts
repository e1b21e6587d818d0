import type { ProviderInstance } from './common.js';

export type SubscriptionStatus =
  | 'trialing'
  | 'active'
  | 'past_due'
  | 'paused'
  | 'canceled'
  | 'incomplete'
  | 'unpaid';

export interface SubscriptionState {
  subscriptionId: string;
  customerId: string;
  priceId: string;
  status: SubscriptionStatus;
  currentPeriodEnd?: Date;
  cancelAtPeriodEnd: boolean;
}

export type PaymentEventType =
  | 'checkout.completed'
  | 'subscription.created'
  | 'subscription.updated'
  | 'subscription.deleted'
  | 'invoice.paid'
  | 'invoice.payment_failed'
  | 'ignored';

export interface PaymentEvent {
  /** The provider's event id: the dedupe key. */
  id: string;
  type: PaymentEventType;
  /** The provider's event time: the ordering key. */
  occurredAt: Date;
  customerId?: string;
  subscriptionId?: string;
  priceId?: string;
  subscription?: SubscriptionState;
  invoice?: { id: string; amountCents: number; currency: string; attempt?: number };
  /** From metadata the gateway set when it created the checkout. */
  localRefs?: { userId?: string; planId?: string };
  raw: unknown;
}

export interface UpsertPriceInput {
  planId: string;
  name: string;
  amountCents: number;
  currency: string;
  interval: 'month' | 'year';
  metered?: boolean;
  existingPriceId?: string;
}

export interface CheckoutInput {
  customerId: string;
  priceId: string;
  userId: string;
  planId: string;
  successUrl: string;
  cancelUrl: string;
  trialDays?: number;
}

export interface WebhookInput {
  rawBody: Uint8Array;
  /** Lower-cased header names. */
  headers: Record<string, string | undefined>;
}

export interface PaymentProvider extends ProviderInstance {
  createCustomer(i: { userId: string; email: string; name?: string }): Promise<{ customerId: string }>;
  deleteCustomer(customerId: string): Promise<void>;
  upsertPrice(i: UpsertPriceInput): Promise<{ priceId: string; productId?: string }>;
  archivePrice(priceId: string): Promise<void>;
  createCheckout(i: CheckoutInput): Promise<{ url: string; sessionId: string }>;
  createPortalSession(i: { customerId: string; returnUrl: string }): Promise<{ url: string }>;
  getSubscription(subscriptionId: string): Promise<SubscriptionState>;
  listSubscriptions(i: { customerId?: string; updatedSince?: Date }): AsyncIterable<SubscriptionState>;
  changeSubscription(i: { subscriptionId: string; priceId: string }): Promise<SubscriptionState>;
  cancelSubscription(i: { subscriptionId: string; atPeriodEnd: boolean }): Promise<SubscriptionState>;
  reportUsage(i: {
    customerId: string;
    subscriptionId: string;
    quantity: number;
    timestamp: Date;
    idempotencyKey: string;
  }): Promise<void>;
  /** Verifies the signature (throws `WebhookSignatureError`) and normalises the event. */
  parseWebhook(i: WebhookInput): Promise<PaymentEvent>;
}

export interface PaymentFeatures {
  meteredBilling?: boolean;
  customerPortal?: boolean;
  /** Path under which the gateway mounts this provider's webhook, e.g. `/webhooks/stripe`. */
  webhookPath?: string;
  /**
   * False where a checkout cannot set its own trial length (the vendor keeps trials on the
   * product, e.g. LemonSqueezy): `trialDays` is then refused unless the product's own trial matches.
   * Default true.
   */
  checkoutTrials?: boolean;
  /**
   * False where a subscription can only be cancelled at the end of its period (e.g.
   * LemonSqueezy): `cancelSubscription({ atPeriodEnd: false })` is then refused. Default true.
   */
  immediateCancel?: boolean;
}
