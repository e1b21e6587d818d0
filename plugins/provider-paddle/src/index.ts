import { defineProvider, fields, z } from '@apigate/kernel';
import { BASE_URLS, PaddlePayment } from './paddle.js';

export { BASE_URLS, type PaddleConfig, PaddlePayment } from './paddle.js';
export { CUSTOM, planPriceId, SIGNATURE_HEADER, toSubscriptionState, verifySignature } from './webhook.js';

const TAX_CATEGORIES = [
  'standard',
  'saas',
  'digital-goods',
  'ebooks',
  'implementation-services',
  'professional-services',
  'software-programming-services',
  'training-services',
  'website-hosting',
] as const;

/** Keys made since May 2025 say which environment they belong to; older (legacy) keys do not. */
const keyEnvironment = (key: string): 'production' | 'sandbox' | undefined =>
  key.startsWith('pdl_sdbx_') ? 'sandbox' : key.startsWith('pdl_live_') ? 'production' : undefined;

export const config = z
  .object({
    apiKey: z.string().min(1, 'is required').describe('a Paddle Billing API key (pdl_live_apikey_… or pdl_sdbx_apikey_…)'),
    webhookSecret: z
      .string()
      .min(1, 'is required')
      .describe("the endpoint secret key of Paddle's notification destination for this gateway (pdl_ntfset_…)"),
    vendorId: z
      .string()
      .regex(/^\d+$/, 'expected digits')
      .optional()
      .describe('your Paddle seller ID (digits); shown in health output only'),
    environment: z.enum(['production', 'sandbox'], { error: 'expected production or sandbox' }).optional(),
    baseUrl: z
      .url({ protocol: /^https?$/, error: 'expected an http(s) URL' })
      .optional()
      .describe('the Paddle API base URL, to reach it through a proxy'),
    checkoutUrl: z
      .url({ protocol: /^https$/, error: 'expected an https URL' })
      .optional()
      .describe('the page on an approved domain that opens Paddle.js checkouts; default: the payment link set in Paddle'),
    taxCategory: z.enum(TAX_CATEGORIES, { error: `expected one of ${TAX_CATEGORIES.join(', ')}` }).default('standard'),
    timeoutMs: fields.int({ min: 100 }).default(30_000),
    webhookToleranceSeconds: fields.int({ min: 5, max: 3600 }).default(300),
  })
  .superRefine((c, ctx) => {
    const fromKey = keyEnvironment(c.apiKey);
    if (c.environment && fromKey && fromKey !== c.environment) {
      ctx.addIssue({
        code: 'custom',
        path: ['environment'],
        message: `the API key is a ${fromKey} key; set ${fromKey} or use a ${c.environment} key`,
      });
    }
  });

export type PaddleSettings = z.infer<typeof config>;

export default defineProvider({
  capability: 'payment',
  name: 'paddle',
  description: 'Paddle Billing (API v1) through the official @paddle/paddle-node-sdk',
  config,
  env: {
    apiKey: 'PADDLE_API_KEY',
    webhookSecret: 'PADDLE_WEBHOOK_SECRET',
    vendorId: 'PADDLE_VENDOR_ID',
    environment: 'PADDLE_ENVIRONMENT',
    baseUrl: 'PADDLE_BASE_URL',
    checkoutUrl: 'PADDLE_CHECKOUT_URL',
    taxCategory: 'PADDLE_TAX_CATEGORY',
    timeoutMs: 'PADDLE_TIMEOUT_MS',
    webhookToleranceSeconds: 'PADDLE_WEBHOOK_TOLERANCE_SECONDS',
  },
  secrets: ['apiKey', 'webhookSecret'],
  features: { meteredBilling: false, customerPortal: true, invoices: true, webhookPath: '/webhooks/paddle' },
  create: (c) => {
    const environment = c.environment ?? keyEnvironment(c.apiKey) ?? 'production';
    return new PaddlePayment({ ...c, environment, baseUrl: (c.baseUrl ?? BASE_URLS[environment]).replace(/\/+$/, '') });
  },
});
