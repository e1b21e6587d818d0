import { z } from '@apigate/kernel';
import { type Context, Hono } from 'hono';
import { deleteCookie } from 'hono/cookie';
import { LIVE_STATUSES } from '../billing/states.js';
import type { User } from '../domain/users.js';
import { parseInput } from '../domain/validate.js';
import { body } from '../http/request.js';
import type { Store } from '../domain/open-store.js';
import { hashPassword, type ScryptParams, verifyPassword } from './password.js';
import type { PortalStore } from './store.js';

export type AccountEnv = { Variables: { user: User } };

/** What the account routes share with the rest of the portal API (createPortalApi passes its own). */
export interface AccountRoutesOptions {
  store: Store;
  portal: PortalStore;
  scrypt: ScryptParams;
  /** The rules for new passwords (the sign-up ones). */
  newPassword: z.ZodType<string>;
  maxPasswordLength: number;
  sessionCookie: string;
  /** Counts a password check against the log in limits (so a stolen session cannot guess the password fast). */
  limitPasswordCheck(c: Context, email: string): Promise<void>;
  /** Starts a new session for the user (sets the cookie). */
  startSession(c: Context, user: User): Promise<unknown>;
  isHttps(c: Context): boolean;
  /** The account as GET /me shows it. */
  me(user: User): Promise<unknown>;
  json(c: Context, value: unknown, status?: 200 | 201): Response;
  /** A refusal with status, code, message and field (the portal's error type). */
  refuse(status: 400 | 401 | 409, code: string, message: string, field?: string): Error;
}

/**
 * The signed-in customer's account settings, mounted at /portal/api/account behind the session
 * check: change the display name, change the password with the current one (every other session
 * ends), delete the account with the password (keys and sessions go with it). The email address
 * is not changed here: a new address would need its own verification round.
 */
export function createAccountRoutes(o: AccountRoutesOptions): Hono<AccountEnv> {
  const d = o.store.domain;
  const currentPassword = z
    .string({ error: 'expected your current password' })
    .min(1, { error: 'expected your current password' })
    .max(o.maxPasswordLength);
  const nameSchema = z
    .object({ name: z.string({ error: 'expected a name' }).trim().max(200, { error: 'at most 200 characters' }) })
    .strict();
  const passwordSchema = z.object({ currentPassword, newPassword: o.newPassword }).strict();
  // Accounts made through a sign-in provider have no password: they confirm with their email address instead.
  const deleteSchema = z.object({ password: currentPassword.optional(), email: z.string().max(254).optional() }).strict();

  /** Checks the current password (counted against the log in limits); an account without one is told how to set one. */
  async function checkPassword(c: Context, user: User, password: string, field: string): Promise<void> {
    await o.limitPasswordCheck(c, user.email);
    const stored = await d.users.passwordHash(user.id);
    if (stored === null) {
      throw o.refuse(
        400,
        'NO_PASSWORD',
        `${field}: this account has no password (it signs in through a provider); choose one with "Forgot password" first`,
        field,
      );
    }
    if (!(await verifyPassword(password, stored, o.scrypt)))
      throw o.refuse(401, 'INVALID_CREDENTIALS', `${field}: the password is not right`, field);
  }

  const api = new Hono<AccountEnv>();

  // GET /me plus whether the account has a password (accounts made through a sign-in provider have none).
  api.get('/', async (c) => {
    const user = c.get('user');
    return o.json(c, { ...((await o.me(user)) as object), hasPassword: (await d.users.passwordHash(user.id)) !== null });
  });

  api.patch('/', async (c) => {
    const v = parseInput(nameSchema, await body(c), 'account');
    const user = await d.users.update(c.get('user').id, { name: v.name });
    return o.json(c, await o.me(user));
  });

  api.post('/password', async (c) => {
    const v = parseInput(passwordSchema, await body(c), 'change password');
    const user = c.get('user');
    await checkPassword(c, user, v.currentPassword, 'current_password');
    // Every session ends, this one included (this browser gets a fresh one), and an emailed reset link dies.
    const ended = await o.portal.changePassword(user.id, await hashPassword(v.newPassword, o.scrypt));
    await o.startSession(c, user);
    return o.json(c, { passwordChanged: true, otherSessionsEnded: Math.max(0, ended - 1) });
  });

  const deleteAccount = async (c: Context<AccountEnv>) => {
    const v = parseInput(deleteSchema, await body(c), 'delete account');
    const user = c.get('user');
    const stored = await d.users.passwordHash(user.id);
    if (stored === null && v.password === undefined) {
      if (v.email?.trim().toLowerCase() !== user.email)
        throw o.refuse(400, 'CONFIRMATION_REQUIRED', "email: type the account's email address to confirm", 'email');
    } else {
      await checkPassword(c, user, v.password ?? '', 'password');
    }
    const live = (await d.subscriptions.listForUser(user.id)).filter((s) => LIVE_STATUSES.has(s.status) && !s.cancelAtPeriodEnd);
    if (live.length > 0) {
      throw o.refuse(
        409,
        'SUBSCRIPTION_ACTIVE',
        'delete account: cancel your paid plan first (it would go on being charged); then delete the account',
      );
    }
    // Keys, sessions, tokens and subscriptions go with the user (ON DELETE CASCADE); usage history stays.
    await d.users.delete(user.id);
    deleteCookie(c, o.sessionCookie, { path: '/portal', secure: o.isHttps(c), httpOnly: true, sameSite: 'Lax' });
    return o.json(c, { id: user.id, deleted: true });
  };
  api.post('/delete', deleteAccount);
  api.delete('/', deleteAccount);

  return api;
}
