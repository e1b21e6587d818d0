import type { Invoice, InvoiceStatus } from '@apigate/kernel';
import type { Transaction, TransactionStatus } from '@paddle/paddle-node-sdk';

/**
 * Paddle bills by transaction: a checkout's or a renewal's. `draft` and `ready` are checkouts not
 * paid yet (not asked for); `billed` is issued and awaiting payment, `past_due` a renewal whose
 * payment failed, `canceled` a billed one voided.
 */
export const BILLED_STATUSES: TransactionStatus[] = ['billed', 'paid', 'completed', 'past_due', 'canceled'];
const STATUSES: Partial<Record<TransactionStatus, InvoiceStatus>> = {
  billed: 'open',
  paid: 'paid',
  completed: 'paid',
  past_due: 'failed',
  canceled: 'void',
};

/** A billed Paddle transaction in the kernel's terms: its grand total (what the customer pays) and billing period. */
export function invoiceOf(t: Transaction): Invoice | undefined {
  const status = STATUSES[t.status];
  if (!status) return undefined;
  const amount = Number(t.details?.totals?.grandTotal ?? Number.NaN);
  if (!Number.isSafeInteger(amount)) return undefined;
  return {
    id: t.id,
    status,
    amountCents: amount,
    currency: t.currencyCode.toLowerCase(),
    createdAt: new Date(t.createdAt),
    ...(t.billingPeriod ? { periodStart: new Date(t.billingPeriod.startsAt), periodEnd: new Date(t.billingPeriod.endsAt) } : {}),
  };
}
