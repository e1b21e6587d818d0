import { type PaymentProvider, resolveProviderConfig, settingsFromRecord, utf8, type WebhookInput } from '@apigate/kernel';
import { assertValidManifest, createForTest, describePaymentProvider, openCheckout } from '@apigate/provider-testkit';
import { describe, expect, it } from 'vitest';
import pkg from '../package.json' with { type: 'json' };
import provider, { addInterval, DEV_WEBHOOK_SECRET, type DummyEvent, type DummyPayment, SIGNATURE_HEADER } from '../src/index.js';
import { dummySignature, signWebhookWith } from './sign.js';

const asDummy = (p: PaymentProvider) => p as unknown as DummyPayment;
const SECRET = 'whsec_conformance_secret_0123456789';

describe('provider-dummy-payment', () => {
  it('has a valid manifest', () => {
    assertValidManifest(pkg, provider);
  });

  describePaymentProvider(provider, {
    name: 'conformance',
    secrets: { webhookSecret: SECRET },
    // Signed independently of the provider's own signer, from the documented header format.
    signWebhook: signWebhookWith(SECRET),
    // The dummy never calls out: any instance is an offline one.
    offlineConfig: {},
    completeCheckout: async (p, { sessionId }) => ({ subscriptionId: asDummy(p).completeCheckout(sessionId).subscription.subscriptionId }),
    usageTotal: async (p, subscriptionId) => asDummy(p).usageFor(subscriptionId).total,
    additionalTests: ({ provider: current, subscribe }) => {
      describe('dummy state changes', () => {
        const dummy = () => asDummy(current());

        it('completeCheckout returns the subscription and a signed checkout.completed webhook', async () => {
          const session = await openCheckout(current(), {
            userId: 'usr_1',
            email: 'u1@example.com',
            successUrl: 'https://app.example.com/ok',
            cancelUrl: 'https://app.example.com/cancel',
          });
          const { customerId, priceId } = session;
          expect(session.url).toBe(`http://localhost:8080/portal/dummy-checkout/${session.sessionId}`);
          expect(session.sessionId).toMatch(/^cs_dummy_[0-9a-f]{16}$/);
          const change = dummy().completeCheckout(session.sessionId);
          expect(change.subscription).toMatchObject({ customerId, priceId, status: 'active', cancelAtPeriodEnd: false });
          expect(change.subscription.subscriptionId).toMatch(/^sub_dummy_/);
          const event = await current().parseWebhook(change.webhook);
          expect(event).toMatchObject({
            type: 'checkout.completed',
            customerId,
            subscriptionId: change.subscription.subscriptionId,
            localRefs: { userId: 'usr_1', planId: 'pro' },
            subscription: change.subscription,
          });
          // Completing again (a double click) is the same subscription and the same event id.
          const again = dummy().completeCheckout(session.sessionId);
          expect(again.subscription.subscriptionId).toBe(change.subscription.subscriptionId);
          expect((await current().parseWebhook(again.webhook)).id).toBe(event.id);
        });

        it('failPayment makes the subscription past_due with a counted attempt', async () => {
          const s = await subscribe();
          dummy().failPayment(s.subscriptionId);
          const second = dummy().failPayment(s.subscriptionId);
          expect(second.subscription.status).toBe('past_due');
          const event = await current().parseWebhook(second.webhook);
          expect(event).toMatchObject({ type: 'invoice.payment_failed', invoice: { amountCents: 1900, currency: 'usd', attempt: 2 } });
        });

        it('renewSubscription starts a paid period, or ends one set to cancel', async () => {
          const s = await subscribe();
          const before = (await current().getSubscription(s.subscriptionId)).currentPeriodEnd!;
          const renewed = dummy().renewSubscription(s.subscriptionId);
          expect((await current().parseWebhook(renewed.webhook)).type).toBe('invoice.paid');
          expect(renewed.subscription.currentPeriodEnd!.getTime()).toBeGreaterThanOrEqual(before.getTime());
          await current().cancelSubscription({ subscriptionId: s.subscriptionId, atPeriodEnd: true });
          const ended = dummy().renewSubscription(s.subscriptionId);
          expect(ended.subscription.status).toBe('canceled');
          expect((await current().parseWebhook(ended.webhook)).type).toBe('subscription.deleted');
        });

        it('keeps invoices: paid at checkout and renewal, open after a failed charge and then paid, none for a trial', async () => {
          const s = await subscribe();
          const [first] = await current().listInvoices!({ customerId: s.customerId });
          const sub = await current().getSubscription(s.subscriptionId);
          expect(first).toMatchObject({ status: 'paid', amountCents: 1900, currency: 'usd', periodEnd: sub.currentPeriodEnd });
          expect(first!.id).toMatch(/^in_dummy_/);
          const failed = dummy().failPayment(s.subscriptionId);
          dummy().failPayment(s.subscriptionId);
          const open = await current().listInvoices!({ customerId: s.customerId });
          expect(open.map((i) => i.status)).toEqual(['open', 'paid']);
          expect(open[0]!.id).toBe(failed.event.invoice!.id);
          const renewed = dummy().renewSubscription(s.subscriptionId);
          expect(renewed.event.invoice).toMatchObject({ id: failed.event.invoice!.id, attempt: 3 });
          expect((await current().listInvoices!({ customerId: s.customerId })).map((i) => [i.id, i.status])).toEqual([
            [failed.event.invoice!.id, 'paid'],
            [first!.id, 'paid'],
          ]);
          dummy().renewSubscription(s.subscriptionId);
          expect(await current().listInvoices!({ customerId: s.customerId })).toHaveLength(3);
          const trial = await subscribe({ trialDays: 7 });
          expect(await current().listInvoices!({ customerId: trial.customerId })).toEqual([]);
          await expect(current().listInvoices!({ customerId: s.customerId, limit: 0 })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
        });

        it('a price change makes a new price and archives the old one; a rename keeps the id', async () => {
          const input = { planId: 'biz', name: 'Business', amountCents: 4900, currency: 'usd', interval: 'month' as const };
          const first = await current().upsertPrice(input);
          const renamed = await current().upsertPrice({ ...input, name: 'Business+', existingPriceId: first.priceId });
          expect(renamed).toEqual(first);
          const repriced = await current().upsertPrice({ ...input, amountCents: 5900, existingPriceId: first.priceId });
          expect(repriced.priceId).not.toBe(first.priceId);
          expect(repriced.productId).toBe(first.productId);
          const { customerId } = await current().createCustomer({ userId: 'usr_2', email: 'u2@example.com' });
          await expect(
            current().createCheckout({
              customerId,
              priceId: first.priceId,
              userId: 'usr_2',
              planId: 'biz',
              successUrl: 'https://app.example.com/ok',
              cancelUrl: 'https://app.example.com/cancel',
            }),
          ).rejects.toThrow(/is archived/);
        });

        it('refuses usage for a price that is not metered', async () => {
          const s = await subscribe();
          await expect(
            current().reportUsage({
              customerId: s.customerId,
              subscriptionId: s.subscriptionId,
              quantity: 1,
              timestamp: new Date(),
              idempotencyKey: 'k',
            }),
          ).rejects.toThrow(/is not metered/);
        });

        it('names the provider and the missing id, and hints that state is in memory', async () => {
          await expect(current().getSubscription('sub_dummy_gone')).rejects.toThrow(
            'payment/dummy getSubscription: no subscription "sub_dummy_gone" in the dummy payment provider (its state is in memory and lost on restart)',
          );
        });

        it('builds the portal url on the configured base url', async () => {
          const { customerId } = await current().createCustomer({ userId: 'usr_3', email: 'u3@example.com' });
          const { url } = await current().createPortalSession({ customerId, returnUrl: 'https://app.example.com/account' });
          const u = new URL(url);
          expect(`${u.origin}${u.pathname}`).toBe('http://localhost:8080/portal/dummy-checkout/portal');
          expect(u.searchParams.get('customer')).toBe(customerId);
          expect(u.searchParams.get('return_url')).toBe('https://app.example.com/account');
        });
      });
    },
  });

  describe('configuration', () => {
    it('reads the checkout base url and webhook secret from settings', () => {
      const { config, secretValues } = resolveProviderConfig(
        provider,
        {},
        settingsFromRecord({ 'payment.dummy.checkout_base_url': 'https://dev.example.com/pay/', 'payment.dummy.webhook_secret': SECRET }),
      );
      expect(config).toEqual({ checkoutBaseUrl: 'https://dev.example.com/pay/', webhookSecret: SECRET });
      expect(secretValues).toEqual([SECRET]);
    });

    it('defaults to the documented development secret', async () => {
      const { provider: p } = await createForTest(provider);
      const event: DummyEvent = { id: 'evt_1', type: 'invoice.paid', occurredAt: new Date() };
      const body = JSON.stringify(event);
      const parsed = await p.parseWebhook({
        rawBody: utf8.encode(body),
        headers: { [SIGNATURE_HEADER]: dummySignature(body, DEV_WEBHOOK_SECRET) },
      });
      expect(parsed.id).toBe('evt_1');
    });

    it('uses a trailing-slash base url without doubling the slash', async () => {
      const { provider: p } = await createForTest(provider, { checkoutBaseUrl: 'https://dev.example.com/pay/' });
      const s = await openCheckout(p, {
        userId: 'u',
        email: 'u@example.com',
        price: { planId: 'p', name: 'P', amountCents: 0, currency: 'eur', interval: 'year' },
      });
      expect(s.url).toBe(`https://dev.example.com/pay/${s.sessionId}`);
    });
  });

  describe('webhook verification details', () => {
    const signed = (secret: string, body: string, t = Math.floor(Date.now() / 1000)): WebhookInput => ({
      rawBody: utf8.encode(body),
      headers: { [SIGNATURE_HEADER]: dummySignature(body, secret, t) },
    });

    it('accepts any of several v1 signatures (secret rotation)', async () => {
      const { provider: p } = await createForTest(provider, { webhookSecret: SECRET });
      const body = JSON.stringify({ id: 'evt_rot', type: 'invoice.paid', occurredAt: new Date().toISOString() });
      const good = signed(SECRET, body);
      const old = signed('whsec_the_previous_secret_value', body);
      const header = `${old.headers[SIGNATURE_HEADER]},${good.headers[SIGNATURE_HEADER]!.split(',')[1]}`;
      await expect(p.parseWebhook({ rawBody: good.rawBody, headers: { [SIGNATURE_HEADER]: header } })).resolves.toMatchObject({
        id: 'evt_rot',
      });
    });

    it('refuses a signature from the future beyond the tolerance', async () => {
      const { provider: p } = await createForTest(provider, { webhookSecret: SECRET });
      const body = JSON.stringify({ id: 'evt_f', type: 'invoice.paid', occurredAt: new Date().toISOString() });
      await expect(p.parseWebhook(signed(SECRET, body, Math.floor(Date.now() / 1000) + 3600))).rejects.toThrow(/5-minute tolerance/);
    });

    it('refuses a correctly signed body that is not an event, as bad input', async () => {
      const { provider: p } = await createForTest(provider, { webhookSecret: SECRET });
      await expect(p.parseWebhook(signed(SECRET, 'not json'))).rejects.toMatchObject({ code: 'INVALID_INPUT' });
      await expect(p.parseWebhook(signed(SECRET, '{"id":"evt_x"}'))).rejects.toThrow(/body field type/);
    });
  });

  describe('addInterval', () => {
    it('clamps to the last day of a shorter month', () => {
      expect(addInterval(new Date('2025-01-31T10:00:00Z'), 'month').toISOString()).toBe('2025-02-28T10:00:00.000Z');
      expect(addInterval(new Date('2024-01-31T10:00:00Z'), 'month').toISOString()).toBe('2024-02-29T10:00:00.000Z');
      expect(addInterval(new Date('2024-02-29T10:00:00Z'), 'year').toISOString()).toBe('2025-02-28T10:00:00.000Z');
      expect(addInterval(new Date('2025-03-15T10:00:00Z'), 'month').toISOString()).toBe('2025-04-15T10:00:00.000Z');
    });
  });
});
