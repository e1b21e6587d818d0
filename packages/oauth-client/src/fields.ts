import { fields, z } from '@apigate/kernel';

/** The config fields every OAuth provider has, with the same meaning and limits. */
export const clientFields = {
  clientId: z.string({ error: 'is required' }).min(1, 'is required').describe('the client id the identity provider issued'),
  clientSecret: z.string({ error: 'is required' }).min(1, 'is required').describe('the client secret the identity provider issued'),
  /** Per HTTP request to the identity provider. */
  timeoutMs: fields.int({ min: 100 }).default(10_000),
};
