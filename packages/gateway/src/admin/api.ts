import { ApigateError, type Logger, type QueueProvider } from '@apigate/kernel';
import { type Context, Hono, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { ADMIN_TOKEN_PREFIX, safeEqual } from '../domain/ids.js';
import { monthBounds, monthOf } from '../domain/usage.js';
import { toWire } from '../domain/wire.js';
import type { Store } from '../domain/open-store.js';
import { createSubscriptionAdmin } from '../billing/admin-routes.js';
import { createPaymentEventsAdmin } from '../billing/events-admin.js';
import type { CustomerBilling } from '../billing/customer-billing.js';
import { apiErrorResponse, body, dateParam, errorBody, intParam } from '../http/request.js';

/** Env var holding a fixed admin token (in addition to tokens made with `apigate admin token create`). */
export const ADMIN_TOKEN_ENV = 'APIGATE_ADMIN_TOKEN';
export const MIN_ADMIN_TOKEN_LENGTH = 16;

export interface AdminApiOptions {
  store: Store;
  logger: Logger;
  /** A fixed token (APIGATE_ADMIN_TOKEN); undefined or '' for database tokens only. */
  adminToken?: string | undefined;
  /** /admin/subscriptions cancel, sync and usage-report go through it; absent: they answer 503. */
  billing?: CustomerBilling | undefined;
  /** Where /admin/payments/events/:id/replay publishes; absent: the payment worker's sweep takes the replayed row. */
  paymentQueue?: Pick<QueueProvider, 'publish'> | undefined;
}

function unauthorized(c: Context, message: string) {
  c.header('WWW-Authenticate', 'Bearer realm="apigate-admin"');
  return c.json(errorBody('UNAUTHORIZED', message), 401);
}

/** Refuses a fixed admin token too short to be a secret. */
export function checkAdminToken(token: string | undefined): string | undefined {
  if (token === undefined || token === '') return undefined;
  if (token.length < MIN_ADMIN_TOKEN_LENGTH) {
    throw new ApigateError(
      'ADMIN_TOKEN_INVALID',
      `${ADMIN_TOKEN_ENV} is too short (${token.length} characters): expected at least ${MIN_ADMIN_TOKEN_LENGTH}, e.g. the output of \`openssl rand -base64 32\``,
    );
  }
  return token;
}

/** `Authorization: Bearer <token>`: the fixed token, or a live token from the database. */
function requireAdmin(store: Store, fixed: string | undefined): MiddlewareHandler {
  return async (c, next) => {
    const header = c.req.header('authorization');
    const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!m) {
      return unauthorized(
        c,
        `admin API: send an admin token as "Authorization: Bearer <token>" (${ADMIN_TOKEN_ENV} or one from \`apigate admin token create\`)`,
      );
    }
    const token = m[1]!;
    const ok =
      (fixed !== undefined && safeEqual(token, fixed)) ||
      (token.startsWith(ADMIN_TOKEN_PREFIX) && (await store.domain.adminTokens.verify(token)) !== undefined);
    if (!ok) return unauthorized(c, 'admin API: the admin token is not valid (unknown or revoked)');
    await next();
  };
}

const opt = <K extends string, V>(key: K, v: V | undefined) => (v === undefined ? {} : ({ [key]: v } as { [P in K]: V }));

const json = (c: Context, value: unknown, status: ContentfulStatusCode = 200) => c.json(toWire(value) as object, status);
const list = (c: Context, page: { items: unknown[]; cursor?: string }) => json(c, { data: page.items, nextCursor: page.cursor ?? null });

/**
 * The admin API, mounted at /admin: JSON CRUD for users, plans, keys and routes, and usage reads.
 * Bodies and answers use snake_case fields; errors are `{ error: { code, message, field? } }`.
 */
export function createAdminApi(opts: AdminApiOptions): Hono {
  const { store, logger } = opts;
  const d = store.domain;
  const fixed = checkAdminToken(opts.adminToken);
  const api = new Hono();

  api.use('*', requireAdmin(store, fixed));
  api.use(
    '*',
    bodyLimit({ maxSize: 1024 * 1024, onError: (c) => c.json(errorBody('PAYLOAD_TOO_LARGE', 'request body: at most 1 MiB'), 413) }),
  );

  // --- users
  api.get('/users', async (c) => {
    const status = c.req.query('status');
    if (status !== undefined && status !== 'active' && status !== 'suspended')
      throw new HTTPException(400, { message: 'status: expected active or suspended' });
    return list(
      c,
      await d.users.list({
        ...opt('status', status),
        ...opt('planId', c.req.query('plan_id')),
        ...opt('limit', intParam(c, 'limit')),
        ...opt('cursor', c.req.query('cursor')),
      }),
    );
  });
  api.post('/users', async (c) => {
    const input = await body(c);
    // Passwords belong to the customer portal, which hashes them; an admin never sets a hash.
    if ('passwordHash' in input) throw new HTTPException(400, { message: 'password_hash: is not a field of this request' });
    return json(c, await d.users.create(input as never), 201);
  });
  api.get('/users/:id', async (c) => json(c, await d.users.get(c.req.param('id'))));
  api.patch('/users/:id', async (c) => json(c, await d.users.update(c.req.param('id'), (await body(c)) as never)));
  api.post('/users/:id/suspend', async (c) => json(c, await d.users.suspend(c.req.param('id'))));
  api.post('/users/:id/activate', async (c) => json(c, await d.users.activate(c.req.param('id'))));
  api.delete('/users/:id', async (c) => {
    await d.users.delete(c.req.param('id'));
    return json(c, { id: c.req.param('id'), deleted: true });
  });

  // --- subscriptions (list, show, cancel, sync from the payment provider, report overage)
  api.route('/subscriptions', createSubscriptionAdmin({ store, billing: opts.billing }));

  // --- the payment webhook inbox (list, show, replay)
  api.route('/payments/events', createPaymentEventsAdmin({ store, queue: opts.paymentQueue }));

  // --- plans
  api.get('/plans', async (c) => json(c, { data: await d.plans.list() }));
  api.post('/plans', async (c) => json(c, await d.plans.create((await body(c)) as never), 201));
  api.get('/plans/:id', async (c) => json(c, await d.plans.get(c.req.param('id'))));
  api.patch('/plans/:id', async (c) => json(c, await d.plans.update(c.req.param('id'), (await body(c)) as never)));
  api.post('/plans/:id/default', async (c) => json(c, await d.plans.setDefault(c.req.param('id'))));
  api.delete('/plans/:id', async (c) => {
    await d.plans.delete(c.req.param('id'));
    return json(c, { id: c.req.param('id'), deleted: true });
  });

  // --- api keys (the key itself is in the create answer only)
  api.get('/keys', async (c) => {
    const active = c.req.query('active');
    return list(
      c,
      await d.keys.list({
        ...opt('userId', c.req.query('user_id')),
        ...(active === 'true' ? { includeInactive: false } : {}),
        ...opt('limit', intParam(c, 'limit')),
        ...opt('cursor', c.req.query('cursor')),
      }),
    );
  });
  api.post('/keys', async (c) => {
    const { apiKey, key } = await d.keys.create((await body(c)) as never);
    return json(c, { ...apiKey, key }, 201);
  });
  api.get('/keys/:id', async (c) => json(c, await d.keys.get(c.req.param('id'))));
  api.post('/keys/:id/revoke', async (c) => json(c, await d.keys.revoke(c.req.param('id'))));
  api.delete('/keys/:id', async (c) => json(c, await d.keys.revoke(c.req.param('id'))));

  // --- routes
  api.get('/routes', async (c) => json(c, { data: await d.routes.list() }));
  api.post('/routes', async (c) => json(c, await d.routes.create((await body(c)) as never), 201));
  api.get('/routes/:id', async (c) => json(c, await d.routes.get(c.req.param('id'))));
  api.patch('/routes/:id', async (c) => json(c, await d.routes.update(c.req.param('id'), (await body(c)) as never)));
  api.delete('/routes/:id', async (c) => {
    await d.routes.delete(c.req.param('id'));
    return json(c, { id: c.req.param('id'), deleted: true });
  });

  // --- usage
  api.get('/usage', async (c) => {
    const month = c.req.query('month') || monthOf(new Date());
    const userId = c.req.query('user_id');
    const keyId = c.req.query('key_id');
    if (keyId) return json(c, { keyId, ...(await d.usage.forKey(keyId, month)) });
    if (userId) {
      const user = await d.users.get(userId);
      const plan = await d.plans.get(user.planId);
      const summary = await d.usage.forUser(userId, month);
      const limit = plan.requestsPerMonth;
      return json(c, {
        userId,
        ...summary,
        quota: { limit, remaining: limit === null ? null : Math.max(0, limit - summary.totals.requests), resetsAt: monthBounds(month).end },
      });
    }
    return json(c, { month, data: await d.usage.byUser(month) });
  });
  api.get('/usage/minutes', async (c) => {
    const to = dateParam(c, 'to', new Date());
    const from = dateParam(c, 'from', new Date(to.getTime() - 60 * 60_000));
    return json(c, {
      data: await d.usage.minutes({ ...opt('userId', c.req.query('user_id')), ...opt('keyId', c.req.query('key_id')), from, to }),
    });
  });
  // All traffic of a window (default the last hour): per-minute requests, errors and added latency p50/p99, top routes and keys.
  api.get('/usage/traffic', async (c) => {
    const to = dateParam(c, 'to', new Date());
    const from = dateParam(c, 'from', new Date(to.getTime() - 60 * 60_000));
    return json(c, await d.traffic.overview({ from, to, ...opt('limit', intParam(c, 'limit')) }));
  });

  api.onError((err, c) => apiErrorResponse(c, err, logger, 'admin API'));
  return api;
}
