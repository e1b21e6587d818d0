import type { QueueProvider } from '@apigate/kernel';
import { type Context, Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { toWire } from '../domain/wire.js';
import type { Store } from '../domain/open-store.js';
import { PAYMENT_EVENT_STATUSES, type PaymentEventStatus, PaymentInbox, type RecordedPaymentEvent } from './events.js';
import { findPaymentEvent, replayPaymentEvent } from './worker.js';

const json = (c: Context, value: unknown, status: ContentfulStatusCode = 200) => c.json(toWire(value) as object, status);

/** Largest stored body `show` returns, in characters. */
const SHOW_BODY_LIMIT = 64 * 1024;

/** One inbox row as the admin API and `apigate payments events show` give it: the row, its body and its header names. */
export async function paymentEventDetail(
  inbox: PaymentInbox,
  row: RecordedPaymentEvent,
): Promise<RecordedPaymentEvent & { body: string | null; headerNames: string[] }> {
  const input = await inbox.input(row.provider, row.eventId);
  const text = input ? Buffer.from(input.rawBody).toString('utf8') : null;
  return {
    ...row,
    body: text !== null && text.length > SHOW_BODY_LIMIT ? `${text.slice(0, SHOW_BODY_LIMIT)}…` : text,
    headerNames: input ? Object.keys(input.headers).sort() : [],
  };
}

/** Checks a `status` filter (list): one of queued, applied, skipped, failed. */
export function parseEventStatus(raw: string | undefined): PaymentEventStatus | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (!(PAYMENT_EVENT_STATUSES as readonly string[]).includes(raw)) {
    throw new HTTPException(400, { message: `status: expected one of ${PAYMENT_EVENT_STATUSES.join(', ')}` });
  }
  return raw as PaymentEventStatus;
}

/**
 * /admin/payments/events (behind the admin token): the payment webhook inbox. `GET /` lists rows
 * (`status`, `provider`, `limit`, `cursor`), `GET /:id` shows one with its stored body,
 * `POST /:id/replay` sends a failed one back to the worker (`provider` query when an id is ambiguous).
 * With `queue` the replay is published at once; without, the worker's sweep takes it.
 */
export function createPaymentEventsAdmin(o: { store: Store; queue?: Pick<QueueProvider, 'publish'> | undefined }): Hono {
  const inbox = new PaymentInbox(o.store);
  const api = new Hono();
  api.get('/', async (c) => {
    const limit = c.req.query('limit');
    if (limit !== undefined && !/^\d+$/.test(limit)) throw new HTTPException(400, { message: 'limit: expected a whole number' });
    const status = parseEventStatus(c.req.query('status'));
    const page = await inbox.list({
      ...(status ? { status } : {}),
      ...(c.req.query('provider') ? { provider: c.req.query('provider')! } : {}),
      ...(limit !== undefined ? { limit: Number(limit) } : {}),
      ...(c.req.query('cursor') ? { cursor: c.req.query('cursor')! } : {}),
    });
    return json(c, { data: page.items, nextCursor: page.cursor ?? null });
  });
  api.get('/:id', async (c) =>
    json(c, await paymentEventDetail(inbox, await findPaymentEvent(inbox, c.req.param('id'), c.req.query('provider') || undefined))),
  );
  api.post('/:id/replay', async (c) =>
    json(c, await replayPaymentEvent({ inbox, queue: o.queue }, c.req.param('id'), c.req.query('provider') || undefined)),
  );
  return api;
}
