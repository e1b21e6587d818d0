import type { ProviderInstance } from './common.js';

export type SubscriptionStatus =
  | 'trialing'
  | 'active'
  | 'past_due'
  | 'paused'
  | 'canceled'
  | 'incomplete'
  /** The first payment never succeeded and the provider gave up (Stripe): over, like canceled. */
  | 'incomplete_expired'
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
  /**
   * The provider's own order of events where it has one (a counter, or a sortable string), used
   * only to break ties between events of the same `occurredAt`. Numbers compare as numbers,
   * strings as strings; absent when the provider has none.
   */
  sequence?: number | string;
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
  /**
   * A metered price (from `upsertPrice({ metered: true })`) to add to the subscription next to
   * `priceId`, so usage reported with `reportUsage` is billed on it. Only where
   * `features.meteredBilling` is true; others refuse it.
   */
  meteredPriceId?: string;
}

export interface WebhookInput {
  rawBody: Uint8Array;
  /** Lower-cased header names. */
  headers: Record<string, string | undefined>;
}

/** What `verifyWebhook` reads from a verified body's envelope, without any network call. */
export interface VerifiedWebhook {
  /** The provider's event id: the dedupe key. */
  id: string;
  /** The provider's own event name (e.g. `customer.subscription.updated`), not normalised. */
  type: string;
  occurredAt: Date;
  /** The event's mode where the body says it (Stripe `livemode`, LemonSqueezy `!meta.test_mode`). */
  livemode?: boolean;
}

/** An invoice's (or, where the provider bills by transaction, a payment's) state at the provider. */
export type InvoiceStatus = 'draft' | 'open' | 'paid' | 'void' | 'uncollectible' | 'failed' | 'refunded' | 'partially_refunded';

/** One invoice or payment of a customer, as the provider keeps it (for the billing overview). */
export interface Invoice {
  id: string;
  status: InvoiceStatus;
  /** The amount billed, in the currency's minor unit. */
  amountCents: number;
  /** Lower-case ISO 4217 code. */
  currency: string;
  createdAt: Date;
  /** The service period billed, where the provider says it. */
  periodStart?: Date;
  periodEnd?: Date;
  /** The provider's hosted invoice or receipt page, where there is one. */
  url?: string;
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
  reportUsage(i: { customerId: string; subscriptionId: string; quantity: number; timestamp: Date; idempotencyKey: string }): Promise<void>;
  /**
   * Checks the signature and its age, and reads the envelope, with no network call (it runs
   * before the gateway answers the provider). Throws `WebhookSignatureError` for a missing, bad
   * or stale signature, `InvalidInputError` for a verified body that is not an event, and
   * `WebhookModeMismatchError` for an event of the other mode (test vs live) than the configured key.
   */
  verifyWebhook(i: WebhookInput): Promise<VerifiedWebhook>;
  /**
   * Turns a body `verifyWebhook` accepted, possibly hours ago, into the normalised event. Does
   * NOT check the signature or its age again (the gateway stored the body only after verifying it);
   * may call the provider's API (e.g. LemonSqueezy's order -> subscription lookup), so it can
   * fail with a retryable ProviderError.
   */
  normalizeWebhook(i: WebhookInput): Promise<PaymentEvent>;
  /** `verifyWebhook`, then `normalizeWebhook`. */
  parseWebhook(i: WebhookInput): Promise<PaymentEvent>;
  /**
   * The customer's invoices (or payments), newest first, at most `limit` (default 12). Only where
   * `features.invoices` is true; an unknown customer is an empty list or a final InvalidInputError.
   */
  listInvoices?(i: { customerId: string; limit?: number }): Promise<Invoice[]>;
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
  /** True where `listInvoices` is implemented (the billing overview then lists invoices). Default false. */
  invoices?: boolean;
}
