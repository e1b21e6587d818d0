import { defineConfig } from 'vitest/config';

// Pebble issues certificates in-process but validates challenges over real HTTP: allow for a busy machine.
export default defineConfig({ test: { include: ['test/**/*.test.ts'], testTimeout: 60_000, hookTimeout: 60_000 } });
