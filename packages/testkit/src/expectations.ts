import { randomUUID } from 'node:crypto';
import { type Health, isRetryable, type ProviderInstance } from '@apigate/kernel';
import { afterEach, beforeEach, expect, it } from 'vitest';

/** Short unique marker so a suite can find its own message in a shared inbox. */
export const token = (): string => randomUUID().slice(0, 8);

/** How long suites wait for something to arrive at a real backend (generous: CI machines are busy). */
export const ARRIVAL_TIMEOUT_MS = 15_000;

/** Awaits `p`, expects it to reject, and returns the error. */
export async function rejectionOf(p: Promise<unknown> | (() => Promise<unknown>), what: string): Promise<Error> {
  let error: unknown;
  let resolved = false;
  try {
    await (typeof p === 'function' ? p() : p);
    resolved = true;
  } catch (e) {
    error = e;
  }
  expect(resolved, `${what} should be rejected, but it resolved`).toBe(false);
  expect(error, `${what} should reject with an Error`).toBeInstanceOf(Error);
  return error as Error;
}

/** Expects a rejection the kernel classifies as final: a retry cannot help with bad input. */
export async function expectFinalRejection(p: Promise<unknown> | (() => Promise<unknown>), what: string): Promise<Error> {
  const err = await rejectionOf(p, what);
  expect(isRetryable(err), `${what} should fail without retry, got a retryable error: ${err.message}`).toBe(false);
  expect(err.message.trim(), `${what} should say what is wrong`).not.toBe('');
  return err;
}

/**
 * A fresh instance per test: created in beforeEach, closed in afterEach. Call inside a describe;
 * returns the accessor tests use. `beforeClose` runs first, e.g. to delete what the test wrote
 * on a shared backend.
 */
export function instancePerTest<T extends ProviderInstance>(
  suite: string,
  create: () => T | Promise<T>,
  opts: { beforeClose?: (instance: T) => Promise<void> } = {},
): () => T {
  let instance: T | undefined;
  beforeEach(async () => {
    instance = await create();
  });
  afterEach(async () => {
    const current = instance;
    instance = undefined;
    try {
      if (current && opts.beforeClose) await opts.beforeClose(current);
    } finally {
      await current?.close();
    }
  });
  return () => {
    if (!instance) throw new Error(`${suite} suite: no provider instance (create() failed?)`);
    return instance;
  };
}

/** The check/close part every capability shares. */
export function lifecycleTests(provider: () => ProviderInstance): void {
  it('check() reports connected with a latency', async () => {
    const health: Health = await provider().check(AbortSignal.timeout(10_000));
    expect(health.status).toBe('connected');
    expect(health.latencyMs).toBeGreaterThanOrEqual(0);
  });

  it('close() can be called twice', async () => {
    await provider().close();
    await expect(provider().close()).resolves.toBeUndefined();
  });
}
