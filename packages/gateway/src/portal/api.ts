import { randomUUID } from 'node:crypto';
import { ApigateError, type CacheProvider, describeError, type EmailMessage, type Logger, type OAuthProvider, z } from '@apigate/kernel';
import { getConnInfo } from '@hono/node-server/conninfo';
import { type Context, Hono, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { isDomainError } from '../domain/errors.js';
import { monthBounds, monthOf } from '../domain/usage.js';
import type { User } from '../domain/users.js';
import { parseInput } from '../domain/validate.js';
import { toWire } from '../domain/wire.js';
import { apiErrorResponse, body, dateParam, errorBody, intParam } from '../http/request.js';
import type { Store } from '../domain/open-store.js';
import { AttemptLimiter, DEFAULT_PORTAL_LIMITS, type LimitName, type PortalLimits } from './limits.js';
import { alreadyRegisteredEmail, type PortalMailer, resetEmail, verificationEmail } from './mail.js';
import { DEFAULT_SCRYPT, hashPassword, needsRehash, type ScryptParams, verifyPassword } from './password.js';
import { createOAuthRoutes } from './oauth.js';
import { BillingError, type CustomerBilling } from '../billing/customer-billing.js';
import { createPortalBilling } from './billing.js';
import { createAccountRoutes } from './account.js';
import { PortalStore, type TokenCheck } from './store.js';

export const SESSION_COOKIE = 'apigate_session';
/** Sent with every state-changing request (see "CSRF" in the README). */
export const CSRF_HEADER = 'X-Requested-With';
/** Base URL of the links in portal emails, e.g. https://api.example.com. */
export const PUBLIC_URL_ENV = 'APIGATE_PUBLIC_URL';
export const PUBLIC_URL_SETTING = 'portal.public_url';
/** Where password reset links point: the portal UI's page, which posts the token to /portal/api/password-reset/confirm. */
export const RESET_PAGE_PATH = '/portal/reset-password';
export const MIN_PASSWORD_LENGTH = 8;
const MAX_PASSWORD_LENGTH = 1000;

const HOUR = 3_600_000;

export interface PortalOptions {
  store: Store;
  logger: Logger;
  /** Where emails go (the delivery outbox, or `directMailer(provider)`); without one, sign up and reset answer 503. */
  mailer?: PortalMailer | undefined;
  /** The cache capability, for attempt limits shared between instances; without one they count per instance. */
  cache?: CacheProvider | undefined;
  /** The enabled sign-in providers by name (the kernel's `oauth` capability), for /portal/api/oauth. */
  oauth?: ReadonlyMap<string, OAuthProvider> | undefined;
  /** Base URL of email links; default APIGATE_PUBLIC_URL, then the setting portal.public_url. */
  publicUrl?: string | undefined;
  /** Take the client address from X-Forwarded-For (its last entry) for attempt limits; only behind a proxy that sets it. */
  trustProxy?: boolean;
  /** Session lifetime; default 7 days. */
  sessionTtlMs?: number;
  /** Email verification link lifetime; default 24 hours. */
  verifyTtlMs?: number;
  /** Password reset link lifetime; default 1 hour. */
  resetTtlMs?: number;
  limits?: Partial<PortalLimits>;
  /** scrypt cost of new password hashes; default DEFAULT_SCRYPT. */
  scrypt?: ScryptParams;
  /** Checkout, plan change and cancel over the selected payment provider; absent: /billing answers 503. */
  billing?: CustomerBilling | undefined;
  /** Keys a customer may have working at once; default 25. */
  maxKeysPerUser?: number;
  env?: Record<string, string | undefined>;
  now?: () => Date;
}

/** A refusal with its status and code; `field` names the input at fault. */
class PortalError extends ApigateError {
  constructor(
    readonly status: ContentfulStatusCode,
    code: string,
    message: string,
    readonly field?: string,
    readonly retryAfterSec?: number,
  ) {
    super(code, message);
  }
}

type PortalEnv = { Variables: { user: User } };

const emailField = z
  .string({ error: 'expected an email address' })
  .trim()
  .toLowerCase()
  .max(254, { error: 'at most 254 characters' })
  .pipe(z.email({ error: 'expected an email address such as ada@example.com' }));
const newPassword = z
  .string({ error: 'expected a password' })
  .min(MIN_PASSWORD_LENGTH, { error: `at least ${MIN_PASSWORD_LENGTH} characters` })
  .max(MAX_PASSWORD_LENGTH, { error: `at most ${MAX_PASSWORD_LENGTH} characters` });
const tokenField = z
  .string({ error: 'expected the token from the emailed link' })
  .regex(/^[0-9A-Za-z]{20,100}$/, { error: 'expected the token from the emailed link' });

const signupSchema = z
  .object({
    email: emailField,
    password: newPassword,
    name: z.string({ error: 'expected a name' }).trim().max(200, { error: 'at most 200 characters' }).default(''),
  })
  .strict();
const loginSchema = z
  .object({
    email: emailField,
    password: z.string({ error: 'expected a password' }).min(1, { error: 'expected a password' }).max(MAX_PASSWORD_LENGTH),
  })
  .strict();
const emailOnlySchema = z.object({ email: emailField }).strict();
const tokenSchema = z.object({ token: tokenField }).strict();
const resetConfirmSchema = z.object({ token: tokenField, password: newPassword }).strict();
// The key's own fields are checked by the domain; here only which fields a customer may set.
const createKeySchema = z.object({ name: z.unknown().optional(), expiresAt: z.unknown().optional() }).strict();

const TOKEN_ERRORS: Record<Exclude<TokenCheck, { ok: true }>['reason'], [string, string]> = {
  unknown: ['TOKEN_INVALID', 'token: this link is not valid; ask for a new one'],
  used: ['TOKEN_USED', 'token: this link was already used, a newer one replaced it, or the password was changed since; ask for a new one'],
  expired: ['TOKEN_EXPIRED', 'token: this link has expired; ask for a new one'],
};
const tokenError = (reason: keyof typeof TOKEN_ERRORS) => new PortalError(400, TOKEN_ERRORS[reason][0], TOKEN_ERRORS[reason][1], 'token');

const LOOPBACK = /^(localhost|[^.]+\.localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

/** What is wrong with a value for APIGATE_PUBLIC_URL / portal.public_url, or undefined (for `apigate settings set`). */
export function checkPublicUrlValue(value: string): string | undefined {
  try {
    checkPublicUrl(value, PUBLIC_URL_SETTING);
    return undefined;
  } catch {
    return "expected the gateway's public http(s) URL such as https://api.example.com";
  }
}

/** `https://api.example.com/base` -> the same without a trailing slash; anything else is refused in one line. */
function checkPublicUrl(raw: string, source: string): string {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    url = new URL('invalid:');
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.search || url.hash) {
    throw new ApigateError(
      'PUBLIC_URL_INVALID',
      `${source}: expected the gateway's public http(s) URL such as https://api.example.com, got "${raw}"`,
    );
  }
  return url.href.replace(/\/+$/, '');
}

const isHttps = (c: Context) =>
  new URL(c.req.url).protocol === 'https:' || c.req.header('x-forwarded-proto')?.split(',')[0]?.trim().toLowerCase() === 'https';

/**
 * The customer portal's JSON API, mounted at /portal/api: sign up with a verified email, log in
 * with a session cookie, reset a forgotten password by email, and manage one's own API keys and
 * usage. Answers use snake_case fields; errors are `{ error: { code, message, field? } }`.
 */
export function createPortalApi(opts: PortalOptions): Hono<PortalEnv> {
  const { store, logger } = opts;
  const d = store.domain;
  const env = opts.env ?? process.env;
  const now = opts.now ?? (() => new Date());
  const portal = new PortalStore(store, now);
  const limiter = new AttemptLimiter({ ...DEFAULT_PORTAL_LIMITS, ...opts.limits }, opts.cache, { now: () => now().getTime(), logger });
  const scrypt = opts.scrypt ?? DEFAULT_SCRYPT;
  const sessionTtlMs = opts.sessionTtlMs ?? 7 * 24 * HOUR;
  const verifyTtlMs = opts.verifyTtlMs ?? 24 * HOUR;
  const resetTtlMs = opts.resetTtlMs ?? HOUR;
  const maxKeys = opts.maxKeysPerUser ?? 25;
  const fixedUrl =
    opts.publicUrl !== undefined && opts.publicUrl !== ''
      ? checkPublicUrl(opts.publicUrl, 'publicUrl')
      : env[PUBLIC_URL_ENV]?.trim()
        ? checkPublicUrl(env[PUBLIC_URL_ENV]!, PUBLIC_URL_ENV)
        : undefined;
  if (!opts.mailer)
    logger.warn('customer portal: no email provider selected, so sign up, verification and password reset answer 503 (set EMAIL_PROVIDER)');

  /**
   * The base of email links. Never taken from the request's Host on a public address: a forged
   * Host would otherwise put a reset token in a link to someone else's site.
   */
  function publicBase(c: Context): string {
    if (fixedUrl) return fixedUrl;
    const setting = store.settings.get(PUBLIC_URL_SETTING)?.trim();
    if (setting) return checkPublicUrl(setting, `setting ${PUBLIC_URL_SETTING}`);
    const url = new URL(c.req.url);
    if (LOOPBACK.test(url.hostname)) return `${isHttps(c) ? 'https' : 'http'}://${url.host}`;
    throw new PortalError(
      503,
      'PUBLIC_URL_REQUIRED',
      `the portal cannot send links: set ${PUBLIC_URL_ENV} (or the setting ${PUBLIC_URL_SETTING}) to the gateway's public URL, e.g. https://api.example.com`,
    );
  }

  function mailer(): PortalMailer {
    if (opts.mailer) return opts.mailer;
    throw new PortalError(503, 'EMAIL_UNAVAILABLE', 'the portal cannot send email: no email provider is selected (set EMAIL_PROVIDER)');
  }

  /** Queued without waiting, so the answer's timing is the same whether an email went out or not. */
  function send(m: PortalMailer, msg: EmailMessage, idempotencyId: string): void {
    m.sendEmail(msg, { idempotencyId }).catch((err: unknown) => {
      logger.error({ subject: msg.subject, idempotencyId }, `customer portal: email could not be sent: ${describeError(err)}`);
    });
  }

  function clientIp(c: Context): string {
    if (opts.trustProxy) {
      const last = c.req.header('x-forwarded-for')?.split(',').at(-1)?.trim();
      if (last) return last;
    }
    try {
      return getConnInfo(c).remote.address ?? 'unknown';
    } catch {
      return 'unknown'; // not served by @hono/node-server (app.request in a test)
    }
  }

  /** Counts the attempt against the client address's rule and, when given, the email address's. */
  async function limit(c: Context, ipRule: LimitName, emailRule?: [LimitName, string]): Promise<void> {
    const wait = await limiter.hit([[ipRule, `ip:${clientIp(c)}`], ...(emailRule ? [emailRule] : [])]);
    if (wait !== undefined)
      throw new PortalError(429, 'TOO_MANY_ATTEMPTS', `too many attempts; try again in ${wait} seconds`, undefined, wait);
  }

  async function sendVerification(c: Context, m: PortalMailer, user: User): Promise<void> {
    const t = await portal.issueToken(user.id, 'verify_email', user.email, verifyTtlMs);
    send(
      m,
      verificationEmail(user.email, user.name, `${publicBase(c)}/portal/api/verify-email?token=${t.token}`, verifyTtlMs),
      `portal:${t.id}`,
    );
  }

  async function me(user: User) {
    const plan = await d.plans.find(user.planId);
    return {
      id: user.id,
      email: user.email,
      name: user.name,
      status: user.status,
      emailVerified: user.emailVerified,
      createdAt: user.createdAt,
      plan: plan
        ? {
            id: plan.id,
            name: plan.name,
            requestsPerMinute: plan.requestsPerMinute,
            requestsPerMonth: plan.requestsPerMonth,
            priceCents: plan.priceCents,
            currency: plan.currency,
          }
        : null,
    };
  }

  async function ownKey(user: User, id: string) {
    const key = await d.keys.find(id);
    // Someone else's key is "not found" too: ids are not confirmed to strangers.
    if (!key || key.userId !== user.id) throw new PortalError(404, 'NOT_FOUND', `no api key with id ${id} among your keys`);
    return key;
  }

  async function startSession(c: Context, user: User) {
    const { token, session } = await portal.createSession(user.id, sessionTtlMs);
    setCookie(c, SESSION_COOKIE, token, {
      httpOnly: true,
      secure: isHttps(c),
      sameSite: 'Lax',
      path: '/portal',
      maxAge: Math.floor(sessionTtlMs / 1000),
    });
    return session;
  }

  const json = (c: Context, value: unknown, status: ContentfulStatusCode = 200) => c.json(toWire(value) as object, status);

  const requireSession: MiddlewareHandler<PortalEnv> = async (c, next) => {
    const token = getCookie(c, SESSION_COOKIE);
    const session = token ? await portal.findSession(token) : undefined;
    const user = session ? await d.users.find(session.userId) : undefined;
    if (!user) {
      if (token) deleteCookie(c, SESSION_COOKIE, { path: '/portal' });
      throw new PortalError(401, 'UNAUTHENTICATED', `log in first: no valid session (cookie ${SESSION_COOKIE})`);
    }
    if (user.status !== 'active') throw new PortalError(403, 'ACCOUNT_SUSPENDED', 'this account is suspended; contact the API provider');
    c.set('user', user);
    await next();
  };

  const api = new Hono<PortalEnv>();

  api.use('*', async (c, next) => {
    // Browsers cannot add a custom header to a cross-site request without a CORS preflight, which
    // this API never grants: requiring one stops forged form posts riding on the cookie.
    if (!['GET', 'HEAD', 'OPTIONS'].includes(c.req.method) && !c.req.header(CSRF_HEADER)) {
      throw new PortalError(
        403,
        'CSRF_HEADER_REQUIRED',
        `send the header ${CSRF_HEADER} (e.g. ${CSRF_HEADER}: XMLHttpRequest) with every ${c.req.method} to the portal API`,
      );
    }
    await next();
    c.res.headers.set('Cache-Control', 'no-store');
  });
  api.use(
    '*',
    bodyLimit({ maxSize: 64 * 1024, onError: (c) => c.json(errorBody('PAYLOAD_TOO_LARGE', 'request body: at most 64 KiB'), 413) }),
  );
  for (const path of ['/me', '/account', '/account/*', '/keys', '/keys/*', '/usage', '/usage/*', '/billing', '/billing/*'])
    api.use(path, requireSession);

  // --- accounts

  api.post('/signup', async (c) => {
    const v = parseInput(signupSchema, await body(c), 'sign up');
    const m = mailer();
    publicBase(c);
    await limit(c, 'emailPerIp', ['emailPerAddress', v.email]);
    // Hashed before looking the address up, so both answers take as long.
    const passwordHash = await hashPassword(v.password, scrypt);
    let existing = await d.users.findByEmail(v.email);
    if (!existing) {
      try {
        await sendVerification(c, m, await d.users.create({ email: v.email, name: v.name, passwordHash }));
      } catch (err) {
        if (!isDomainError(err)) throw err;
        if (err.code === 'NO_DEFAULT_PLAN')
          throw new PortalError(503, 'SIGNUP_UNAVAILABLE', 'sign up is not open yet: the API provider has not created a plan');
        if (err.code !== 'EMAIL_TAKEN') throw err;
        existing = await d.users.findByEmail(v.email); // signed up a moment ago by a concurrent request
      }
    }
    // The same answer whether the address is new or not; the owner learns the difference by email.
    if (existing && existing.status === 'active') {
      if (existing.emailVerified) send(m, alreadyRegisteredEmail(existing.email, existing.name), `portal:registered:${randomUUID()}`);
      else await sendVerification(c, m, existing);
    }
    return json(c, { status: 'verification_sent', message: `check ${v.email} for a link to confirm the address, then log in` }, 202);
  });

  async function verify(c: Context, input: unknown) {
    const v = parseInput(tokenSchema, input, 'verify email');
    await limit(c, 'tokenPerIp');
    const r = await portal.consumeToken(v.token, 'verify_email');
    if (!r.ok) throw tokenError(r.reason);
    const user = await d.users.find(r.userId);
    // The link proves the address it was sent to; if the account's address changed since, it proves nothing.
    if (!user || user.email !== r.email) throw tokenError('unknown');
    if (!user.emailVerified) await d.users.update(user.id, { emailVerified: true });
    return json(c, { email: user.email, emailVerified: true });
  }
  // GET serves the emailed link itself; verifying is harmless if a mail scanner follows it first.
  api.get('/verify-email', (c) => verify(c, { token: c.req.query('token') }));
  api.post('/verify-email', async (c) => verify(c, await body(c)));

  api.post('/verify-email/resend', async (c) => {
    const v = parseInput(emailOnlySchema, await body(c), 'resend verification');
    const m = mailer();
    publicBase(c);
    await limit(c, 'emailPerIp', ['emailPerAddress', v.email]);
    const user = await d.users.findByEmail(v.email);
    if (user && user.status === 'active' && !user.emailVerified) await sendVerification(c, m, user);
    return json(
      c,
      { status: 'verification_sent', message: `if ${v.email} has an account waiting for confirmation, a new link is on its way` },
      202,
    );
  });

  api.post('/login', async (c) => {
    const v = parseInput(loginSchema, await body(c), 'log in');
    await limit(c, 'loginPerIp', ['loginPerEmail', v.email]);
    const user = await d.users.findByEmail(v.email);
    const stored = user ? await d.users.passwordHash(user.id) : null;
    // Runs the full scrypt even for an unknown address: the answer time does not tell which.
    const ok = await verifyPassword(v.password, stored, scrypt);
    if (!user || !ok) throw new PortalError(401, 'INVALID_CREDENTIALS', 'log in: the email address or the password is not right');
    if (user.status !== 'active')
      throw new PortalError(403, 'ACCOUNT_SUSPENDED', 'log in: this account is suspended; contact the API provider');
    if (!user.emailVerified) {
      throw new PortalError(
        403,
        'EMAIL_NOT_VERIFIED',
        'log in: email: confirm the address first with the emailed link (POST /portal/api/verify-email/resend sends a new one)',
        'email',
      );
    }
    if (stored && needsRehash(stored, scrypt)) await d.users.setPasswordHash(user.id, await hashPassword(v.password, scrypt));
    const session = await startSession(c, user);
    return json(c, { user: await me(user), sessionExpiresAt: session.expiresAt });
  });

  api.post('/logout', async (c) => {
    const token = getCookie(c, SESSION_COOKIE);
    if (token) await portal.deleteSession(token);
    deleteCookie(c, SESSION_COOKIE, { path: '/portal', secure: isHttps(c), httpOnly: true, sameSite: 'Lax' });
    return json(c, { loggedOut: true });
  });

  api.post('/password-reset', async (c) => {
    const v = parseInput(emailOnlySchema, await body(c), 'password reset');
    const m = mailer();
    const base = publicBase(c);
    await limit(c, 'emailPerIp', ['emailPerAddress', v.email]);
    const user = await d.users.findByEmail(v.email);
    if (user && user.status === 'active') {
      const t = await portal.issueToken(user.id, 'reset_password', user.email, resetTtlMs);
      send(m, resetEmail(user.email, user.name, `${base}${RESET_PAGE_PATH}?token=${t.token}`, resetTtlMs), `portal:${t.id}`);
    }
    // Word for word the same either way: this endpoint does not tell who has an account.
    return json(
      c,
      { status: 'reset_requested', message: `if ${v.email} has an account, a link to choose a new password is on its way` },
      202,
    );
  });

  api.post('/password-reset/confirm', async (c) => {
    const v = parseInput(resetConfirmSchema, await body(c), 'password reset');
    await limit(c, 'tokenPerIp');
    const peek = await portal.checkToken(v.token, 'reset_password');
    if (!peek.ok) throw tokenError(peek.reason);
    const passwordHash = await hashPassword(v.password, scrypt);
    let sessionsRevoked = 0;
    // One transaction: the token is used up, the password set and every session ended, or none of it.
    const r = await portal.consumeToken(v.token, 'reset_password', async (tx, t) => {
      await portal.setPasswordHash(tx, t.userId, passwordHash);
      sessionsRevoked = await portal.deleteUserSessions(t.userId, tx);
    });
    if (!r.ok) throw tokenError(r.reason);
    const user = await d.users.find(r.userId);
    // The reset link reached the inbox: that proves the address as well as a verification link would.
    if (user && !user.emailVerified && user.email === r.email) await d.users.update(user.id, { emailVerified: true });
    deleteCookie(c, SESSION_COOKIE, { path: '/portal' });
    return json(c, { passwordReset: true, sessionsRevoked });
  });

  api.route('/oauth', createOAuthRoutes({ store, logger, providers: opts.oauth, publicBase, isHttps, startSession, now }));

  // --- the logged-in customer

  api.get('/me', async (c) => json(c, await me(c.get('user'))));

  api.get('/keys', async (c) => {
    const page = await d.keys.list({
      userId: c.get('user').id,
      includeInactive: c.req.query('active') !== 'true',
      ...(intParam(c, 'limit') !== undefined ? { limit: intParam(c, 'limit')! } : {}),
      ...(c.req.query('cursor') ? { cursor: c.req.query('cursor')! } : {}),
    });
    return json(c, { data: page.items, nextCursor: page.cursor ?? null });
  });

  api.post('/keys', async (c) => {
    const user = c.get('user');
    const v = parseInput(createKeySchema, await body(c), 'api key');
    const active = (await d.keys.countActive([user.id])).get(user.id) ?? 0;
    if (active >= maxKeys)
      throw new PortalError(409, 'KEY_LIMIT', `api key: you already have ${active} working keys (at most ${maxKeys}); revoke one first`);
    const { apiKey, key } = await d.keys.create({ userId: user.id, ...(v as { name?: string; expiresAt?: string }) });
    return json(c, { ...apiKey, key }, 201);
  });

  api.get('/keys/:id', async (c) => json(c, await ownKey(c.get('user'), c.req.param('id'))));
  const revoke = async (c: Context<PortalEnv>) => json(c, await d.keys.revoke((await ownKey(c.get('user'), c.req.param('id')!)).id));
  api.post('/keys/:id/revoke', revoke);
  api.delete('/keys/:id', revoke);

  api.get('/usage', async (c) => {
    const user = c.get('user');
    const month = c.req.query('month') || monthOf(now());
    const [summary, plan, keys] = await Promise.all([
      d.usage.forUser(user.id, month),
      d.plans.find(user.planId),
      d.keys.list({ userId: user.id, limit: 1000 }),
    ]);
    const byId = new Map(keys.items.map((k) => [k.id, k]));
    const limit = plan?.requestsPerMonth ?? null;
    return json(c, {
      ...summary,
      keys: summary.keys.map((k) => ({ ...k, name: byId.get(k.keyId)?.name ?? null, prefix: byId.get(k.keyId)?.prefix ?? null })),
      quota: { limit, remaining: limit === null ? null : Math.max(0, limit - summary.totals.requests), resetsAt: monthBounds(month).end },
    });
  });

  api.get('/usage/minutes', async (c) => {
    const user = c.get('user');
    const to = dateParam(c, 'to', now());
    const from = dateParam(c, 'from', new Date(to.getTime() - HOUR));
    if (to.getTime() - from.getTime() > 24 * HOUR || from >= to)
      throw new PortalError(400, 'INVALID_INPUT', 'from: expected a time before to, at most 24 hours earlier', 'from');
    const keyId = c.req.query('key_id');
    if (keyId) await ownKey(user, keyId);
    return json(c, { from, to, data: await d.usage.minutes({ ...(keyId ? { keyId } : { userId: user.id }), from, to }) });
  });

  api.get('/usage/days', async (c) => {
    const user = c.get('user');
    // [from, to) widened to whole UTC days.
    const DAY = 24 * HOUR;
    const from = new Date(Math.floor(dateParam(c, 'from', monthBounds(monthOf(now())).start).getTime() / DAY) * DAY);
    const to = new Date(Math.ceil(dateParam(c, 'to', now()).getTime() / DAY) * DAY);
    if (to.getTime() - from.getTime() > 62 * DAY || from >= to)
      throw new PortalError(400, 'INVALID_INPUT', 'from: expected a day before to, at most 62 days earlier', 'from');
    // Summed from the per-minute buckets, which metering keeps for as long as they are not pruned.
    const days = new Map<number, { day: Date; requests: number; bytesIn: number; bytesOut: number; errors: number }>();
    for (const m of await d.usage.minutes({ userId: user.id, from, to })) {
      const k = Math.floor(m.minute.getTime() / DAY) * DAY;
      const row = days.get(k) ?? { day: new Date(k), requests: 0, bytesIn: 0, bytesOut: 0, errors: 0 };
      row.requests += m.requests;
      row.bytesIn += m.bytesIn;
      row.bytesOut += m.bytesOut;
      row.errors += m.errors;
      days.set(k, row);
    }
    return json(c, { from, to, data: [...days.values()] });
  });

  api.route('/billing', createPortalBilling({ billing: opts.billing, publicBase }));

  api.route(
    '/account',
    createAccountRoutes({
      store,
      portal,
      scrypt,
      newPassword,
      maxPasswordLength: MAX_PASSWORD_LENGTH,
      sessionCookie: SESSION_COOKIE,
      limitPasswordCheck: (c, email) => limit(c, 'loginPerIp', ['loginPerEmail', email]),
      startSession,
      isHttps,
      me,
      json,
      refuse: (status, code, message, field) => new PortalError(status, code, message, field),
    }),
  );

  api.onError((err, c) => {
    if (err instanceof BillingError) return c.json(errorBody(err.code, err.message, err.field), err.status);
    if (!(err instanceof PortalError)) return apiErrorResponse(c, err, logger, 'portal API');
    if (err.retryAfterSec !== undefined) c.header('Retry-After', String(err.retryAfterSec));
    return c.json(errorBody(err.code, err.message, err.field), err.status);
  });

  return api;
}
