import { type FakeLemonSqueezy, startFakeLemonSqueezy } from '@apigate/provider-lemonsqueezy/testing';
import { type FakePaddle, startFakePaddle } from '@apigate/provider-paddle/testing';
import { FakeStripe } from '@apigate/provider-stripe/testing';
import { afterAll, beforeAll } from 'vitest';

export interface PaymentFakes {
  stripe: FakeStripe;
  paddle: FakePaddle;
  lemon: FakeLemonSqueezy;
}

/**
 * The Stripe, Paddle and LemonSqueezy stand-ins the provider packages test with, started before the
 * test file's tests and closed after them. LemonSqueezy's API cannot create products: `lemonProducts`
 * are the ones the seller made in the dashboard, by name, with their monthly price in cents.
 */
export function usePaymentFakes(lemonProducts: Record<string, number>): PaymentFakes {
  const fakes = {} as PaymentFakes;
  beforeAll(async () => {
    [fakes.stripe, fakes.paddle, fakes.lemon] = await Promise.all([FakeStripe.start(), startFakePaddle(), startFakeLemonSqueezy()]);
    for (const [name, amountCents] of Object.entries(lemonProducts))
      fakes.lemon.addProduct(name, [{ name: 'Default', amountCents, interval: 'month' }]);
  });
  afterAll(async () => {
    await Promise.all([fakes.stripe?.close(), fakes.paddle?.close(), fakes.lemon?.close()]);
  });
  return fakes;
}
