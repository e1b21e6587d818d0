import type { Invoice, InvoiceStatus } from '@apigate/kernel';
import type Stripe from 'stripe';

const STATUSES: Partial<Record<string, InvoiceStatus>> = { open: 'open', paid: 'paid', void: 'void', uncollectible: 'uncollectible' };

/**
 * A finalized Stripe invoice in the kernel's terms; undefined for drafts (Stripe keeps a renewal's
 * invoice as a draft for about an hour, the customer has nothing to see or pay yet) and unknown states.
 * The period is the one the subscription line bills (the invoice's own `period_start`/`period_end`
 * is the usage period before it, equal to `created` on a first invoice).
 */
export function invoiceOf(inv: Stripe.Invoice): Invoice | undefined {
  const status = inv.status ? STATUSES[inv.status] : undefined;
  if (!status || !inv.id) return undefined;
  const line = inv.lines?.data.find((l) => l.parent?.type === 'subscription_item_details') ?? inv.lines?.data[0];
  return {
    id: inv.id,
    status,
    amountCents: inv.total,
    currency: inv.currency.toLowerCase(),
    createdAt: new Date(inv.created * 1000),
    ...(line?.period ? { periodStart: new Date(line.period.start * 1000), periodEnd: new Date(line.period.end * 1000) } : {}),
    ...(inv.hosted_invoice_url ? { url: inv.hosted_invoice_url } : {}),
  };
}
