import { z } from '@apigate/kernel';
import { and, asc, count, eq, ne, sql } from 'drizzle-orm';
import type { Tables } from '../store/dialect.js';
import { type DomainContext, type Tx, writeTx } from './context.js';
import { DomainError, notFound } from './errors.js';
import { newId } from './ids.js';
import { parseInput } from './validate.js';

export interface Plan {
  id: string;
  name: string;
  /** null: no per-minute limit. */
  requestsPerMinute: number | null;
  /** null: no monthly quota. */
  requestsPerMonth: number | null;
  /** Monthly price in the currency's smallest unit. */
  priceCents: number;
  /** Yearly price in the currency's smallest unit; null: sold monthly only. */
  yearlyPriceCents: number | null;
  /** ISO 4217, lower case (`usd`). */
  currency: string;
  trialDays: number;
  /** Price of each request over the monthly quota, in cents (fractions allowed, down to a millionth); null: no overage, requests stop at the quota. */
  overageCentsPerRequest: number | null;
  /** The plan new users get. Exactly one plan is the default once any exists. */
  isDefault: boolean;
  createdAt: Date;
  updatedAt: Date;
}

const MICRO = 1_000_000;
const limit = (what: string) =>
  z
    .number({ error: `expected a whole number of ${what} or null for unlimited` })
    .int({ error: `expected a whole number of ${what}` })
    .positive({ error: 'must be at least 1; for no limit use null ("unlimited" on the command line)' })
    .max(1e12)
    .nullable();

const planFields = {
  name: z.string({ error: 'expected a name' }).trim().min(1, { error: 'must not be empty' }).max(100, { error: 'at most 100 characters' }),
  requestsPerMinute: limit('requests per minute'),
  requestsPerMonth: limit('requests per month'),
  priceCents: z
    .number({ error: 'expected a whole number of cents' })
    .int({ error: 'expected a whole number of cents' })
    .min(0, { error: 'must not be negative' })
    .max(1e10),
  yearlyPriceCents: z
    .number({ error: 'expected a whole number of cents or null for no yearly price' })
    .int({ error: 'expected a whole number of cents' })
    .positive({ error: 'must be at least 1; for no yearly price use null ("none" on the command line)' })
    .max(1e11)
    .nullable(),
  currency: z
    .string({ error: 'expected a 3-letter ISO 4217 code such as usd' })
    .trim()
    .toLowerCase()
    .regex(/^[a-z]{3}$/, { error: 'expected a 3-letter ISO 4217 code such as usd' }),
  trialDays: z
    .number({ error: 'expected a whole number of days' })
    .int({ error: 'expected a whole number of days' })
    .min(0, { error: 'must not be negative' })
    .max(730),
  overageCentsPerRequest: z
    .number({ error: 'expected cents per request (e.g. 0.05) or null for no overage' })
    .min(0, { error: 'must not be negative' })
    .max(1e6)
    .refine((v) => Math.abs(v * MICRO - Math.round(v * MICRO)) < 1e-6, { error: 'at most 6 decimal places' })
    .nullable(),
  isDefault: z.boolean({ error: 'expected true or false' }),
};

const createSchema = z
  .object({
    ...planFields,
    requestsPerMinute: planFields.requestsPerMinute.default(null),
    requestsPerMonth: planFields.requestsPerMonth.default(null),
    priceCents: planFields.priceCents.default(0),
    yearlyPriceCents: planFields.yearlyPriceCents.default(null),
    currency: planFields.currency.default('usd'),
    trialDays: planFields.trialDays.default(0),
    overageCentsPerRequest: planFields.overageCentsPerRequest.default(null),
    isDefault: planFields.isDefault.default(false),
  })
  .strict();
const updateSchema = z.object(planFields).partial().strict();

export type CreatePlanInput = z.input<typeof createSchema>;
export type UpdatePlanInput = z.input<typeof updateSchema>;

type Row = Tables['plans']['$inferSelect'];

function fromRow(r: Row): Plan {
  const { overagePriceMicrocents, ...rest } = r;
  return { ...rest, overageCentsPerRequest: overagePriceMicrocents === null ? null : overagePriceMicrocents / MICRO };
}

const toMicro = (cents: number | null | undefined) => (cents === undefined ? undefined : cents === null ? null : Math.round(cents * MICRO));

/** What a request over the quota costs: `overageCentsPerRequest * requests`, in whole cents rounded up. */
export function overageCents(plan: Pick<Plan, 'overageCentsPerRequest'>, requests: number): number {
  if (plan.overageCentsPerRequest === null || requests <= 0) return 0;
  return Math.ceil((Math.round(plan.overageCentsPerRequest * MICRO) * requests) / MICRO);
}

export class PlanRepository {
  constructor(private readonly ctx: DomainContext) {}

  async create(input: CreatePlanInput): Promise<Plan> {
    const v = parseInput(createSchema, input, 'plan');
    const { plans } = this.ctx.t;
    return writeTx(this.ctx, async (tx, touch) => {
      await this.assertNameFree(tx, v.name);
      const [hasDefault] = await tx.select({ id: plans.id }).from(plans).where(eq(plans.isDefault, true));
      // The first plan is the default: users always have a plan to fall back on.
      const isDefault = v.isDefault || !hasDefault;
      if (isDefault && hasDefault)
        await tx.update(plans).set({ isDefault: false, updatedAt: this.ctx.now() }).where(eq(plans.isDefault, true));
      const now = this.ctx.now();
      const { overageCentsPerRequest, ...fields } = v;
      const [row] = await tx
        .insert(plans)
        .values({
          ...fields,
          overagePriceMicrocents: toMicro(overageCentsPerRequest) ?? null,
          isDefault,
          id: newId('plan'),
          createdAt: now,
          updatedAt: now,
        })
        .returning();
      await touch('plans', 'created', row!.id);
      return fromRow(row!);
    });
  }

  async list(): Promise<Plan[]> {
    const { plans } = this.ctx.t;
    return (await this.ctx.db.select().from(plans).orderBy(asc(plans.createdAt), asc(plans.id))).map(fromRow);
  }

  async find(id: string): Promise<Plan | undefined> {
    const { plans } = this.ctx.t;
    const [row] = await this.ctx.db.select().from(plans).where(eq(plans.id, id));
    return row && fromRow(row);
  }

  async get(id: string): Promise<Plan> {
    const plan = await this.find(id);
    if (!plan) throw notFound('plan', id);
    return plan;
  }

  /** By id, else by name (case-insensitive): what the CLI's `--plan` takes. */
  async resolve(idOrName: string): Promise<Plan> {
    const { plans } = this.ctx.t;
    const row =
      (await this.ctx.db.select().from(plans).where(eq(plans.id, idOrName)))[0] ??
      (await this.ctx.db.select().from(plans).where(sql`lower(${plans.name}) = lower(${idOrName})`))[0];
    if (!row) throw new DomainError('not_found', 'NOT_FOUND', `no plan with id or name "${idOrName}"`);
    return fromRow(row);
  }

  async getDefault(): Promise<Plan | undefined> {
    const { plans } = this.ctx.t;
    const [row] = await this.ctx.db.select().from(plans).where(eq(plans.isDefault, true));
    return row && fromRow(row);
  }

  async update(id: string, patch: UpdatePlanInput): Promise<Plan> {
    const v = parseInput(updateSchema, patch, 'plan');
    if (v.isDefault === false) {
      throw new DomainError(
        'invalid',
        'INVALID_INPUT',
        'plan: is_default: make another plan the default instead (exactly one plan is the default)',
        'is_default',
      );
    }
    const { plans } = this.ctx.t;
    return writeTx(this.ctx, async (tx, touch) => {
      const [current] = await tx.select().from(plans).where(eq(plans.id, id));
      if (!current) throw notFound('plan', id);
      if (v.name !== undefined && v.name !== current.name) await this.assertNameFree(tx, v.name, id);
      const now = this.ctx.now();
      if (v.isDefault && !current.isDefault)
        await tx.update(plans).set({ isDefault: false, updatedAt: now }).where(eq(plans.isDefault, true));
      const { overageCentsPerRequest, ...fields } = v;
      const micro = toMicro(overageCentsPerRequest);
      const [row] = await tx
        .update(plans)
        .set({ ...fields, ...(micro !== undefined ? { overagePriceMicrocents: micro } : {}), updatedAt: now })
        .where(eq(plans.id, id))
        .returning();
      await touch('plans', 'updated', id);
      return fromRow(row!);
    });
  }

  async setDefault(id: string): Promise<Plan> {
    return this.update(id, { isDefault: true });
  }

  /** Refused while users or subscriptions use the plan, or while it is the default and other plans exist. */
  async delete(id: string): Promise<void> {
    const { plans, users, subscriptions } = this.ctx.t;
    await writeTx(this.ctx, async (tx, touch) => {
      const [current] = await tx.select().from(plans).where(eq(plans.id, id));
      if (!current) throw notFound('plan', id);
      const userCount = (await tx.select({ n: count() }).from(users).where(eq(users.planId, id)))[0]!.n;
      if (userCount > 0) {
        throw new DomainError(
          'conflict',
          'PLAN_IN_USE',
          `plan ${current.name} (${id}) is the plan of ${userCount} user(s); move them to another plan first`,
        );
      }
      const subCount = (await tx.select({ n: count() }).from(subscriptions).where(eq(subscriptions.planId, id)))[0]!.n;
      if (subCount > 0)
        throw new DomainError(
          'conflict',
          'PLAN_IN_USE',
          `plan ${current.name} (${id}) has ${subCount} subscription(s); it cannot be deleted`,
        );
      if (current.isDefault && (await tx.select({ id: plans.id }).from(plans).where(ne(plans.id, id)).limit(1)).length > 0) {
        throw new DomainError(
          'conflict',
          'PLAN_IS_DEFAULT',
          `plan ${current.name} (${id}) is the default plan; make another plan the default first`,
        );
      }
      await tx.delete(plans).where(eq(plans.id, id));
      await touch('plans', 'deleted', id);
    });
  }

  private async assertNameFree(tx: Tx, name: string, exceptId?: string): Promise<void> {
    const { plans } = this.ctx.t;
    const [same] = await tx
      .select({ id: plans.id })
      .from(plans)
      .where(and(sql`lower(${plans.name}) = lower(${name})`, exceptId ? ne(plans.id, exceptId) : undefined));
    if (same)
      throw new DomainError('conflict', 'PLAN_NAME_TAKEN', `plan: name: a plan named "${name}" already exists (${same.id})`, 'name');
  }
}
