import { z } from '@apigate/kernel';
import { eq } from 'drizzle-orm';
import type { Tables } from '../store/dialect.js';
import { type DomainContext, type Tx, writeTx } from './context.js';
import { DomainError, notFound } from './errors.js';
import { newId } from './ids.js';
import { listPage, type Page, type PageQuery } from './paging.js';
import { parseInput } from './validate.js';

export const USER_STATUSES = ['active', 'suspended'] as const;
export type UserStatus = (typeof USER_STATUSES)[number];

/** A customer. The password hash is never part of it (see `passwordHash`). */
export interface User {
  id: string;
  email: string;
  name: string;
  status: UserStatus;
  planId: string;
  emailVerified: boolean;
  createdAt: Date;
  updatedAt: Date;
}

const userFields = {
  email: z
    .string({ error: 'expected an email address' })
    .trim()
    .toLowerCase()
    .max(254, { error: 'at most 254 characters' })
    .pipe(z.email({ error: 'expected an email address such as ada@example.com' })),
  name: z.string({ error: 'expected a name' }).trim().max(200, { error: 'at most 200 characters' }),
  status: z.enum(USER_STATUSES, { error: 'expected active or suspended' }),
  planId: z.string({ error: 'expected a plan id' }).min(1, { error: 'expected a plan id' }),
  emailVerified: z.boolean({ error: 'expected true or false' }),
};
const createSchema = z
  .object({
    ...userFields,
    name: userFields.name.default(''),
    status: userFields.status.default('active'),
    planId: userFields.planId.optional(),
    emailVerified: userFields.emailVerified.default(false),
    /** Already hashed by the caller (the portal); null or absent for admin-made users. */
    passwordHash: z.string().min(1).nullable().optional(),
  })
  .strict();
const updateSchema = z.object(userFields).partial().strict();

export type CreateUserInput = z.input<typeof createSchema>;
export type UpdateUserInput = z.input<typeof updateSchema>;

export interface UserQuery extends PageQuery {
  status?: UserStatus;
  planId?: string;
}

const publicColumns = ({ users }: Tables) => ({
  id: users.id,
  email: users.email,
  name: users.name,
  status: users.status,
  planId: users.planId,
  emailVerified: users.emailVerified,
  createdAt: users.createdAt,
  updatedAt: users.updatedAt,
});

export class UserRepository {
  constructor(private readonly ctx: DomainContext) {}

  /** Without a plan id the user gets the default plan. */
  async create(input: CreateUserInput): Promise<User> {
    const v = parseInput(createSchema, input, 'user');
    const { users } = this.ctx.t;
    return writeTx(this.ctx, async (tx, touch) => {
      await this.assertEmailFree(tx, v.email);
      const planId = v.planId !== undefined ? await this.requirePlan(tx, v.planId) : await this.defaultPlan(tx);
      const now = this.ctx.now();
      const id = newId('usr');
      await tx.insert(users).values({ ...v, passwordHash: v.passwordHash ?? null, planId, id, createdAt: now, updatedAt: now });
      await touch('users', 'created', id);
      return (await tx.select(publicColumns(this.ctx.t)).from(users).where(eq(users.id, id)))[0]!;
    });
  }

  async find(id: string): Promise<User | undefined> {
    const { users } = this.ctx.t;
    return (await this.ctx.db.select(publicColumns(this.ctx.t)).from(users).where(eq(users.id, id)))[0];
  }

  async findByEmail(email: string): Promise<User | undefined> {
    const { users } = this.ctx.t;
    return (await this.ctx.db.select(publicColumns(this.ctx.t)).from(users).where(eq(users.email, email.trim().toLowerCase())))[0];
  }

  async get(id: string): Promise<User> {
    const user = await this.find(id);
    if (!user) throw notFound('user', id);
    return user;
  }

  /** By id, else by email: what the CLI's `<user>` arguments take. */
  async resolve(idOrEmail: string): Promise<User> {
    const user = (await this.find(idOrEmail)) ?? (idOrEmail.includes('@') ? await this.findByEmail(idOrEmail) : undefined);
    if (!user) throw new DomainError('not_found', 'NOT_FOUND', `no user with id or email "${idOrEmail}"`);
    return user;
  }

  /** Oldest first, `limit` at a time. */
  async list(q: UserQuery = {}): Promise<Page<User>> {
    const { users } = this.ctx.t;
    const filters = [
      q.status !== undefined ? eq(users.status, q.status) : undefined,
      q.planId !== undefined ? eq(users.planId, q.planId) : undefined,
    ];
    return listPage(q, 'user list', users, filters, (where, order, n) =>
      this.ctx.db
        .select(publicColumns(this.ctx.t))
        .from(users)
        .where(where)
        .orderBy(...order)
        .limit(n),
    );
  }

  async update(id: string, patch: UpdateUserInput): Promise<User> {
    const v = parseInput(updateSchema, patch, 'user');
    const { users } = this.ctx.t;
    return writeTx(this.ctx, async (tx, touch) => {
      const [current] = await tx.select(publicColumns(this.ctx.t)).from(users).where(eq(users.id, id));
      if (!current) throw notFound('user', id);
      if (v.email !== undefined && v.email !== current.email) await this.assertEmailFree(tx, v.email);
      if (v.planId !== undefined) await this.requirePlan(tx, v.planId);
      const [row] = await tx
        .update(users)
        .set({ ...v, updatedAt: this.ctx.now() })
        .where(eq(users.id, id))
        .returning(publicColumns(this.ctx.t));
      await touch('users', 'updated', id);
      return row!;
    });
  }

  async suspend(id: string): Promise<User> {
    return this.update(id, { status: 'suspended' });
  }

  async activate(id: string): Promise<User> {
    return this.update(id, { status: 'active' });
  }

  /** Deletes the user with their keys and subscriptions; usage history stays. */
  async delete(id: string): Promise<void> {
    const { users } = this.ctx.t;
    await writeTx(this.ctx, async (tx, touch) => {
      const res = await tx.delete(users).where(eq(users.id, id)).returning({ id: users.id });
      if (res.length === 0) throw notFound('user', id);
      await touch('users', 'deleted', id);
      await touch('keys', 'deleted'); // the user's keys went with them (ON DELETE CASCADE)
    });
  }

  /** For the customer portal: the stored hash (scrypt/argon2 string), or null. */
  async passwordHash(id: string): Promise<string | null> {
    const { users } = this.ctx.t;
    const [row] = await this.ctx.db.select({ h: users.passwordHash }).from(users).where(eq(users.id, id));
    if (!row) throw notFound('user', id);
    return row.h;
  }

  /** For the customer portal: stores a hash it computed. Not a cached field, so no change event. */
  async setPasswordHash(id: string, hash: string | null): Promise<void> {
    const { users } = this.ctx.t;
    const res = await this.ctx.db
      .update(users)
      .set({ passwordHash: hash, updatedAt: this.ctx.now() })
      .where(eq(users.id, id))
      .returning({ id: users.id });
    if (res.length === 0) throw notFound('user', id);
  }

  private async assertEmailFree(tx: Tx, email: string): Promise<void> {
    const { users } = this.ctx.t;
    const [same] = await tx.select({ id: users.id }).from(users).where(eq(users.email, email));
    if (same) throw new DomainError('conflict', 'EMAIL_TAKEN', `user: email: ${email} is already the email of user ${same.id}`, 'email');
  }

  private async requirePlan(tx: Tx, planId: string): Promise<string> {
    const { plans } = this.ctx.t;
    if ((await tx.select({ id: plans.id }).from(plans).where(eq(plans.id, planId))).length === 0) {
      throw new DomainError('invalid', 'PLAN_NOT_FOUND', `user: plan_id: no plan with id ${planId}`, 'plan_id');
    }
    return planId;
  }

  private async defaultPlan(tx: Tx): Promise<string> {
    const { plans } = this.ctx.t;
    const [row] = await tx.select({ id: plans.id }).from(plans).where(eq(plans.isDefault, true));
    if (!row)
      throw new DomainError(
        'invalid',
        'NO_DEFAULT_PLAN',
        'user: plan_id: not given and there is no default plan; create a plan first',
        'plan_id',
      );
    return row.id;
  }
}
