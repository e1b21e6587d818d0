import { describeStorageProvider } from '@apigate/provider-testkit';
import provider from '../src/index.js';
import { type LocalS3, startS3rver } from './s3rver.js';

let s3: LocalS3 | undefined;

describeStorageProvider(provider, {
  beforeAll: async () => {
    s3 = await startS3rver();
  },
  afterAll: () => s3?.close(),
  // Every instance talks to the same bucket, so `create` also serves as `reopen` for the persistence test.
  config: () => s3!.config,
  // Past the default 8 MiB part size, so the suite's large round trip goes multipart.
  largeObjectBytes: 9 * 1024 * 1024 + 12_345,
});
