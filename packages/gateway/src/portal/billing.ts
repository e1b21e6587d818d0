import { z } from '@apigate/kernel';
import { type Context, Hono } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { BillingError, type CustomerBilling } from '../billing/customer-billing.js';
import type { User } from '../domain/users.js';
import { parseInput } from '../domain/validate.js';
import { toWire } from '../domain/wire.js';
import { body } from '../http/request.js';

type Env = { Variables: { user: User } };

const planSchema = z
  .object({
    plan: z.string({ error: 'expected a plan id or name' }).min(1, { error: 'expected a plan id or name' }),
    interval: z.enum(['month', 'year'], { error: 'expected month or year' }).optional(),
  })
  .strict();
const emptySchema = z.object({}).strict();

export interface PortalBillingOptions {
  /** Undefined when no payment provider is selected: every route answers 503 saying so. */
  billing: CustomerBilling | undefined;
  /** The gateway's public base URL (checkout and portal return links), as the portal's email links use. */
  publicBase: (c: Context) => string;
}

/**
 * /portal/api/billing, mounted by the portal API behind its session and CSRF checks: checkout,
 * the billing overview, the provider's customer portal, plan change and cancel at period end.
 */
export function createPortalBilling(o: PortalBillingOptions): Hono<Env> {
  const app = new Hono<Env>();
  const json = (c: Context, value: unknown, status: ContentfulStatusCode = 200) => c.json(toWire(value) as object, status);
  const billing = (): CustomerBilling => {
    if (o.billing) return o.billing;
    throw new BillingError(
      503,
      'PAYMENTS_UNAVAILABLE',
      'billing: no payment provider is selected, so plans cannot be bought here; contact the API provider',
    );
  };
  // An empty body is fine for the routes that take none.
  const optionalBody = async (c: Context) =>
    (c.req.header('content-length') ?? '0') === '0' && !c.req.header('transfer-encoding') ? {} : body(c);

  app.get('/', async (c) => json(c, await billing().overview(c.get('user'))));

  app.post('/checkout', async (c) => {
    const v = parseInput(planSchema, await body(c), 'checkout');
    const b = billing();
    const r = await b.checkout(c.get('user'), {
      plan: v.plan,
      ...(v.interval ? { interval: v.interval } : {}),
      returnBase: o.publicBase(c),
    });
    // The plan changes when the provider's signed event arrives, not when the customer comes back.
    return json(c, { url: r.url, sessionId: r.sessionId, provider: b.providerName });
  });

  app.post('/portal', async (c) => {
    parseInput(emptySchema, await optionalBody(c), 'billing portal');
    const b = billing();
    return json(c, await b.portal(c.get('user'), `${o.publicBase(c)}/portal/billing`));
  });

  app.post('/change', async (c) => {
    const v = parseInput(planSchema, await body(c), 'change');
    const sub = await billing().change(c.get('user'), { plan: v.plan, ...(v.interval ? { interval: v.interval } : {}) });
    return json(c, { subscription: sub });
  });

  app.post('/cancel', async (c) => {
    parseInput(emptySchema, await optionalBody(c), 'cancel');
    const sub = await billing().cancel(c.get('user'));
    return json(c, { subscription: sub });
  });

  return app;
}
