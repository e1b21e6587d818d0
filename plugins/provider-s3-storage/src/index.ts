import { assertStoragePrefix, defineProvider, fields, z } from '@apigate/kernel';
import { S3Storage } from './s3-storage.js';

export { S3Storage, type S3StorageOptions } from './s3-storage.js';

const MiB = 1024 * 1024;

/** "apigate", "/apigate/" and "apigate/" all mean the folder "apigate/"; empty means the bucket root. */
const keyPrefix = z
  .string()
  .default('')
  .transform((v) => v.replace(/^\/+|\/+$/g, ''))
  .refine(
    (v) => {
      try {
        assertStoragePrefix(v);
        return true;
      } catch {
        return false;
      }
    },
    { error: 'expected a "/"-separated folder such as "apigate/uploads" (no "." or ".." segments, no control characters)' },
  )
  .transform((v) => (v ? `${v}/` : ''));

const config = z
  .object({
    bucket: z.string().min(1).describe('the name of an existing bucket'),
    region: z.string().min(1).default('us-east-1').describe('an AWS region such as us-east-1'),
    accessKeyId: z.string().optional().describe('an access key id, set together with S3_SECRET_KEY'),
    secretAccessKey: z.string().optional().describe('the secret for S3_ACCESS_KEY, set together with it'),
    endpoint: z
      .url({ protocol: /^https?$/ })
      .optional()
      .describe('an http(s) URL of an S3-compatible service; empty for AWS'),
    keyPrefix: keyPrefix.describe('a folder inside the bucket that holds every key'),
    partSizeMb: fields.int({ min: 5, max: 5120 }).default(8).describe('the multipart part size in MiB (5 to 5120)'),
    queueSize: fields.int({ min: 1, max: 32 }).default(4).describe('how many parts upload at once (1 to 32)'),
  })
  .superRefine((c, ctx) => {
    // One key without the other is a typo, not a request for the default credential chain.
    if (!!c.accessKeyId !== !!c.secretAccessKey) {
      ctx.addIssue({
        code: 'custom',
        path: [c.accessKeyId ? 'secretAccessKey' : 'accessKeyId'],
        message: 'is required when the other S3 key is set',
      });
    }
  });

export default defineProvider({
  capability: 'storage',
  name: 's3',
  description: 'AWS S3 or an S3-compatible service (streaming, multipart, presigned URLs)',
  config,
  env: {
    bucket: 'S3_BUCKET',
    region: 'S3_REGION',
    accessKeyId: 'S3_ACCESS_KEY',
    secretAccessKey: 'S3_SECRET_KEY',
    endpoint: 'S3_ENDPOINT',
  },
  secrets: ['accessKeyId', 'secretAccessKey'],
  features: { signedUrls: true, persistent: true },
  create: (c) =>
    new S3Storage({
      bucket: c.bucket,
      region: c.region,
      accessKeyId: c.accessKeyId,
      secretAccessKey: c.secretAccessKey,
      endpoint: c.endpoint,
      keyPrefix: c.keyPrefix,
      partSizeBytes: c.partSizeMb * MiB,
      queueSize: c.queueSize,
    }),
});
