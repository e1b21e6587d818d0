import { isRetryable, type ProviderInstance, ProviderError } from '@apigate/kernel';
import { afterEach, beforeEach, describe, expect } from 'vitest';

export interface FailingServerContext<S, A, P> {
  /** The server of the current test, started before it. */
  server(): S;
  /** An instance that talks to `address` (default: this test's server); closed after the test. */
  make(address?: A): Promise<P>;
  /**
   * Awaits `call`, expects it to reject with a `ProviderError` (the kernel's wrapper, through
   * `createForTest`) and returns the error; `what` says what the server did, for the message.
   */
  failure(call: Promise<unknown>, what: string): Promise<ProviderError>;
}

/** Expects the kernel to call `err` retryable (a busy or unreachable server) or final (a refusal). */
export function expectRetryable(err: Error, retryable: boolean, what: string): void {
  expect(isRetryable(err), `${what} must be ${retryable ? 'retryable' : 'final'}: ${err.message}`).toBe(retryable);
}

/**
 * The scaffold of a suite's failure tests against a server the suite controls (the notification
 * suite's HTTP receiver, the email suite's SMTP stub): a describe block that starts a fresh server
 * before each test and, after it, closes every instance the test made and then the server.
 */
export function describeFailingServer<S extends { close(): Promise<void> }, A, P extends ProviderInstance>(
  title: string,
  server: {
    start: () => Promise<S>;
    /** Where instances talk to by default: the server's URL, or its host and port. */
    address: (server: S) => A;
    create: (address: A) => P | Promise<P>;
  },
  tests: (ctx: FailingServerContext<S, A, P>) => void,
): void {
  describe(title, () => {
    let current: S | undefined;
    let instances: P[] = [];
    beforeEach(async () => {
      current = await server.start();
    });
    afterEach(async () => {
      const made = instances;
      instances = [];
      try {
        await Promise.all(made.map((p) => p.close()));
      } finally {
        await current?.close();
        current = undefined;
      }
    });
    const serverOf = (): S => {
      if (!current) throw new Error(`${title}: no server (called outside a test, or it failed to start)`);
      return current;
    };
    tests({
      server: serverOf,
      make: async (address = server.address(serverOf())) => {
        const p = await server.create(address);
        instances.push(p);
        return p;
      },
      failure: async (call, what) => {
        const outcome = await call.then(
          () => ({ resolved: true as const }),
          (error: unknown) => ({ resolved: false as const, error }),
        );
        expect(outcome.resolved, `the call resolved although ${what}`).toBe(false);
        const error = (outcome as { error?: unknown }).error;
        expect(error, 'the call should reject with a ProviderError (through createForTest)').toBeInstanceOf(ProviderError);
        return error as ProviderError;
      },
    });
  });
}
