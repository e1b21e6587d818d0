import { describe, expect, it } from 'vitest';
import { assertCheckoutInput, assertUpsertPriceInput, type CheckoutInput, InvalidInputError, type UpsertPriceInput } from '../src/index.js';

const price = (over: Partial<UpsertPriceInput> = {}): UpsertPriceInput => ({
  planId: 'pro',
  name: 'Pro',
  amountCents: 1900,
  currency: 'usd',
  interval: 'month',
  ...over,
});
const checkout = (over: Partial<CheckoutInput> = {}): CheckoutInput => ({
  customerId: 'cus_1',
  priceId: 'price_1',
  userId: 'usr_1',
  planId: 'pro',
  successUrl: 'https://app.example.com/ok',
  cancelUrl: 'https://app.example.com/cancel',
  ...over,
});

describe('payment input', () => {
  it('accepts a price and a checkout the contract allows', () => {
    expect(() =>
      assertUpsertPriceInput(price({ amountCents: 0, currency: 'EUR', interval: 'year', existingPriceId: 'p_1' }), 'x'),
    ).not.toThrow();
    expect(() => assertCheckoutInput(checkout({ trialDays: 0 }), 'x')).not.toThrow();
  });

  it.each([
    ['an empty plan id', price({ planId: ' ' }), 'payment/t upsertPrice planId'],
    ['an empty name', price({ name: '' }), 'payment/t upsertPrice name'],
    ['a negative amount', price({ amountCents: -1 }), 'payment/t upsertPrice amountCents'],
    ['a fractional amount', price({ amountCents: 19.5 }), 'payment/t upsertPrice amountCents'],
    ['a bad currency', price({ currency: 'dollars' }), 'payment/t upsertPrice currency'],
    ['a weekly interval', price({ interval: 'week' as never }), 'payment/t upsertPrice interval'],
    ['an empty existing price id', price({ existingPriceId: '' }), 'payment/t upsertPrice existingPriceId'],
  ])('refuses a price with %s, naming the field', (_what, input, prefix) => {
    expect(() => assertUpsertPriceInput(input, 'payment/t upsertPrice')).toThrow(InvalidInputError);
    expect(() => assertUpsertPriceInput(input, 'payment/t upsertPrice')).toThrow(prefix);
  });

  it.each([
    ['an empty customer id', checkout({ customerId: '' }), 'customerId'],
    ['a relative success url', checkout({ successUrl: '/ok' }), 'successUrl'],
    ['a non-http cancel url', checkout({ cancelUrl: 'javascript:alert(1)' }), 'cancelUrl'],
    ['negative trial days', checkout({ trialDays: -1 }), 'trialDays'],
  ])('refuses a checkout with %s, naming the field', (_what, input, field) => {
    expect(() => assertCheckoutInput(input, 'payment/t createCheckout')).toThrow(`payment/t createCheckout ${field}:`);
  });
});
