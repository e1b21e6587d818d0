import { describeError, type Logger } from '@apigate/kernel';
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { BillingError } from '../billing/customer-billing.js';
import { type DomainErrorKind, isDomainError } from '../domain/errors.js';
import { fromWire } from '../domain/wire.js';

// Request and answer helpers shared by the JSON APIs (admin/api.ts, portal/): bodies in snake_case,
// query parameters, and the `{ error: { code, message, field? } }` answer for any thrown error.

const STATUS: Record<DomainErrorKind, ContentfulStatusCode> = { invalid: 400, not_found: 404, conflict: 409 };

export const errorBody = (code: string, message: string, field?: string) => ({ error: { code, message, ...(field ? { field } : {}) } });

/** The JSON body as a plain object, keys converted from snake_case. */
export async function body(c: Context): Promise<Record<string, unknown>> {
  let v: unknown;
  try {
    v = await c.req.json();
  } catch {
    throw new HTTPException(400, { message: 'request body: expected a JSON object (Content-Type: application/json)' });
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v))
    throw new HTTPException(400, { message: 'request body: expected a JSON object' });
  return fromWire(v) as Record<string, unknown>;
}

export function intParam(c: Context, name: string): number | undefined {
  const raw = c.req.query(name);
  if (raw === undefined || raw === '') return undefined;
  if (!/^\d+$/.test(raw)) throw new HTTPException(400, { message: `${name}: expected a whole number` });
  return Number(raw);
}

export function dateParam(c: Context, name: string, fallback: Date): Date {
  const raw = c.req.query(name);
  if (raw === undefined || raw === '') return fallback;
  const d = new Date(raw);
  if (Number.isNaN(d.getTime())) throw new HTTPException(400, { message: `${name}: expected a date and time (ISO 8601)` });
  return d;
}

/**
 * The JSON answer for an error thrown by an API handler (admin and portal): domain errors and
 * 4xx by their status with the field at fault, anything else a 500 whose detail goes to the log only.
 */
export function apiErrorResponse(c: Context, err: Error, logger: Logger, api: string): Response {
  if (isDomainError(err)) return c.json(errorBody(err.code, err.message, err.field), STATUS[err.kind]);
  if (err instanceof BillingError) return c.json(errorBody(err.code, err.detail, err.field), err.status);
  if (err instanceof HTTPException && err.status < 500) {
    const field = /^([a-z_]+): /.exec(err.message)?.[1];
    return c.json(errorBody('INVALID_INPUT', err.message, field === 'request' ? undefined : field), err.status as ContentfulStatusCode);
  }
  logger.error({ method: c.req.method, path: c.req.path }, `${api} request failed: ${describeError(err)}`);
  return c.json(errorBody('INTERNAL', 'internal server error'), 500);
}
