import {
  type CheckoutInput,
  type PaymentEvent,
  type PaymentEventType,
  type PaymentFeatures,
  type PaymentProvider,
  type SubscriptionState,
  type UpsertPriceInput,
  utf8,
} from '@apigate/kernel';
import { beforeEach, describe, expect, it } from 'vitest';
import { expectFinalRejection, instancePerTest, lifecycleTests, rejectionOf, token } from './expectations.js';
import { type DefinitionOf, describeSuite, resolveSuite, type SuiteSetup, type TestConfigSource } from './suite.js';

/**
 * What a webhook should say, in the kernel's terms: a `PaymentEvent` without `raw`. The provider's
 * test turns it into the body its vendor would send (a Stripe event, a Paddle notification, ...)
 * and signs it; the suite then checks that `parseWebhook` gives back the same facts.
 * `type: 'ignored'` asks for some event type the gateway does not use (e.g. Stripe `customer.updated`);
 * `occurredAt` is in whole seconds, since most vendors send unix seconds.
 */
export interface WebhookEventSpec extends Omit<PaymentEvent, 'raw'> {
  /** For `checkout.completed`: the session that completed. */
  sessionId?: string;
}

export interface SignWebhookOptions {
  /** The instance under test, for providers that sign with their own helper. */
  provider: PaymentProvider;
  /** Sign with a secret other than the one the provider was created with. */
  wrongSecret: boolean;
  /** The signing time to claim in the signature. */
  signedAt: Date;
  /**
   * Build the event as the provider's other mode would send it: a live event for a test key (Stripe
   * `livemode: true`, LemonSqueezy `meta.test_mode: false`, dummy `livemode: true`), or, where the
   * payload says no mode (`modeCheck: 'signature'`), signed with the other environment's secret.
   */
  otherMode: boolean;
}

export interface SignedWebhook {
  rawBody: Uint8Array | string;
  /** Header names in any case; the suite lower-cases them as the gateway does. */
  headers: Record<string, string>;
}

export interface PaymentSuiteContext {
  /** The instance made by `create` for the current test. */
  provider(): PaymentProvider;
  /** Creates a customer, a monthly price and a completed checkout; returns their ids. */
  subscribe(opts?: { trialDays?: number; metered?: boolean }): Promise<Subscribed>;
}

export interface Subscribed {
  customerId: string;
  priceId: string;
  sessionId: string;
  subscriptionId: string;
  userId: string;
  planId: string;
}

export interface PaymentSuiteOptions {
  name?: string;
  /** Timeout of each test in ms (default 30 s). */
  timeout?: number;
  /** Called before each test; the suite closes the instance after it. */
  create: () => PaymentProvider | Promise<PaymentProvider>;
  /** The provider's declared features (`definition.features`). */
  features?: PaymentFeatures;
  /** Builds the vendor's webhook body for `event` and signs it as the vendor documents. */
  signWebhook: (event: WebhookEventSpec, opts: SignWebhookOptions) => SignedWebhook | Promise<SignedWebhook>;
  /** False for vendors whose signature covers only the body (no replay window); default true. */
  signatureHasTimestamp?: boolean;
  /**
   * How an event of the other mode (test vs live) is refused: `payload` (default) when the body
   * says its mode and verifyWebhook refuses it with WEBHOOK_MODE_MISMATCH; `signature` when the
   * body does not (Paddle) and the other environment's secret makes the signature fail.
   */
  modeCheck?: 'payload' | 'signature';
  /**
   * An instance whose provider API cannot be reached (a closed port), to prove verifyWebhook makes
   * no network call. Absent: the suite cannot check that part.
   */
  createOffline?: () => PaymentProvider | Promise<PaymentProvider>;
  /**
   * Does what a paying customer does on the hosted checkout page, so the session becomes a
   * subscription: the dummy provider's `completeCheckout`, or marking the session paid in a fake API.
   */
  completeCheckout: (
    provider: PaymentProvider,
    session: { sessionId: string; customerId: string; priceId: string; trialDays?: number },
  ) => Promise<{ subscriptionId: string }>;
  /** Total usage the backend recorded for a subscription, where it can tell; proves idempotency keys work. */
  usageTotal?: (provider: PaymentProvider, subscriptionId: string) => Promise<number>;
  additionalTests?: (ctx: PaymentSuiteContext) => void;
}

/** What `describePaymentProvider(definition, setup)` takes besides the setup every suite takes. */
export interface PaymentSuiteSetup
  extends SuiteSetup,
    Pick<
      PaymentSuiteOptions,
      'signWebhook' | 'signatureHasTimestamp' | 'modeCheck' | 'completeCheckout' | 'usageTotal' | 'additionalTests'
    > {
  /**
   * Config fields, merged over `config` and `secrets`, that point an instance at a provider API
   * nobody answers (a closed port), to prove verifyWebhook makes no network call. Absent: the suite
   * cannot check that part.
   */
  offlineConfig?: TestConfigSource;
}

export interface OpenCheckoutOptions {
  userId: string;
  /** The new customer's email; not used when `customerId` is given. */
  email?: string;
  /** A customer the provider already has (none is created). */
  customerId?: string;
  /** Over the default price: plan `pro`, `Pro`, 19.00 USD a month. */
  price?: Partial<UpsertPriceInput>;
  /** Default `https://a.example/ok` and `https://a.example/no`. */
  successUrl?: string;
  cancelUrl?: string;
}

export interface OpenedCheckout {
  customerId: string;
  priceId: string;
  sessionId: string;
  url: string;
  /** What was passed to `createCheckout`, to open another session the same way. */
  input: CheckoutInput;
}

/**
 * What a payment provider's own tests do before most subscription and webhook checks: creates a
 * customer (unless `customerId` is given) and a price, and opens a hosted checkout for them.
 */
export async function openCheckout(provider: PaymentProvider, o: OpenCheckoutOptions): Promise<OpenedCheckout> {
  const customerId =
    o.customerId ?? (await provider.createCustomer({ userId: o.userId, email: o.email ?? `${o.userId}@example.com` })).customerId;
  const priceInput: UpsertPriceInput = { planId: 'pro', name: 'Pro', amountCents: 1900, currency: 'usd', interval: 'month', ...o.price };
  const { priceId } = await provider.upsertPrice(priceInput);
  const input: CheckoutInput = {
    customerId,
    priceId,
    userId: o.userId,
    planId: priceInput.planId,
    successUrl: o.successUrl ?? 'https://a.example/ok',
    cancelUrl: o.cancelUrl ?? 'https://a.example/no',
  };
  const { sessionId, url } = await provider.createCheckout(input);
  return { customerId, priceId, sessionId, url, input };
}

const TEST_TIMEOUT = 30_000;
const DAY_MS = 86_400_000;
const wholeSeconds = (d: Date): Date => new Date(Math.floor(d.getTime() / 1000) * 1000);

function expectHttpUrl(value: string, what: string): URL {
  expect(URL.canParse(value), `${what} should be an absolute URL, got ${JSON.stringify(value)}`).toBe(true);
  const url = new URL(value);
  expect(['http:', 'https:'], `${what} protocol`).toContain(url.protocol);
  return url;
}

function expectSubscription(got: SubscriptionState, want: Partial<SubscriptionState>): void {
  expect(typeof got.subscriptionId).toBe('string');
  expect(typeof got.cancelAtPeriodEnd).toBe('boolean');
  const { currentPeriodEnd, ...rest } = want;
  expect(got).toMatchObject(rest);
  if (currentPeriodEnd) expect(got.currentPeriodEnd?.getTime()).toBe(currentPeriodEnd.getTime());
}

/**
 * Conformance suite for payment providers: catalogue, checkout, subscriptions, usage and webhooks.
 * Each test gets a new instance of `definition`, made by `createForTest` from the setup's `config`
 * and `secrets`.
 */
export function describePaymentProvider(definition: DefinitionOf<'payment'>, setup: PaymentSuiteSetup): void;
/** @deprecated The 1.0 form: pass the definition and its config instead, `describePaymentProvider(definition, { config, ... })`. */
export function describePaymentProvider(opts: PaymentSuiteOptions): void;
export function describePaymentProvider(first: DefinitionOf<'payment'> | PaymentSuiteOptions, setup?: PaymentSuiteSetup): void {
  const suite = resolveSuite('payment', 'payment provider conformance', first, setup, (make, s) => ({
    createOffline: s.offlineConfig && (() => make(s.offlineConfig)),
  }));
  const opts = suite.opts;
  describeSuite(suite, TEST_TIMEOUT, () => {
    const provider = instancePerTest('payment', opts.create);
    const checkoutTrials = opts.features?.checkoutTrials ?? true;
    const immediateCancel = opts.features?.immediateCancel ?? true;

    const customer = async () => {
      const userId = `usr_conformance_${token()}`;
      const { customerId } = await provider().createCustomer({ userId, email: `${userId}@example.com`, name: 'Conformance User' });
      return { userId, customerId };
    };
    const price = async (over: Partial<UpsertPriceInput> = {}) => {
      const input: UpsertPriceInput = {
        planId: `plan_conformance_${token()}`,
        name: 'Conformance Pro',
        amountCents: 1900,
        currency: 'usd',
        interval: 'month',
        ...over,
      };
      return { ...(await provider().upsertPrice(input)), input };
    };
    const checkoutInput = (customerId: string, priceId: string, userId: string, planId: string) => ({
      customerId,
      priceId,
      userId,
      planId,
      successUrl: 'https://apigate.example.com/billing/success',
      cancelUrl: 'https://apigate.example.com/billing/cancel',
    });
    const subscribe = async (o: { trialDays?: number; metered?: boolean } = {}): Promise<Subscribed> => {
      const { userId, customerId } = await customer();
      const p = await price(o.metered ? { metered: true } : {});
      const { sessionId } = await provider().createCheckout({
        ...checkoutInput(customerId, p.priceId, userId, p.input.planId),
        ...(o.trialDays ? { trialDays: o.trialDays } : {}),
      });
      const { subscriptionId } = await opts.completeCheckout(provider(), {
        sessionId,
        customerId,
        priceId: p.priceId,
        ...(o.trialDays ? { trialDays: o.trialDays } : {}),
      });
      return { customerId, priceId: p.priceId, sessionId, subscriptionId, userId, planId: p.input.planId };
    };
    const listAll = async (i: { customerId?: string; updatedSince?: Date }) => {
      const out: SubscriptionState[] = [];
      for await (const s of provider().listSubscriptions(i)) out.push(s);
      return out;
    };

    describe('customers', () => {
      it('creates customers with distinct ids', async () => {
        const a = await customer();
        const b = await customer();
        expect(a.customerId.trim()).not.toBe('');
        expect(a.customerId).not.toBe(b.customerId);
      });

      it('deletes a customer', async () => {
        const { customerId } = await customer();
        await expect(provider().deleteCustomer(customerId)).resolves.toBeUndefined();
      });
    });

    describe('prices', () => {
      it('creates a price for a plan', async () => {
        const p = await price();
        expect(p.priceId.trim()).not.toBe('');
        if (p.productId !== undefined) expect(p.productId.trim()).not.toBe('');
      });

      it('creates a yearly price', async () => {
        const p = await price({ interval: 'year', amountCents: 19_000 });
        expect(p.priceId.trim()).not.toBe('');
      });

      it('updates a price through existingPriceId, and the result can be sold', async () => {
        const first = await price();
        const updated = await provider().upsertPrice({
          ...first.input,
          name: 'Conformance Pro (renamed)',
          amountCents: 2900,
          existingPriceId: first.priceId,
        });
        expect(updated.priceId.trim()).not.toBe('');
        const { userId, customerId } = await customer();
        const session = await provider().createCheckout(checkoutInput(customerId, updated.priceId, userId, first.input.planId));
        expect(session.sessionId.trim()).not.toBe('');
      });

      it('archives a price, twice without error', async () => {
        const p = await price();
        await expect(provider().archivePrice(p.priceId)).resolves.toBeUndefined();
        await expect(provider().archivePrice(p.priceId)).resolves.toBeUndefined();
      });

      it('refuses a negative amount, without retry', async () => {
        await expectFinalRejection(() => price({ amountCents: -100 }), 'a price with a negative amount');
      });
    });

    describe('checkout and portal', () => {
      it('creates a hosted checkout session', async () => {
        const { userId, customerId } = await customer();
        const p = await price();
        const a = await provider().createCheckout(checkoutInput(customerId, p.priceId, userId, p.input.planId));
        const b = await provider().createCheckout({
          ...checkoutInput(customerId, p.priceId, userId, p.input.planId),
          ...(checkoutTrials ? { trialDays: 14 } : {}),
        });
        expectHttpUrl(a.url, 'checkout url');
        expect(a.sessionId.trim()).not.toBe('');
        expect(b.sessionId).not.toBe(a.sessionId);
      });

      if (opts.features?.customerPortal) {
        it('creates a customer portal session', async () => {
          const { customerId } = await customer();
          const { url } = await provider().createPortalSession({ customerId, returnUrl: 'https://apigate.example.com/account' });
          expectHttpUrl(url, 'portal url');
        });
      }
    });

    describe('subscriptions', () => {
      it('a completed checkout is an active subscription', async () => {
        const s = await subscribe();
        const got = await provider().getSubscription(s.subscriptionId);
        expectSubscription(got, {
          subscriptionId: s.subscriptionId,
          customerId: s.customerId,
          priceId: s.priceId,
          status: 'active',
          cancelAtPeriodEnd: false,
        });
        expect(got.currentPeriodEnd!.getTime()).toBeGreaterThan(Date.now());
      });

      if (checkoutTrials)
        it('a checkout with trial days is trialing until the trial ends', async () => {
          const s = await subscribe({ trialDays: 7 });
          const got = await provider().getSubscription(s.subscriptionId);
          expect(got.status).toBe('trialing');
          const end = got.currentPeriodEnd!.getTime();
          expect(end).toBeGreaterThan(Date.now() + 6 * DAY_MS);
          expect(end).toBeLessThan(Date.now() + 8 * DAY_MS);
        });

      it('lists subscriptions by customer', async () => {
        const s = await subscribe();
        const other = await subscribe();
        const mine = await listAll({ customerId: s.customerId });
        expect(mine.map((x) => x.subscriptionId)).toEqual([s.subscriptionId]);
        expect(mine[0]!.customerId).toBe(s.customerId);
        const since = await listAll({ updatedSince: new Date(Date.now() - DAY_MS) });
        expect(since.map((x) => x.subscriptionId)).toEqual(expect.arrayContaining([s.subscriptionId, other.subscriptionId]));
      });

      it('changes the plan', async () => {
        const s = await subscribe();
        const next = await price({ amountCents: 4900, name: 'Conformance Business' });
        const changed = await provider().changeSubscription({ subscriptionId: s.subscriptionId, priceId: next.priceId });
        expectSubscription(changed, { subscriptionId: s.subscriptionId, priceId: next.priceId, status: 'active' });
        expect((await provider().getSubscription(s.subscriptionId)).priceId).toBe(next.priceId);
      });

      it(immediateCancel ? 'cancels at period end, then now' : 'cancels at period end', async () => {
        const s = await subscribe();
        const atEnd = await provider().cancelSubscription({ subscriptionId: s.subscriptionId, atPeriodEnd: true });
        expectSubscription(atEnd, { subscriptionId: s.subscriptionId, status: 'active', cancelAtPeriodEnd: true });
        expect((await provider().getSubscription(s.subscriptionId)).cancelAtPeriodEnd).toBe(true);
        if (!immediateCancel) return;
        const now = await provider().cancelSubscription({ subscriptionId: s.subscriptionId, atPeriodEnd: false });
        expect(now.status).toBe('canceled');
        expect((await provider().getSubscription(s.subscriptionId)).status).toBe('canceled');
      });

      if (!immediateCancel)
        it('refuses an immediate cancel it cannot do, without retry, and leaves the subscription alone', async () => {
          const s = await subscribe();
          await expectFinalRejection(
            () => provider().cancelSubscription({ subscriptionId: s.subscriptionId, atPeriodEnd: false }),
            'an immediate cancel on a provider without one',
          );
          expect(await provider().getSubscription(s.subscriptionId)).toMatchObject({ status: 'active', cancelAtPeriodEnd: false });
        });

      if (immediateCancel)
        it('cancels immediately', async () => {
          const s = await subscribe();
          const now = await provider().cancelSubscription({ subscriptionId: s.subscriptionId, atPeriodEnd: false });
          expectSubscription(now, { subscriptionId: s.subscriptionId, customerId: s.customerId, status: 'canceled' });
        });

      it('refuses an unknown subscription, without retry', async () => {
        await expectFinalRejection(() => provider().getSubscription(`sub_unknown_${token()}`), 'an unknown subscription id');
      });
    });

    if (opts.features?.meteredBilling) {
      describe('usage', () => {
        it('reports usage once per idempotency key', async () => {
          const s = await subscribe({ metered: true });
          const report = (quantity: number, idempotencyKey: string) =>
            provider().reportUsage({
              customerId: s.customerId,
              subscriptionId: s.subscriptionId,
              quantity,
              timestamp: new Date(),
              idempotencyKey,
            });
          const key = `usage_${token()}`;
          await expect(report(120, key)).resolves.toBeUndefined();
          await expect(report(120, key)).resolves.toBeUndefined();
          await expect(report(5, `usage_${token()}`)).resolves.toBeUndefined();
          if (opts.usageTotal) expect(await opts.usageTotal(provider(), s.subscriptionId)).toBe(125);
        });

        it('refuses a negative quantity, without retry', async () => {
          const s = await subscribe({ metered: true });
          await expectFinalRejection(
            () =>
              provider().reportUsage({
                customerId: s.customerId,
                subscriptionId: s.subscriptionId,
                quantity: -1,
                timestamp: new Date(),
                idempotencyKey: `usage_${token()}`,
              }),
            'a negative usage quantity',
          );
        });
      });
    }

    if (opts.features?.invoices) {
      describe('invoices', () => {
        const list = (customerId: string, limit?: number) => {
          expect(typeof provider().listInvoices, 'features.invoices is true, so listInvoices must exist').toBe('function');
          return provider().listInvoices!({ customerId, ...(limit !== undefined ? { limit } : {}) });
        };

        it('lists the paid first invoice of a checkout with its amount, currency, status, dates and period', async () => {
          const before = Date.now() - 60_000;
          const s = await subscribe();
          const sub = await provider().getSubscription(s.subscriptionId);
          const invoices = await list(s.customerId);
          expect(invoices.length, 'a paid checkout has an invoice').toBeGreaterThanOrEqual(1);
          const [first] = invoices;
          expect(typeof first!.id === 'string' && first!.id.trim() !== '', 'invoice id').toBe(true);
          expect(first).toMatchObject({ status: 'paid', amountCents: 1900 });
          expect(first!.currency).toBe('usd');
          expect(first!.createdAt).toBeInstanceOf(Date);
          expect(first!.createdAt.getTime()).toBeGreaterThanOrEqual(before);
          expect(first!.createdAt.getTime()).toBeLessThanOrEqual(Date.now() + 60_000);
          if (first!.periodEnd !== undefined) {
            expect(first!.periodStart!.getTime()).toBeLessThan(first!.periodEnd.getTime());
            // The first invoice bills the first period: it ends when the subscription's period does (within a day of clock rounding).
            if (sub.currentPeriodEnd)
              expect(Math.abs(first!.periodEnd.getTime() - sub.currentPeriodEnd.getTime())).toBeLessThanOrEqual(DAY_MS);
          }
          if (first!.url !== undefined) expectHttpUrl(first!.url, 'invoice url');
          // Sorted newest first.
          for (let n = 1; n < invoices.length; n++)
            expect(invoices[n - 1]!.createdAt.getTime()).toBeGreaterThanOrEqual(invoices[n]!.createdAt.getTime());
        });

        it("lists only the customer's own invoices, and none for a customer without any", async () => {
          const a = await subscribe();
          const b = await subscribe();
          const mine = await list(a.customerId);
          const theirs = await list(b.customerId);
          expect(mine.length).toBeGreaterThanOrEqual(1);
          expect(theirs.length).toBeGreaterThanOrEqual(1);
          const theirIds = new Set(theirs.map((i) => i.id));
          expect(mine.filter((i) => theirIds.has(i.id))).toEqual([]);
          const { customerId } = await customer();
          expect(await list(customerId)).toEqual([]);
        });

        it('keeps to the limit', async () => {
          const s = await subscribe();
          // A second subscription of the same customer makes a second invoice.
          const p = await price({ amountCents: 4900, name: 'Conformance Business' });
          const { sessionId } = await provider().createCheckout(checkoutInput(s.customerId, p.priceId, s.userId, p.input.planId));
          await opts.completeCheckout(provider(), { sessionId, customerId: s.customerId, priceId: p.priceId });
          const all = await list(s.customerId);
          expect(all.length).toBeGreaterThanOrEqual(2);
          expect(all.map((i) => i.amountCents)).toEqual(expect.arrayContaining([1900, 4900]));
          const one = await list(s.customerId, 1);
          expect(one.length).toBe(1);
          expect(one[0]!.id).toBe(all[0]!.id);
        });
      });
    }

    describe('webhooks', () => {
      let s: Subscribed;
      beforeEach(async () => {
        s = await subscribe();
      });

      const sign = async (event: WebhookEventSpec, o: Partial<Omit<SignWebhookOptions, 'provider'>> = {}) => {
        const signed = await opts.signWebhook(event, {
          provider: provider(),
          wrongSecret: false,
          signedAt: new Date(),
          otherMode: false,
          ...o,
        });
        return {
          rawBody: typeof signed.rawBody === 'string' ? utf8.encode(signed.rawBody) : signed.rawBody,
          headers: Object.fromEntries(Object.entries(signed.headers).map(([k, v]) => [k.toLowerCase(), v])),
        };
      };
      const spec = (type: PaymentEventType, over: Partial<WebhookEventSpec> = {}): WebhookEventSpec => ({
        id: `evt_conformance_${token()}`,
        type,
        occurredAt: wholeSeconds(new Date(Date.now() - 30_000)),
        customerId: s.customerId,
        subscriptionId: s.subscriptionId,
        priceId: s.priceId,
        ...over,
      });
      const state = (over: Partial<SubscriptionState> = {}): SubscriptionState => ({
        subscriptionId: s.subscriptionId,
        customerId: s.customerId,
        priceId: s.priceId,
        status: 'active',
        currentPeriodEnd: wholeSeconds(new Date(Date.now() + 30 * DAY_MS)),
        cancelAtPeriodEnd: false,
        ...over,
      });
      // verifyWebhook, then normalizeWebhook (what the gateway does), checked against parseWebhook.
      const parsed = async (e: WebhookEventSpec): Promise<PaymentEvent> => {
        const signed = await sign(e);
        const envelope = await provider().verifyWebhook(signed);
        expect(envelope.id).toBe(e.id);
        expect(typeof envelope.type === 'string' && envelope.type.trim() !== '', 'verifyWebhook type: the provider event name').toBe(true);
        expect(envelope.occurredAt.getTime()).toBe(e.occurredAt.getTime());
        const event = await provider().normalizeWebhook(signed);
        expect(event.id).toBe(e.id);
        expect(event.type).toBe(e.type);
        expect(event.occurredAt.getTime()).toBe(e.occurredAt.getTime());
        expect(event.raw).toBeDefined();
        if (event.sequence !== undefined) expect(['number', 'string']).toContain(typeof event.sequence);
        const whole = await provider().parseWebhook(signed);
        expect({ id: whole.id, type: whole.type, subscriptionId: whole.subscriptionId }).toEqual({
          id: event.id,
          type: event.type,
          subscriptionId: event.subscriptionId,
        });
        return event;
      };
      const expectIds = (event: PaymentEvent, e: WebhookEventSpec) => {
        expect(event.customerId).toBe(e.customerId);
        expect(event.subscriptionId).toBe(e.subscriptionId);
      };
      // verifyWebhook refuses it (the gateway's check before the 200), and so does parseWebhook.
      const expectSignatureError = async (
        p: (verify: 'verifyWebhook' | 'parseWebhook') => Promise<unknown>,
        what: string,
        code = 'WEBHOOK_SIGNATURE_INVALID',
      ) => {
        for (const verify of ['verifyWebhook', 'parseWebhook'] as const) {
          const err = await rejectionOf(() => p(verify), `${what} (${verify})`);
          expect((err as { code?: string }).code, `${what} (${verify}): ${err.message}`).toBe(code);
        }
      };

      it('normalises checkout.completed with the local refs', async () => {
        const e = spec('checkout.completed', { sessionId: s.sessionId, localRefs: { userId: s.userId, planId: s.planId } });
        const event = await parsed(e);
        expectIds(event, e);
        expect(event.localRefs).toEqual(e.localRefs);
      });

      for (const [type, over] of [
        ['subscription.created', {}],
        ['subscription.updated', { status: 'past_due', cancelAtPeriodEnd: true }],
        ['subscription.deleted', { status: 'canceled' }],
      ] as const) {
        it(`normalises ${type} with the subscription state`, async () => {
          const e = spec(type, { subscription: state(over) });
          const event = await parsed(e);
          expectIds(event, e);
          expect(event.priceId).toBe(e.priceId);
          expectSubscription(event.subscription!, e.subscription!);
        });
      }

      for (const [type, attempt] of [
        ['invoice.paid', 1],
        ['invoice.payment_failed', 2],
      ] as const) {
        it(`normalises ${type} with the invoice`, async () => {
          const e = spec(type, { invoice: { id: `in_conformance_${token()}`, amountCents: 1900, currency: 'usd', attempt } });
          const event = await parsed(e);
          expectIds(event, e);
          expect(event.invoice).toMatchObject({ id: e.invoice!.id, amountCents: 1900 });
          expect(event.invoice!.currency.toLowerCase()).toBe('usd');
          if (event.invoice!.attempt !== undefined) expect(event.invoice!.attempt).toBe(attempt);
        });
      }

      it('marks events the gateway does not use as ignored', async () => {
        await parsed(spec('ignored'));
      });

      it('parses the same delivery twice to the same event id (the dedupe key)', async () => {
        const e = spec('invoice.paid', { invoice: { id: `in_conformance_${token()}`, amountCents: 1900, currency: 'usd' } });
        const signed = await sign(e);
        const a = await provider().parseWebhook(signed);
        const b = await provider().parseWebhook(signed);
        expect([a.id, b.id]).toEqual([e.id, e.id]);
      });

      it('rejects a tampered body', async () => {
        const e = spec('subscription.updated', { subscription: state() });
        const signed = await sign(e);
        const text = utf8.decode(signed.rawBody);
        // Same length and still well-formed where the id appears in the body; else one byte more.
        const forgedId = e.id.slice(0, -1) + (e.id.endsWith('0') ? '1' : '0');
        const forged = text.includes(e.id) ? text.replace(e.id, forgedId) : `${text} `;
        await expectSignatureError((verify) => provider()[verify]({ ...signed, rawBody: utf8.encode(forged) }), 'a tampered body');
        await expectSignatureError(
          (verify) => provider()[verify]({ ...signed, rawBody: utf8.encode(`${text}\n`) }),
          'a body with a byte added',
        );
      });

      it('rejects a signature made with the wrong secret', async () => {
        const signed = await sign(spec('subscription.created', { subscription: state() }), { wrongSecret: true });
        await expectSignatureError((verify) => provider()[verify](signed), 'a webhook signed with the wrong secret');
      });

      it('rejects a webhook without its signature headers', async () => {
        const signed = await sign(spec('subscription.created', { subscription: state() }));
        await expectSignatureError((verify) => provider()[verify]({ rawBody: signed.rawBody, headers: {} }), 'an unsigned webhook');
      });

      it('rejects a garbled signature header', async () => {
        const signed = await sign(spec('subscription.created', { subscription: state() }));
        const headers = Object.fromEntries(Object.keys(signed.headers).map((k) => [k, 'garbage']));
        await expectSignatureError((verify) => provider()[verify]({ rawBody: signed.rawBody, headers }), 'a garbled signature');
      });

      it(
        opts.modeCheck === 'signature'
          ? 'rejects an event of the other mode (signed with the other environment’s secret)'
          : 'rejects an event of the other mode (test vs live) with WEBHOOK_MODE_MISMATCH',
        async () => {
          const signed = await sign(spec('subscription.created', { subscription: state() }), { otherMode: true });
          await expectSignatureError(
            (verify) => provider()[verify](signed),
            'an event of the other mode',
            opts.modeCheck === 'signature' ? 'WEBHOOK_SIGNATURE_INVALID' : 'WEBHOOK_MODE_MISMATCH',
          );
        },
      );

      it('normalises a body verified earlier, without checking the signature again (the inbox replays stored bodies)', async () => {
        const e = spec('subscription.updated', { subscription: state({ cancelAtPeriodEnd: true }) });
        const signed = await sign(e, { signedAt: new Date(Date.now() - 6 * 3_600_000) });
        if (opts.signatureHasTimestamp ?? true) {
          await expectSignatureError((verify) => provider()[verify](signed), 'a webhook signed six hours ago');
        }
        const event = await provider().normalizeWebhook(signed);
        expect(event).toMatchObject({ id: e.id, type: 'subscription.updated', subscriptionId: e.subscriptionId });
        expect(event.subscription?.cancelAtPeriodEnd).toBe(true);
      });

      if (opts.createOffline) {
        it('verifies without the network: an instance whose API is unreachable still verifies and reads the envelope', async () => {
          const offline = await opts.createOffline!();
          try {
            const e = spec('checkout.completed', { sessionId: s.sessionId, localRefs: { userId: s.userId, planId: s.planId } });
            const signed = await sign(e);
            const envelope = await offline.verifyWebhook(signed);
            expect(envelope).toMatchObject({ id: e.id });
            expect(envelope.occurredAt.getTime()).toBe(e.occurredAt.getTime());
            const tampered = { ...signed, rawBody: utf8.encode(`${utf8.decode(signed.rawBody)} `) };
            await expect(offline.verifyWebhook(tampered)).rejects.toMatchObject({ code: 'WEBHOOK_SIGNATURE_INVALID' });
          } finally {
            await offline.close();
          }
        });
      }

      if (opts.signatureHasTimestamp ?? true) {
        it('accepts a signature a minute old', async () => {
          const e = spec('subscription.created', { subscription: state() });
          const event = await provider().parseWebhook(await sign(e, { signedAt: new Date(Date.now() - 60_000) }));
          expect(event.id).toBe(e.id);
          expect((await provider().verifyWebhook(await sign(e, { signedAt: new Date(Date.now() - 60_000) }))).id).toBe(e.id);
        });

        it('rejects a stale signature (replay)', async () => {
          const signed = await sign(spec('subscription.created', { subscription: state() }), {
            signedAt: new Date(Date.now() - 3_600_000),
          });
          await expectSignatureError((verify) => provider()[verify](signed), 'a webhook signed an hour ago');
        });
      }
    });

    describe('lifecycle', () => {
      lifecycleTests(provider);
    });

    opts.additionalTests?.({ provider, subscribe });
  });
}
