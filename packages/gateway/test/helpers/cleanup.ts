import { afterEach } from 'vitest';

/**
 * Registers an afterEach that undoes, newest first, whatever the test deferred: servers,
 * providers, recorders. Call once at the top of a test file.
 */
export function cleanupAfterEach() {
  const fns: (() => unknown)[] = [];
  afterEach(async () => {
    while (fns.length) await fns.pop()!();
  });
  return {
    defer(...fn: (() => unknown)[]): void {
      fns.push(...fn);
    },
    /** Awaits a resource and closes it after the test. */
    async use<T extends { close(): Promise<unknown> }>(p: T | Promise<T>): Promise<T> {
      const t = await p;
      fns.push(() => t.close());
      return t;
    },
  };
}
