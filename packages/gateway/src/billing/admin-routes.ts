import { type Context, Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { toWire } from '../domain/wire.js';
import type { Store } from '../domain/open-store.js';
import { BillingError, type CustomerBilling } from './customer-billing.js';
import { usageReportsFor } from './usage-report.js';

const json = (c: Context, value: unknown, status: ContentfulStatusCode = 200) => c.json(toWire(value) as object, status);

/**
 * /admin/subscriptions (behind the admin token): list and show stored subscriptions, cancel one
 * (at period end, or now with `{"now": true}` where the provider allows), sync from the provider,
 * and report overage usage now. The same operations as `apigate subscriptions ...`.
 */
export function createSubscriptionAdmin(o: { store: Store; billing: CustomerBilling | undefined }): Hono {
  const d = o.store.domain;
  const api = new Hono();
  const billing = (): CustomerBilling => {
    if (o.billing) return o.billing;
    throw new BillingError(
      503,
      'PAYMENTS_UNAVAILABLE',
      'no payment provider is selected (PAYMENT_PROVIDER=none); set PAYMENT_PROVIDER or payment.provider',
    );
  };
  const readJson = async (c: Context): Promise<Record<string, unknown>> => {
    if ((c.req.header('content-length') ?? '0') === '0' && !c.req.header('transfer-encoding')) return {};
    const v = await c.req.json().catch(() => undefined);
    if (v === null || typeof v !== 'object' || Array.isArray(v))
      throw new HTTPException(400, { message: 'request body: expected a JSON object' });
    return v as Record<string, unknown>;
  };

  api.get('/', async (c) => {
    const limit = c.req.query('limit');
    if (limit !== undefined && !/^\d+$/.test(limit)) throw new HTTPException(400, { message: 'limit: expected a whole number' });
    const page = await d.subscriptions.list({
      ...(c.req.query('user_id') ? { userId: c.req.query('user_id')! } : {}),
      ...(c.req.query('status') ? { status: c.req.query('status')! } : {}),
      ...(c.req.query('provider') ? { provider: c.req.query('provider')! } : {}),
      ...(limit !== undefined ? { limit: Number(limit) } : {}),
      ...(c.req.query('cursor') ? { cursor: c.req.query('cursor')! } : {}),
    });
    return json(c, { data: page.items, nextCursor: page.cursor ?? null });
  });

  api.post('/sync', async (c) => {
    const b = await readJson(c);
    if (b.user_id !== undefined && typeof b.user_id !== 'string') throw new HTTPException(400, { message: 'user_id: expected a user id' });
    return json(c, await billing().reconcile(b.user_id !== undefined ? { userId: b.user_id as string } : {}));
  });

  api.post('/usage-report', async (c) => json(c, await billing().reportOverage()));

  api.get('/:id', async (c) => {
    const sub = await d.subscriptions.get(c.req.param('id'));
    return json(c, { ...sub, usageReports: await usageReportsFor(o.store, sub.id) });
  });

  api.post('/:id/cancel', async (c) => {
    const b = await readJson(c);
    if (b.now !== undefined && typeof b.now !== 'boolean') throw new HTTPException(400, { message: 'now: expected true or false' });
    const sub = await d.subscriptions.get(c.req.param('id'));
    return json(c, await billing().cancelSubscription(sub, { now: b.now === true }));
  });

  return api;
}
