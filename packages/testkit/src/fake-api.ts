import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { ProviderError } from '@apigate/kernel';
import { expect } from 'vitest';

/**
 * Helpers for tests that point a hosted-API provider (its official SDK or its HTTP client) at a
 * local server answering like the vendor's API.
 */

/** Listens on a free port of 127.0.0.1; `close` also drops keep-alive connections so it never waits on idle sockets. */
export async function listenLocally(server: Server): Promise<{ url: string; close: () => Promise<void> }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** `from` plus `count` billing units in UTC, the way vendors compute periods and trials (no month-end clamping). */
export function addPeriod(from: Date, unit: 'day' | 'week' | 'month' | 'year' | string, count: number): Date {
  const d = new Date(from);
  if (unit === 'day') d.setUTCDate(d.getUTCDate() + count);
  else if (unit === 'week') d.setUTCDate(d.getUTCDate() + 7 * count);
  else if (unit === 'month') d.setUTCMonth(d.getUTCMonth() + count);
  else if (unit === 'year') d.setUTCFullYear(d.getUTCFullYear() + count);
  else throw new Error(`addPeriod: unknown unit "${unit}"`);
  return d;
}

/**
 * Awaits `p`, expects it to reject with a ProviderError, and checks that none of `secrets` appears
 * anywhere in it (message, cause, nested fields). Returns the error for further checks.
 */
export async function providerErrorOf(p: Promise<unknown>, secrets: readonly string[]): Promise<ProviderError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'expected a ProviderError rejection').toBeInstanceOf(ProviderError);
  const text = inspect(err, { depth: 10 });
  for (const secret of secrets) expect(text, 'a secret leaked into the error').not.toContain(secret);
  return err as ProviderError;
}
