import type { SubscriptionState } from '@apigate/kernel';

/** Statuses of a subscription that is still running at the provider (it can be changed or cancelled). */
export const LIVE_STATUSES: ReadonlySet<string> = new Set(['trialing', 'active', 'past_due', 'paused', 'unpaid', 'incomplete']);

/**
 * Applies a provider's view of a subscription through the same access rules as webhook events
 * (the payment processor's state apply), so a read from the provider API is as good as an event.
 */
export interface SubscriptionStateApplier {
  applyState(provider: string, state: SubscriptionState, o: { at: Date }): Promise<unknown>;
}
