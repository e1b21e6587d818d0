import { defineProvider, fields, z } from '@apigate/kernel';
import { LemonSqueezyPayment } from './lemonsqueezy.js';

export { LemonClient } from './client.js';
export { type LemonConfig, LemonSqueezyPayment } from './lemonsqueezy.js';
export { CUSTOM, identity, SIGNATURE_HEADER, toSubscriptionState, verifySignature } from './webhook.js';

export const config = z.object({
  apiKey: z.string().min(1, 'is required').describe('a LemonSqueezy API key (Settings > API; test-mode and live-mode keys are separate)'),
  storeId: z.string().regex(/^\d+$/, 'expected digits').describe('the numeric id of the LemonSqueezy store to sell from'),
  webhookSecret: z
    .string()
    .min(6, 'is too short')
    .max(40, 'is too long')
    .describe("the signing secret of the store's webhook for this gateway (6-40 characters)"),
  baseUrl: z
    .url({ protocol: /^https?$/, error: 'expected an http(s) URL' })
    .default('https://api.lemonsqueezy.com')
    .describe('the LemonSqueezy API base URL, to reach it through a proxy'),
  timeoutMs: fields.int({ min: 100 }).default(30_000),
  mode: z
    .enum(['test', 'live'], { error: 'expected test or live' })
    .optional()
    .describe('the store mode of the API key; webhooks of the other mode are refused (unset: learned from the objects the API returns)'),
});

export type LemonSettings = z.infer<typeof config>;

export default defineProvider({
  capability: 'payment',
  name: 'lemonsqueezy',
  description: 'LemonSqueezy (JSON:API over undici; catalogue made in the LemonSqueezy dashboard)',
  config,
  env: {
    apiKey: 'LEMON_API_KEY',
    storeId: 'LEMON_STORE_ID',
    webhookSecret: 'LEMON_WEBHOOK_SECRET',
    baseUrl: 'LEMON_BASE_URL',
    timeoutMs: 'LEMON_TIMEOUT_MS',
    mode: 'LEMON_MODE',
  },
  secrets: ['apiKey', 'webhookSecret'],
  features: {
    meteredBilling: false,
    customerPortal: true,
    checkoutTrials: false,
    immediateCancel: false,
    invoices: true,
    webhookPath: '/webhooks/lemonsqueezy',
  },
  create: (c, ctx) => new LemonSqueezyPayment({ ...c, baseUrl: c.baseUrl.replace(/\/+$/, '') }, ctx.logger),
});
