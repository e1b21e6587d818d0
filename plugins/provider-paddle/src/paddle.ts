import {
  assertCheckoutInput,
  assertUpsertPriceInput,
  type CheckoutInput,
  emailAddressOf,
  type Health,
  InvalidInputError,
  type Invoice,
  type PaymentEvent,
  type PaymentProvider,
  ProviderError,
  type SubscriptionState,
  toProviderError,
  type UpsertPriceInput,
  type VerifiedWebhook,
  type WebhookInput,
} from '@apigate/kernel';
import {
  ApiError,
  type CurrencyCode,
  type Environment,
  LogLevel,
  Paddle,
  type Price,
  type Subscription,
  type TaxCategory,
} from '@paddle/paddle-node-sdk';
import { BILLED_STATUSES, invoiceOf } from './invoices.js';
import { CUSTOM, normalise, parseNotification, readEnvelope, SIGNATURE_HEADER, toSubscriptionState, verifySignature } from './webhook.js';

export const BASE_URLS = { production: 'https://api.paddle.com', sandbox: 'https://sandbox-api.paddle.com' } as const;

export interface PaddleConfig {
  apiKey: string;
  webhookSecret: string;
  vendorId?: string | undefined;
  environment: 'production' | 'sandbox';
  /** Resolved: the environment's API host unless PADDLE_BASE_URL overrides it. */
  baseUrl: string;
  checkoutUrl?: string | undefined;
  taxCategory: TaxCategory;
  timeoutMs: number;
  webhookToleranceSeconds: number;
}

/** Codes Paddle answers when the key itself is the problem. */
const AUTH_CODES = new Set(['invalid_token', 'authentication_missing', 'authentication_malformed', 'forbidden']);
/** Subscription statuses that still bill or can bill again. */
const LIVE_STATUSES = ['active', 'trialing', 'past_due', 'paused'] as const;
const PAGE_SIZE = 100;
/** Paddle lists at most 30 transactions a page. */
const TRANSACTIONS_PAGE_SIZE = 30;

/** Paddle's error envelope, as the SDK's ApiError carries it and as `check` reads it from the body. */
interface PaddleErrorDetail {
  type?: string;
  code?: string;
  detail?: string;
  errors?: { field?: string; message?: string }[] | null;
}

/**
 * Payments through Paddle Billing (API v1) with the official SDK. Paddle keeps customers,
 * products/prices, transactions (our checkout sessions) and subscriptions; webhooks are
 * verified here and parsed with the SDK's event classes.
 */
export class PaddlePayment implements PaymentProvider {
  private readonly paddle: Paddle;
  private readonly host: string;

  constructor(private readonly cfg: PaddleConfig) {
    this.host = new URL(cfg.baseUrl).host;
    // Paddle's own hosts go through the SDK's documented environment names. Only an overridden
    // host (PADDLE_BASE_URL: a proxy, or the tests' local fake) relies on the SDK using any other
    // `environment` value as the base URL (Client.getBaseUrl in 3.x).
    const ownHost = cfg.baseUrl === BASE_URLS[cfg.environment];
    const environment = (ownHost ? cfg.environment : cfg.baseUrl) as Environment;
    this.paddle = new Paddle(cfg.apiKey, { environment, logLevel: LogLevel.none });
  }

  // -- customers ----------------------------------------------------------------------------

  /** A customer per user, tagged with the user id. An email Paddle already has returns that customer (made active again if archived). */
  async createCustomer(i: { userId: string; email: string; name?: string }): Promise<{ customerId: string }> {
    if (typeof i?.userId !== 'string' || !i.userId.trim())
      throw new InvalidInputError('payment/paddle createCustomer userId: a non-empty string is required');
    if (emailAddressOf(i.email) !== i.email?.trim())
      throw new InvalidInputError('payment/paddle createCustomer email: an email address is required');
    try {
      const c = await this.call('createCustomer', () =>
        this.paddle.customers.create({
          email: i.email.trim(),
          ...(i.name ? { name: i.name } : {}),
          customData: { [CUSTOM.userId]: i.userId },
        }),
      );
      return { customerId: c.id };
    } catch (err) {
      // Paddle keeps one customer per email: after a crash between create and saving the id, find it again.
      if ((err as ProviderError).code !== 'customer_already_exists') throw err;
      const [existing] = await this.call('createCustomer', () =>
        this.paddle.customers.list({ email: [i.email.trim()], perPage: 1 }).next(),
      );
      if (!existing) throw err;
      // A customer archived by deleteCustomer comes back to life rather than blocking the email for good.
      if (existing.status === 'archived')
        await this.call('createCustomer', () => this.paddle.customers.update(existing.id, { status: 'active' }));
      return { customerId: existing.id };
    }
  }

  /**
   * Paddle cannot delete customers: the closest it has is archiving. Subscriptions that still bill
   * are canceled first (at once), as deleting a customer does elsewhere. An unknown id is done.
   */
  async deleteCustomer(customerId: string): Promise<void> {
    const live = this.paddle.subscriptions.list({ customerId: [customerId], status: [...LIVE_STATUSES], perPage: PAGE_SIZE });
    while (live.hasMore) {
      for (const s of await this.call('deleteCustomer', () => live.next())) {
        await this.call('deleteCustomer', () => this.paddle.subscriptions.cancel(s.id, { effectiveFrom: 'immediately' }));
      }
    }
    try {
      await this.call('deleteCustomer', () => this.paddle.customers.archive(customerId));
    } catch (err) {
      if ((err as ProviderError).code !== 'not_found') throw err;
    }
  }

  // -- catalogue ------------------------------------------------------------------------------

  /**
   * A product per plan with a monthly or yearly price. A rename keeps the price id; a new amount,
   * currency or interval makes a new price on the same product and archives the old one, so
   * existing subscribers keep what they pay until the gateway moves them.
   */
  async upsertPrice(i: UpsertPriceInput): Promise<{ priceId: string; productId: string }> {
    assertUpsertPriceInput(i, 'payment/paddle upsertPrice');
    if (i.metered) {
      throw new InvalidInputError(
        'payment/paddle upsertPrice metered: Paddle Billing has no metered prices (features.meteredBilling is false)',
      );
    }
    const currency = i.currency.toUpperCase() as CurrencyCode;
    const billing = {
      unitPrice: { amount: String(i.amountCents), currencyCode: currency },
      billingCycle: { interval: i.interval, frequency: 1 },
    };
    const text = { name: i.name, description: `${i.name} (${i.interval}ly)` };

    if (i.existingPriceId) {
      const id = i.existingPriceId;
      const old = await this.call('upsertPrice', () => this.paddle.prices.get(id, { include: ['product'] }));
      if (old.product && old.product.name !== i.name) {
        await this.call('upsertPrice', () => this.paddle.products.update(old.productId, { name: i.name }));
      }
      if (samePricing(old, billing)) {
        if (old.name !== i.name) await this.call('upsertPrice', () => this.paddle.prices.update(id, text));
        return { priceId: old.id, productId: old.productId };
      }
      const next = await this.createPrice(old.productId, i.planId, text, billing);
      await this.call('upsertPrice', () => this.paddle.prices.update(id, { status: 'archived' }));
      return { priceId: next.id, productId: old.productId };
    }
    const product = await this.call('upsertPrice', () =>
      this.paddle.products.create({ name: i.name, taxCategory: this.cfg.taxCategory, customData: { [CUSTOM.planId]: i.planId } }),
    );
    const price = await this.createPrice(product.id, i.planId, text, billing);
    return { priceId: price.id, productId: product.id };
  }

  private createPrice(
    productId: string,
    planId: string,
    text: { name: string; description: string },
    billing: { unitPrice: { amount: string; currencyCode: CurrencyCode }; billingCycle: { interval: 'month' | 'year'; frequency: number } },
  ): Promise<Price> {
    return this.call('upsertPrice', () =>
      this.paddle.prices.create({ productId, ...text, ...billing, taxMode: 'account_setting', customData: { [CUSTOM.planId]: planId } }),
    );
  }

  /** Idempotent: archiving an archived price changes nothing. Subscriptions on it keep it. */
  async archivePrice(priceId: string): Promise<void> {
    await this.call('archivePrice', () => this.paddle.prices.update(priceId, { status: 'archived' }));
  }

  // -- checkout and portal ----------------------------------------------------------------------

  /**
   * A checkout is a Paddle transaction for the price, opened by Paddle.js on the checkout page
   * (PADDLE_CHECKOUT_URL, else the account's default payment link). Paddle keeps trials on
   * prices, so a checkout with trial days sells a non-catalog copy of the price with that trial,
   * tagged with the catalog price id that subscriptions then report.
   */
  async createCheckout(i: CheckoutInput): Promise<{ url: string; sessionId: string }> {
    assertCheckoutInput(i, 'payment/paddle createCheckout');
    let item: { priceId: string; quantity: number } | { price: never; quantity: number } = { priceId: i.priceId, quantity: 1 };
    if (i.trialDays) {
      const base = await this.call('createCheckout', () => this.paddle.prices.get(i.priceId));
      if (base.status === 'archived') throw new InvalidInputError(`payment/paddle createCheckout: price "${i.priceId}" is archived`);
      item = {
        quantity: 1,
        price: {
          productId: base.productId,
          name: base.name,
          description: base.description,
          unitPrice: base.unitPrice,
          billingCycle: base.billingCycle,
          trialPeriod: { interval: 'day', frequency: i.trialDays },
          taxMode: base.taxMode,
          customData: { [CUSTOM.basePriceId]: base.id },
        } as never,
      };
    }
    const txn = await this.call('createCheckout', () =>
      this.paddle.transactions.create({
        items: [item],
        customerId: i.customerId,
        customData: { [CUSTOM.userId]: i.userId, [CUSTOM.planId]: i.planId },
        ...(this.cfg.checkoutUrl ? { checkout: { url: this.cfg.checkoutUrl } } : {}),
      }),
    );
    const url = txn.checkout?.url;
    if (!url)
      throw this.error(
        'createCheckout',
        `Paddle made transaction ${txn.id} without a checkout URL: set PADDLE_CHECKOUT_URL or a default payment link in Paddle`,
        false,
      );
    return { url, sessionId: txn.id };
  }

  /** Paddle's customer portal; it has no return URL (the portal links back to nothing), so `returnUrl` is not sent. */
  async createPortalSession(i: { customerId: string; returnUrl: string }): Promise<{ url: string }> {
    const session = await this.call('createPortalSession', () => this.paddle.customerPortalSessions.create(i.customerId, []));
    return { url: session.urls.general.overview };
  }

  // -- subscriptions --------------------------------------------------------------------------

  async getSubscription(subscriptionId: string): Promise<SubscriptionState> {
    return toSubscriptionState(await this.call('getSubscription', () => this.paddle.subscriptions.get(subscriptionId)));
  }

  /** Pages through Paddle's list; Paddle cannot filter by update time, so `updatedSince` is applied here. */
  async *listSubscriptions(i: { customerId?: string; updatedSince?: Date }): AsyncIterable<SubscriptionState> {
    const pages = this.paddle.subscriptions.list({ ...(i.customerId ? { customerId: [i.customerId] } : {}), perPage: PAGE_SIZE });
    while (pages.hasMore) {
      for (const s of await this.call('listSubscriptions', () => pages.next())) {
        if (!i.updatedSince || new Date(s.updatedAt).getTime() >= i.updatedSince.getTime()) yield toSubscriptionState(s);
      }
    }
  }

  /**
   * The customer's billed transactions (Paddle's invoices and receipts), newest first: one page of
   * GET /transactions filtered by customer_id and the billed statuses, newest created first, paged (30 at most a page).
   */
  async listInvoices(i: { customerId: string; limit?: number }): Promise<Invoice[]> {
    if (typeof i.customerId !== 'string' || i.customerId.trim() === '')
      throw new InvalidInputError('payment/paddle listInvoices customerId: a non-empty string is required');
    const limit = i.limit ?? 12;
    if (!Number.isInteger(limit) || limit < 1 || limit > PAGE_SIZE)
      throw new InvalidInputError(`payment/paddle listInvoices limit: a whole number from 1 to ${PAGE_SIZE} is required`);
    const pages = this.paddle.transactions.list({
      customerId: [i.customerId],
      status: BILLED_STATUSES,
      orderBy: 'created_at[DESC]',
      perPage: Math.min(limit, TRANSACTIONS_PAGE_SIZE),
    });
    const out: Invoice[] = [];
    while (out.length < limit && pages.hasMore) {
      for (const t of await this.call('listInvoices', () => pages.next())) {
        const inv = invoiceOf(t);
        if (inv && out.length < limit) out.push(inv);
      }
    }
    return out;
  }

  /** Swaps the item for the new price, prorated and billed now, as a plan change in the portal would. */
  async changeSubscription(i: { subscriptionId: string; priceId: string }): Promise<SubscriptionState> {
    const s = await this.call('changeSubscription', () =>
      this.paddle.subscriptions.update(i.subscriptionId, {
        items: [{ priceId: i.priceId, quantity: 1 }],
        prorationBillingMode: 'prorated_immediately',
      }),
    );
    return toSubscriptionState(s);
  }

  async cancelSubscription(i: { subscriptionId: string; atPeriodEnd: boolean }): Promise<SubscriptionState> {
    const s: Subscription = await this.call('cancelSubscription', () =>
      this.paddle.subscriptions.cancel(i.subscriptionId, { effectiveFrom: i.atPeriodEnd ? 'next_billing_period' : 'immediately' }),
    );
    return toSubscriptionState(s);
  }

  /** Paddle Billing has no usage records with idempotency keys: refused, and features.meteredBilling is false. */
  async reportUsage(): Promise<void> {
    throw this.error(
      'reportUsage',
      'Paddle Billing has no metered usage records (features.meteredBilling is false); bill usage outside Paddle',
      false,
      'NOT_SUPPORTED',
    );
  }

  // -- webhooks -------------------------------------------------------------------------------

  /**
   * Checks `Paddle-Signature` (and its age) and reads the envelope; no network call. Paddle's
   * notifications say nothing of their environment, but sandbox and production are separate
   * accounts whose notification destinations have separate secret keys, so an event of the other
   * environment fails the signature check: the mode check is the signature itself.
   */
  async verifyWebhook(i: WebhookInput): Promise<VerifiedWebhook> {
    verifySignature(i.rawBody, i.headers[SIGNATURE_HEADER], this.cfg.webhookSecret, this.cfg.webhookToleranceSeconds);
    return readEnvelope(i.rawBody);
  }

  /** Normalises a verified body with the SDK's event classes (no signature or age check; no network call). */
  async normalizeWebhook(i: WebhookInput): Promise<PaymentEvent> {
    const { event, json } = parseNotification(i.rawBody);
    return normalise(event, json);
  }

  async parseWebhook(i: WebhookInput): Promise<PaymentEvent> {
    await this.verifyWebhook(i);
    return this.normalizeWebhook(i);
  }

  // -- health and lifecycle -------------------------------------------------------------------

  /**
   * `GET /customers?per_page=1`: authenticated, reads one row, changes nothing. Made with fetch
   * rather than the SDK so the kernel's signal can abort it.
   */
  async check(signal: AbortSignal): Promise<Health> {
    const where = `${this.cfg.environment} ${this.host}${this.cfg.vendorId ? `, seller ${this.cfg.vendorId}` : ''}`;
    try {
      const res = await fetch(`${this.cfg.baseUrl}/customers?per_page=1`, {
        headers: { authorization: `Bearer ${this.cfg.apiKey}` },
        signal,
      });
      const body = (await res.json().catch(() => undefined)) as { error?: PaddleErrorDetail } | undefined;
      if (res.ok) return { status: 'connected', detail: where };
      const message = body?.error ? this.describe(body.error) : `Paddle answered ${res.status} without an error body`;
      return {
        status: 'error',
        detail: where,
        error: this.fail(Object.assign(new Error(message), { status: res.status }), 'check').message,
      };
    } catch (err) {
      return { status: 'error', detail: where, error: this.fail(err, 'check').message };
    }
  }

  /** The SDK keeps nothing open of its own (it uses the global fetch); the kernel refuses later calls. */
  async close(): Promise<void> {}

  // -- errors ---------------------------------------------------------------------------------

  /** Runs one SDK call with the configured timeout, turning whatever it throws into a ProviderError. */
  private async call<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    // The SDK takes no signal: the request is left to finish, but the caller is answered in time.
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            Object.assign(new Error(`no answer from Paddle at ${this.host} within ${this.cfg.timeoutMs} ms`), {
              code: 'ETIMEDOUT',
              retryable: true,
            }),
          ),
        this.cfg.timeoutMs,
      );
    });
    try {
      return await Promise.race([fn(), timeout]);
    } catch (err) {
      throw this.fail(err, operation);
    } finally {
      clearTimeout(timer);
    }
  }

  private describe(e: PaddleErrorDetail): string {
    const fields = (e.errors ?? []).map((f) => `${f.field ?? '?'}: ${f.message ?? 'invalid'}`);
    let text = `Paddle ${e.code ?? e.type ?? 'error'}: ${e.detail ?? 'no detail'}`;
    if (fields.length) text += ` (${fields.join('; ')})`;
    if (e.code && AUTH_CODES.has(e.code)) {
      text += `; check PADDLE_API_KEY, its permissions, and that it is a ${this.cfg.environment} key`;
    }
    return text;
  }

  /**
   * Paddle's answers carry a type and a code but the SDK drops the HTTP status: `api_error`
   * (Paddle's 5xx) and `too_many_requests` are retryable, every other `request_error` is final.
   * No answer at all is retryable; so is a body that is not JSON (a proxy's error page).
   */
  private fail(err: unknown, operation: string): ProviderError {
    let facts: { message: string; retryable?: boolean; code?: string; status?: number };
    if (err instanceof ApiError) {
      const retryable = err.type === 'api_error' || err.code === 'too_many_requests';
      const wait = err.retryAfter ? `; retry after ${err.retryAfter} s` : '';
      facts = { message: this.describe(err) + wait, retryable, code: err.code };
    } else if (err instanceof SyntaxError) {
      facts = { message: `Paddle at ${this.host} answered with something that is not JSON (an outage or proxy page?)`, retryable: true };
    } else if (err instanceof TypeError && err.message === 'fetch failed') {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      facts = {
        message: `could not reach Paddle at ${this.host}: ${cause?.code ?? cause?.message ?? err.message}`,
        retryable: true,
        ...(cause?.code ? { code: cause.code } : {}),
      };
    } else if (err instanceof ProviderError) {
      return err;
    } else {
      const e = err as { message?: string; code?: unknown; retryable?: unknown; status?: number; name?: string };
      facts = {
        message: e?.message ?? String(err),
        ...(typeof e?.retryable === 'boolean'
          ? { retryable: e.retryable }
          : e?.name === 'AbortError' || e?.name === 'TimeoutError'
            ? { retryable: true }
            : {}),
        ...(typeof e?.code === 'string' ? { code: e.code } : {}),
        ...(typeof e?.status === 'number' ? { status: e.status } : {}),
      };
    }
    const { message, ...rest } = facts;
    return toProviderError(Object.assign(new Error(message), rest), { capability: 'payment', provider: 'paddle' }, operation);
  }

  private error(operation: string, message: string, retryable: boolean, code?: string): ProviderError {
    return new ProviderError({ capability: 'payment', provider: 'paddle', operation, retryable, message, ...(code ? { code } : {}) });
  }
}

function samePricing(
  p: Price,
  want: { unitPrice: { amount: string; currencyCode: string }; billingCycle: { interval: string; frequency: number } },
): boolean {
  return (
    p.unitPrice.amount === want.unitPrice.amount &&
    p.unitPrice.currencyCode === want.unitPrice.currencyCode &&
    p.billingCycle?.interval === want.billingCycle.interval &&
    p.billingCycle?.frequency === want.billingCycle.frequency
  );
}
