import { describeStorageProvider, createForTest } from '@apigate/provider-testkit';
import { afterAll, beforeAll } from 'vitest';
import provider from '../src/index.js';
import { type LocalS3, startS3rver } from './s3rver.js';

let s3: LocalS3;
beforeAll(async () => {
  s3 = await startS3rver();
});
afterAll(() => s3?.close());

describeStorageProvider({
  // Every instance talks to the same bucket, so `create` also serves as `reopen` for the persistence test.
  create: async () => (await createForTest(provider, s3.config)).provider,
  features: provider.features!,
  // Past the default 8 MiB part size, so the suite's large round trip goes multipart.
  largeObjectBytes: 9 * 1024 * 1024 + 12_345,
});
