import { defineConfig } from 'vitest/config';

// One browser for the whole run; the flows are long, so the per-test timeout is generous.
export default defineConfig({ test: { include: ['test/**/*.test.ts'], testTimeout: 120_000, hookTimeout: 120_000, fileParallelism: false } });
