import type { CheckoutInput, UpsertPriceInput } from './capabilities/payment.js';
import { InvalidInputError } from './errors.js';

const text = (v: unknown): v is string => typeof v === 'string' && v.trim() !== '';

/**
 * Throws InvalidInputError naming the first field of a price the payment contract forbids:
 * an empty plan id or name, an amount that is not a whole number of cents (0 or more), a
 * currency that is not a 3-letter code, an interval other than month or year.
 * `who` prefixes the message, e.g. "payment/paddle upsertPrice".
 */
export function assertUpsertPriceInput(i: UpsertPriceInput, who: string): void {
  if (!i || typeof i !== 'object') throw new InvalidInputError(`${who}: expected a price object`);
  if (!text(i.planId)) throw new InvalidInputError(`${who} planId: a non-empty string is required`);
  if (!text(i.name)) throw new InvalidInputError(`${who} name: a non-empty string is required`);
  if (!Number.isInteger(i.amountCents) || i.amountCents < 0) {
    throw new InvalidInputError(`${who} amountCents: a whole number of cents, 0 or more, is required`);
  }
  if (typeof i.currency !== 'string' || !/^[a-z]{3}$/i.test(i.currency)) {
    throw new InvalidInputError(`${who} currency: a 3-letter ISO code is required`);
  }
  if (i.interval !== 'month' && i.interval !== 'year') throw new InvalidInputError(`${who} interval: month or year is required`);
  if (i.existingPriceId !== undefined && !text(i.existingPriceId)) {
    throw new InvalidInputError(`${who} existingPriceId: a non-empty string is required when given`);
  }
}

/**
 * Throws InvalidInputError naming the first field of a checkout the payment contract forbids:
 * empty ids, success/cancel URLs that are not absolute http(s) URLs, trial days that are not a
 * whole number of 0 or more.
 */
export function assertCheckoutInput(i: CheckoutInput, who: string): void {
  if (!i || typeof i !== 'object') throw new InvalidInputError(`${who}: expected a checkout object`);
  for (const field of ['customerId', 'priceId', 'userId', 'planId'] as const) {
    if (!text(i[field])) throw new InvalidInputError(`${who} ${field}: a non-empty string is required`);
  }
  for (const field of ['successUrl', 'cancelUrl'] as const) {
    const v = i[field];
    if (typeof v !== 'string' || !URL.canParse(v) || !/^https?:$/.test(new URL(v).protocol)) {
      throw new InvalidInputError(`${who} ${field}: an absolute http(s) URL is required`);
    }
  }
  if (i.trialDays !== undefined && (!Number.isInteger(i.trialDays) || i.trialDays < 0)) {
    throw new InvalidInputError(`${who} trialDays: a whole number, 0 or more, is required`);
  }
}
