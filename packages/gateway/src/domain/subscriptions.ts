import { z } from '@apigate/kernel';
import { and, asc, eq, lte } from 'drizzle-orm';
import type { Tables } from '../store/dialect.js';
import { type DomainContext, type Tx, writeTx } from './context.js';
import { DomainError, notFound } from './errors.js';
import { newId } from './ids.js';
import { listPage, type Page, type PageQuery } from './paging.js';
import { parseInput } from './validate.js';

/** The payment capability's statuses (kernel `SubscriptionStatus`). */
export const SUBSCRIPTION_STATUSES = [
  'trialing',
  'active',
  'past_due',
  'paused',
  'canceled',
  'incomplete',
  'incomplete_expired',
  'unpaid',
] as const;
export type SubscriptionStatusValue = (typeof SUBSCRIPTION_STATUSES)[number];

/**
 * Which status wins between two events of the same instant with no provider sequence to tell
 * them apart: the further along the way out, the higher (a terminal status beats active).
 */
export const STATUS_PRECEDENCE: Readonly<Record<SubscriptionStatusValue, number>> = {
  trialing: 0,
  active: 0,
  incomplete: 1,
  past_due: 2,
  paused: 3,
  unpaid: 4,
  canceled: 5,
  incomplete_expired: 5,
};

/** A provider sequence: digits compare as numbers, anything else as text. */
export function compareSequence(a: string, b: string): number {
  if (/^\d+$/.test(a) && /^\d+$/.test(b)) {
    const x = BigInt(a);
    const y = BigInt(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Orders two provider facts about one subscription: by time, then by the provider's sequence
 * when both have one, then by status precedence. Never by arrival. Negative: `a` is older.
 */
export function compareEventOrder(
  a: { at: Date; seq: string | null; status: SubscriptionStatusValue },
  b: { at: Date; seq: string | null; status: SubscriptionStatusValue },
): number {
  const dt = a.at.getTime() - b.at.getTime();
  if (dt !== 0) return dt;
  if (a.seq !== null && b.seq !== null) {
    const ds = compareSequence(a.seq, b.seq);
    if (ds !== 0) return ds;
  }
  return STATUS_PRECEDENCE[a.status] - STATUS_PRECEDENCE[b.status];
}

export interface Subscription {
  id: string;
  userId: string;
  planId: string;
  /** Payment provider name: stripe, paddle, lemonsqueezy, dummy. */
  provider: string;
  externalCustomerId: string | null;
  externalSubscriptionId: string | null;
  status: SubscriptionStatusValue;
  currentPeriodEnd: Date | null;
  cancelAtPeriodEnd: boolean;
  /** Time of the provider event the row reflects. */
  lastEventAt: Date | null;
  /** That event's provider sequence, where the provider has one (same-instant tie-break). */
  lastEventSeq: string | null;
  /** Since when the subscription is past_due (null when it is not): the grace period runs from here. */
  pastDueSince: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

const fields = {
  userId: z.string({ error: 'expected a user id' }).min(1, { error: 'expected a user id' }),
  planId: z.string({ error: 'expected a plan id' }).min(1, { error: 'expected a plan id' }),
  provider: z
    .string({ error: 'expected a provider name' })
    .regex(/^[a-z0-9][a-z0-9_-]*$/, { error: 'expected a provider name such as stripe' }),
  externalCustomerId: z.string().min(1).nullable(),
  externalSubscriptionId: z.string().min(1).nullable(),
  status: z.enum(SUBSCRIPTION_STATUSES, { error: `expected one of ${SUBSCRIPTION_STATUSES.join(', ')}` }),
  currentPeriodEnd: z.coerce.date({ error: 'expected a date and time' }).nullable(),
  cancelAtPeriodEnd: z.boolean({ error: 'expected true or false' }),
  lastEventAt: z.coerce.date({ error: 'expected a date and time' }).nullable(),
  lastEventSeq: z.string().min(1).nullable(),
};
const createSchema = z
  .object({
    ...fields,
    externalCustomerId: fields.externalCustomerId.default(null),
    externalSubscriptionId: fields.externalSubscriptionId.default(null),
    currentPeriodEnd: fields.currentPeriodEnd.default(null),
    cancelAtPeriodEnd: fields.cancelAtPeriodEnd.default(false),
    lastEventAt: fields.lastEventAt.default(null),
    lastEventSeq: fields.lastEventSeq.default(null),
  })
  .strict();
const updateSchema = z.object(fields).omit({ userId: true, provider: true }).partial().strict();
const syncSchema = createSchema.extend({
  externalSubscriptionId: z.string({ error: 'expected the provider subscription id' }).min(1),
  lastEventAt: z.coerce.date({ error: 'expected the provider event time' }),
});

export type CreateSubscriptionInput = z.input<typeof createSchema>;
export type UpdateSubscriptionInput = z.input<typeof updateSchema>;
export type SyncSubscriptionInput = z.input<typeof syncSchema>;

type Row = Tables['subscriptions']['$inferSelect'];
const fromRow = (r: Row): Subscription => ({ ...r, status: r.status as SubscriptionStatusValue });

export class SubscriptionRepository {
  constructor(private readonly ctx: DomainContext) {}

  async create(input: CreateSubscriptionInput): Promise<Subscription> {
    const v = parseInput(createSchema, input, 'subscription');
    const { subscriptions } = this.ctx.t;
    return writeTx(this.ctx, async (tx) => {
      await this.assertRefs(tx, v.userId, v.planId);
      await this.assertExternalFree(tx, v.provider, v.externalSubscriptionId);
      const now = this.ctx.now();
      const pastDueSince = v.status === 'past_due' ? (v.lastEventAt ?? now) : null;
      return fromRow(
        (
          await tx
            .insert(subscriptions)
            .values({ ...v, pastDueSince, id: newId('sub'), createdAt: now, updatedAt: now })
            .returning()
        )[0]!,
      );
    });
  }

  async update(id: string, patch: UpdateSubscriptionInput): Promise<Subscription> {
    const v = parseInput(updateSchema, patch, 'subscription');
    const { subscriptions } = this.ctx.t;
    return writeTx(this.ctx, async (tx) => {
      const [current] = await tx.select().from(subscriptions).where(eq(subscriptions.id, id));
      if (!current) throw notFound('subscription', id);
      if (v.planId !== undefined) await this.assertRefs(tx, current.userId, v.planId);
      if (v.externalSubscriptionId !== undefined && v.externalSubscriptionId !== current.externalSubscriptionId) {
        await this.assertExternalFree(tx, current.provider, v.externalSubscriptionId);
      }
      const pastDue =
        v.status === undefined ? {} : { pastDueSince: v.status !== 'past_due' ? null : (current.pastDueSince ?? this.ctx.now()) };
      return fromRow(
        (
          await tx
            .update(subscriptions)
            .set({ ...v, ...pastDue, updatedAt: this.ctx.now() })
            .where(eq(subscriptions.id, id))
            .returning()
        )[0]!,
      );
    });
  }

  /**
   * Applies a provider's view of a subscription, found by (provider, external subscription id):
   * creates it, or updates it unless the stored state came from a newer event (compareEventOrder:
   * time, then provider sequence, then status precedence). `applied` is false when the event was
   * older and nothing changed (a late `updated` never wins). `pastDueSince` is kept from the event
   * that made it past_due, so later past_due events do not restart the grace period.
   */
  async sync(input: SyncSubscriptionInput): Promise<{ subscription: Subscription; applied: boolean }> {
    const v = parseInput(syncSchema, input, 'subscription');
    const { subscriptions } = this.ctx.t;
    return writeTx(this.ctx, async (tx) => {
      const [current] = await tx
        .select()
        .from(subscriptions)
        .where(and(eq(subscriptions.provider, v.provider), eq(subscriptions.externalSubscriptionId, v.externalSubscriptionId)));
      await this.assertRefs(tx, v.userId, v.planId);
      const now = this.ctx.now();
      if (!current) {
        const pastDueSince = v.status === 'past_due' ? v.lastEventAt : null;
        const [row] = await tx
          .insert(subscriptions)
          .values({ ...v, pastDueSince, id: newId('sub'), createdAt: now, updatedAt: now })
          .returning();
        return { subscription: fromRow(row!), applied: true };
      }
      if (
        current.lastEventAt &&
        compareEventOrder(
          { at: v.lastEventAt, seq: v.lastEventSeq, status: v.status },
          { at: current.lastEventAt, seq: current.lastEventSeq, status: current.status as SubscriptionStatusValue },
        ) < 0
      ) {
        return { subscription: fromRow(current), applied: false };
      }
      const { userId: _u, provider: _p, ...changes } = v;
      const pastDueSince =
        v.status !== 'past_due' ? null : current.status === 'past_due' && current.pastDueSince ? current.pastDueSince : v.lastEventAt;
      const [row] = await tx
        .update(subscriptions)
        .set({ ...changes, pastDueSince, updatedAt: now })
        .where(eq(subscriptions.id, current.id))
        .returning();
      return { subscription: fromRow(row!), applied: true };
    });
  }

  async find(id: string): Promise<Subscription | undefined> {
    const { subscriptions } = this.ctx.t;
    const [row] = await this.ctx.db.select().from(subscriptions).where(eq(subscriptions.id, id));
    return row && fromRow(row);
  }

  async get(id: string): Promise<Subscription> {
    const sub = await this.find(id);
    if (!sub) throw notFound('subscription', id);
    return sub;
  }

  async findByExternal(provider: string, externalSubscriptionId: string): Promise<Subscription | undefined> {
    const { subscriptions } = this.ctx.t;
    const [row] = await this.ctx.db
      .select()
      .from(subscriptions)
      .where(and(eq(subscriptions.provider, provider), eq(subscriptions.externalSubscriptionId, externalSubscriptionId)));
    return row && fromRow(row);
  }

  /** Oldest first, a page at a time; filtered by user, status or provider when given. */
  async list(q: PageQuery & { userId?: string; status?: string; provider?: string } = {}): Promise<Page<Subscription>> {
    if (q.status !== undefined && !(SUBSCRIPTION_STATUSES as readonly string[]).includes(q.status)) {
      throw new DomainError(
        'invalid',
        'INVALID_INPUT',
        `subscription list: status: expected one of ${SUBSCRIPTION_STATUSES.join(', ')}`,
        'status',
      );
    }
    const { subscriptions } = this.ctx.t;
    const filters = [
      q.userId !== undefined ? eq(subscriptions.userId, q.userId) : undefined,
      q.status !== undefined ? eq(subscriptions.status, q.status) : undefined,
      q.provider !== undefined ? eq(subscriptions.provider, q.provider) : undefined,
    ];
    return listPage(q, 'subscription list', subscriptions, filters, (where, order, n) =>
      this.ctx.db
        .select()
        .from(subscriptions)
        .where(where)
        .orderBy(...order)
        .limit(n)
        .then((rows) => rows.map(fromRow)),
    );
  }

  /** Oldest first. */
  async listForUser(userId: string): Promise<Subscription[]> {
    const { subscriptions } = this.ctx.t;
    return (
      await this.ctx.db
        .select()
        .from(subscriptions)
        .where(eq(subscriptions.userId, userId))
        .orderBy(asc(subscriptions.createdAt), asc(subscriptions.id))
    ).map(fromRow);
  }

  /** past_due subscriptions whose grace period started at or before `since` (oldest first). */
  async listPastDueSince(since: Date): Promise<Subscription[]> {
    const { subscriptions } = this.ctx.t;
    return (
      await this.ctx.db
        .select()
        .from(subscriptions)
        .where(and(eq(subscriptions.status, 'past_due'), lte(subscriptions.pastDueSince, since)))
        .orderBy(asc(subscriptions.pastDueSince))
    ).map(fromRow);
  }

  /** Subscriptions of one provider customer (any user): the check that a customer id is new. */
  async listForCustomer(provider: string, externalCustomerId: string): Promise<Subscription[]> {
    const { subscriptions } = this.ctx.t;
    return (
      await this.ctx.db
        .select()
        .from(subscriptions)
        .where(and(eq(subscriptions.provider, provider), eq(subscriptions.externalCustomerId, externalCustomerId)))
    ).map(fromRow);
  }

  async delete(id: string): Promise<void> {
    const { subscriptions } = this.ctx.t;
    if ((await this.ctx.db.delete(subscriptions).where(eq(subscriptions.id, id)).returning({ id: subscriptions.id })).length === 0)
      throw notFound('subscription', id);
  }

  private async assertRefs(tx: Tx, userId: string, planId: string): Promise<void> {
    const { users, plans } = this.ctx.t;
    if ((await tx.select({ id: users.id }).from(users).where(eq(users.id, userId))).length === 0) {
      throw new DomainError('invalid', 'USER_NOT_FOUND', `subscription: user_id: no user with id ${userId}`, 'user_id');
    }
    if ((await tx.select({ id: plans.id }).from(plans).where(eq(plans.id, planId))).length === 0) {
      throw new DomainError('invalid', 'PLAN_NOT_FOUND', `subscription: plan_id: no plan with id ${planId}`, 'plan_id');
    }
  }

  private async assertExternalFree(tx: Tx, provider: string, externalId: string | null): Promise<void> {
    if (externalId === null) return;
    const { subscriptions } = this.ctx.t;
    const [same] = await tx
      .select({ id: subscriptions.id })
      .from(subscriptions)
      .where(and(eq(subscriptions.provider, provider), eq(subscriptions.externalSubscriptionId, externalId)));
    if (same) {
      throw new DomainError(
        'conflict',
        'SUBSCRIPTION_EXISTS',
        `subscription: external_subscription_id: ${provider} subscription ${externalId} is already subscription ${same.id}`,
        'external_subscription_id',
      );
    }
  }
}
