import { z } from '@apigate/kernel';
import { eq } from 'drizzle-orm';
import { plans, users } from '../store/schema.js';
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

const publicColumns = {
  id: users.id,
  email: users.email,
  name: users.name,
  status: users.status,
  planId: users.planId,
  emailVerified: users.emailVerified,
  createdAt: users.createdAt,
  updatedAt: users.updatedAt,
};

export class UserRepository {
  constructor(private readonly ctx: DomainContext) {}

  /** Without a plan id the user gets the default plan. */
  async create(input: CreateUserInput): Promise<User> {
    const v = parseInput(createSchema, input, 'user');
    return writeTx(this.ctx, (tx, touch) => {
      this.assertEmailFree(tx, v.email);
      const planId = v.planId !== undefined ? this.requirePlan(tx, v.planId) : this.defaultPlan(tx);
      const now = this.ctx.now();
      const id = newId('usr');
      tx.insert(users)
        .values({ ...v, passwordHash: v.passwordHash ?? null, planId, id, createdAt: now, updatedAt: now })
        .run();
      touch('users', 'created', id);
      return tx.select(publicColumns).from(users).where(eq(users.id, id)).get()!;
    });
  }

  async find(id: string): Promise<User | undefined> {
    return this.ctx.db.select(publicColumns).from(users).where(eq(users.id, id)).get();
  }

  async findByEmail(email: string): Promise<User | undefined> {
    return this.ctx.db.select(publicColumns).from(users).where(eq(users.email, email.trim().toLowerCase())).get();
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
    const filters = [q.status !== undefined ? eq(users.status, q.status) : undefined, q.planId !== undefined ? eq(users.planId, q.planId) : undefined];
    return listPage(q, 'user list', users, filters, (where, order, n) =>
      this.ctx.db.select(publicColumns).from(users).where(where).orderBy(...order).limit(n).all(),
    );
  }

  async update(id: string, patch: UpdateUserInput): Promise<User> {
    const v = parseInput(updateSchema, patch, 'user');
    return writeTx(this.ctx, (tx, touch) => {
      const current = tx.select(publicColumns).from(users).where(eq(users.id, id)).get();
      if (!current) throw notFound('user', id);
      if (v.email !== undefined && v.email !== current.email) this.assertEmailFree(tx, v.email);
      if (v.planId !== undefined) this.requirePlan(tx, v.planId);
      tx.update(users)
        .set({ ...v, updatedAt: this.ctx.now() })
        .where(eq(users.id, id))
        .run();
      touch('users', 'updated', id);
      return tx.select(publicColumns).from(users).where(eq(users.id, id)).get()!;
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
    writeTx(this.ctx, (tx, touch) => {
      const res = tx.delete(users).where(eq(users.id, id)).run();
      if (res.changes === 0) throw notFound('user', id);
      touch('users', 'deleted', id);
      touch('keys', 'deleted'); // the user's keys went with them (ON DELETE CASCADE)
    });
  }

  /** For the customer portal: the stored hash (scrypt/argon2 string), or null. */
  async passwordHash(id: string): Promise<string | null> {
    const row = this.ctx.db.select({ h: users.passwordHash }).from(users).where(eq(users.id, id)).get();
    if (!row) throw notFound('user', id);
    return row.h;
  }

  /** For the customer portal: stores a hash it computed. Not a cached field, so no change event. */
  async setPasswordHash(id: string, hash: string | null): Promise<void> {
    const res = this.ctx.db.update(users).set({ passwordHash: hash, updatedAt: this.ctx.now() }).where(eq(users.id, id)).run();
    if (res.changes === 0) throw notFound('user', id);
  }

  private assertEmailFree(tx: Tx, email: string): void {
    const same = tx.select({ id: users.id }).from(users).where(eq(users.email, email)).get();
    if (same) throw new DomainError('conflict', 'EMAIL_TAKEN', `user: email: ${email} is already the email of user ${same.id}`, 'email');
  }

  private requirePlan(tx: Tx, planId: string): string {
    if (!tx.select({ id: plans.id }).from(plans).where(eq(plans.id, planId)).get()) {
      throw new DomainError('invalid', 'PLAN_NOT_FOUND', `user: plan_id: no plan with id ${planId}`, 'plan_id');
    }
    return planId;
  }

  private defaultPlan(tx: Tx): string {
    const row = tx.select({ id: plans.id }).from(plans).where(eq(plans.isDefault, true)).get();
    if (!row) throw new DomainError('invalid', 'NO_DEFAULT_PLAN', 'user: plan_id: not given and there is no default plan; create a plan first', 'plan_id');
    return row.id;
  }
}
