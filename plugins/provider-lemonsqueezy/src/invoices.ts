import type { Invoice, InvoiceStatus } from '@apigate/kernel';
import type { Resource } from './client.js';

/** A subscription invoice's attributes, as GET /v1/subscription-invoices answers them. */
export interface SubscriptionInvoiceAttributes {
  subscription_id: number;
  customer_id: number;
  billing_reason: string;
  currency: string;
  status: string;
  /** In cents; what the buyer was charged, tax and discounts included. */
  total: number;
  urls?: { invoice_url?: string | null } | null;
  created_at: string;
}

const STATUSES: Partial<Record<string, InvoiceStatus>> = {
  paid: 'paid',
  pending: 'open',
  void: 'void',
  refunded: 'refunded',
  partial_refund: 'partially_refunded',
  past_due: 'failed',
};

/**
 * A LemonSqueezy subscription invoice in the kernel's terms, undefined for a status it does not
 * know. LemonSqueezy keeps no billing period on invoices, so there is none.
 */
export function invoiceOf(r: Resource<SubscriptionInvoiceAttributes>): Invoice | undefined {
  const a = r.attributes;
  const status = STATUSES[a.status];
  if (!status || !Number.isSafeInteger(a.total)) return undefined;
  return {
    id: r.id,
    status,
    amountCents: a.total,
    currency: a.currency.toLowerCase(),
    createdAt: new Date(a.created_at),
    ...(a.urls?.invoice_url ? { url: a.urls.invoice_url } : {}),
  };
}
