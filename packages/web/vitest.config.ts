import { defineConfig } from 'vitest/config';

// One browser for the whole run; the flows are long, so the timeouts are generous (CI runs every
// package's tests at once on two cores).
export default defineConfig({
  test: { include: ['test/**/*.test.ts'], testTimeout: 120_000, hookTimeout: 120_000, fileParallelism: false, expect: { poll: { timeout: 15_000 } } },
});
