import {
  describeError,
  type Job,
  type Logger,
  NonRetryableJobError,
  type PaymentEvent,
  type QueueProvider,
  type SubscriptionStatus,
  type Worker,
} from '@apigate/kernel';
import type { Subscription } from '../domain/subscriptions.js';
import type { WebhookDispatcher } from '../gate/webhooks.js';
import type { Store } from '../store/store.js';
import { fromJob, PAYMENT_QUEUE, PaymentEventLog, type PaymentEventStatus, type PaymentJob } from './events.js';

/** Mapping entity types shared with checkout and `apigate plans sync`. */
export const MAPPING = { user: 'user', plan: 'plan' } as const;

export interface PaymentProcessorOptions {
  store: Store;
  logger: Logger;
  /** Outbound `subscription.*` / `payment.*` webhooks; absent: none are sent. */
  webhooks?: Pick<WebhookDispatcher, 'emit'> | undefined;
}

const ENTITLED: ReadonlySet<SubscriptionStatus> = new Set(['active', 'trialing']);

/**
 * Applies normalised payment events to subscriptions and users. Order comes from the event
 * time, not arrival: the subscription row keeps the time of the event it reflects and an older
 * event changes nothing (SubscriptionRepository.sync), so a late `updated` never wins.
 */
export class PaymentProcessor {
  readonly #log: PaymentEventLog;

  constructor(private readonly o: PaymentProcessorOptions) {
    this.#log = new PaymentEventLog(o.store.db);
  }

  /** Applies one event and records the outcome in `payment_events`. */
  async apply(provider: string, e: PaymentEvent): Promise<PaymentEventStatus> {
    let status: PaymentEventStatus;
    try {
      status = await this.#apply(provider, e);
    } catch (err) {
      if (err instanceof NonRetryableJobError) this.#log.setStatus(provider, e.id, 'failed');
      throw err;
    }
    this.#log.setStatus(provider, e.id, status);
    return status;
  }

  async #apply(provider: string, e: PaymentEvent): Promise<PaymentEventStatus> {
    const { domain } = this.o.store;
    if (e.type === 'ignored') return 'skipped';
    const externalSubscriptionId = e.subscription?.subscriptionId ?? e.subscriptionId;
    if (!externalSubscriptionId) return 'skipped';
    const existing = await domain.subscriptions.findByExternal(provider, externalSubscriptionId);
    const customerId = e.subscription?.customerId ?? e.customerId ?? existing?.externalCustomerId ?? undefined;
    const userId = (await this.#user(provider, customerId, e.localRefs?.userId)) ?? existing?.userId;
    const priceId = e.subscription?.priceId ?? e.priceId;
    const planId = (await this.#plan(provider, priceId, e.localRefs?.planId)) ?? existing?.planId;
    if (!userId || !planId) {
      // Retrying cannot help: the mapping is missing, not late. The event stays in payment_events as failed.
      throw new NonRetryableJobError(
        `payment event ${provider}:${e.id} (${e.type}): no local ${userId ? 'plan for price' : 'user for customer'} ${userId ? priceId : customerId}; create the mapping (apigate plans sync, checkout)`,
      );
    }

    const state = e.subscription;
    const status: SubscriptionStatus =
      e.type === 'subscription.deleted' ? 'canceled' : e.type === 'invoice.payment_failed' ? 'past_due' : (state?.status ?? existing?.status ?? 'active');
    const { subscription, applied } = await domain.subscriptions.sync({
      userId,
      planId,
      provider,
      externalCustomerId: customerId ?? null,
      externalSubscriptionId,
      status,
      currentPeriodEnd: state?.currentPeriodEnd ?? existing?.currentPeriodEnd ?? null,
      cancelAtPeriodEnd: state?.cancelAtPeriodEnd ?? existing?.cancelAtPeriodEnd ?? false,
      lastEventAt: e.occurredAt,
    });
    if (!applied) {
      this.o.logger.info({ provider, eventId: e.id, type: e.type }, 'payment event older than the stored subscription state: ignored');
      return 'skipped';
    }

    // The user's plan follows the subscription: entitled statuses grant it, the end of it returns to the default plan.
    if (e.type === 'subscription.deleted') {
      const fallback = await domain.plans.getDefault();
      if (fallback) await domain.users.update(userId, { planId: fallback.id });
    } else if (ENTITLED.has(status) && e.type !== 'invoice.payment_failed') {
      await domain.users.update(userId, { planId });
    }
    await this.#emit(provider, e, subscription, existing === undefined);
    return 'applied';
  }

  async #user(provider: string, customerId: string | undefined, refUserId: string | undefined): Promise<string | undefined> {
    const { domain, mappings } = this.o.store;
    if (customerId) {
      const m = await mappings.findLocal(provider, MAPPING.user, customerId);
      if (m) return m.localId;
    }
    if (refUserId && (await domain.users.find(refUserId))) {
      // Remember the pairing so later events without metadata (renewals, portal changes) find the user.
      if (customerId) {
        await mappings.put({ provider, entityType: MAPPING.user, localId: refUserId, externalId: customerId }).catch((err: unknown) => {
          this.o.logger.warn({ provider, customerId }, `payment: cannot map user ${refUserId} to customer: ${describeError(err)}`);
        });
      }
      return refUserId;
    }
    return undefined;
  }

  // The price decides the plan (a plan change in the provider's portal changes the price, not the checkout's metadata).
  async #plan(provider: string, priceId: string | undefined, refPlanId: string | undefined): Promise<string | undefined> {
    const { domain, mappings } = this.o.store;
    if (priceId) {
      const m = await mappings.findLocal(provider, MAPPING.plan, priceId);
      if (m) return m.localId;
    }
    if (refPlanId && (await domain.plans.find(refPlanId))) return refPlanId;
    return undefined;
  }

  async #emit(provider: string, e: PaymentEvent, s: Subscription, created: boolean): Promise<void> {
    if (!this.o.webhooks) return;
    const type =
      e.type === 'invoice.paid'
        ? 'payment.succeeded'
        : e.type === 'invoice.payment_failed'
          ? 'payment.failed'
          : e.type === 'subscription.deleted'
            ? 'subscription.deleted'
            : created
              ? 'subscription.created'
              : 'subscription.updated';
    const data: Record<string, unknown> = {
      subscription_id: s.id,
      user_id: s.userId,
      plan_id: s.planId,
      status: s.status,
      provider,
      external_subscription_id: s.externalSubscriptionId,
      current_period_end: s.currentPeriodEnd?.toISOString() ?? null,
      cancel_at_period_end: s.cancelAtPeriodEnd,
      ...(e.invoice ? { invoice: { id: e.invoice.id, amount_cents: e.invoice.amountCents, currency: e.invoice.currency, attempt: e.invoice.attempt ?? null } } : {}),
    };
    // The provider's event id makes the outbound event idempotent: a retried job sends nothing new.
    await this.o.webhooks.emit(type, data, { id: `${provider}:${e.id}`, at: e.occurredAt });
  }
}

/** Processes `payment.events` jobs one at a time (the queue retries a job whose handler throws). */
export function startPaymentWorker(queue: Pick<QueueProvider, 'process'>, o: PaymentProcessorOptions): Worker {
  const processor = new PaymentProcessor(o);
  return queue.process<PaymentJob>(
    PAYMENT_QUEUE,
    async (job: Job<PaymentJob>) => {
      const event = fromJob(job.payload);
      try {
        await processor.apply(job.payload.provider, event);
      } catch (err) {
        o.logger.warn({ provider: job.payload.provider, eventId: event.id, attempt: job.attempt }, `payment event not applied: ${describeError(err)}`);
        throw err;
      }
    },
    { concurrency: 1 },
  );
}
