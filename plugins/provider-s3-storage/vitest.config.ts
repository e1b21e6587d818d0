import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // s3rver runs in-process and multipart tests move >10 MiB: generous for a loaded 2-core machine.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // The SDK warns once per process that releases after January 2027 need Node 22; noise in test output.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});
