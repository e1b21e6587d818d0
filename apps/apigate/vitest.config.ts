import { defineConfig } from 'vitest/config';

// CLI and packaging tests spawn real processes; give them room on a loaded 2-core machine.
export default defineConfig({ test: { include: ['test/**/*.test.ts'], testTimeout: 60_000, hookTimeout: 300_000 } });
