import { defineProvider, fields, z } from '@apigate/kernel';
import { StripePayment } from './provider.js';

export { isRetryableStripeError, toStripeProviderError } from './errors.js';
export { mapStatus, normaliseEvent, subscriptionState } from './normalise.js';
export { productIdFor, type StripeConfig, StripePayment, WEBHOOK_TOLERANCE_SECONDS } from './provider.js';

export const config = z.object({
  apiKey: z
    .string()
    .regex(/^(sk|rk)_(live|test)_\S+$/, 'not a Stripe secret key')
    .describe('a secret key (sk_live_…, sk_test_…) or a restricted key (rk_…) from Dashboard → Developers → API keys'),
  webhookSecret: z
    .string()
    .regex(/^whsec_\S+$/, 'not a webhook signing secret')
    .describe('the signing secret (whsec_…) of the Stripe webhook endpoint that points at /webhooks/stripe'),
  /** Tests and stripe-mock point it at a local server. */
  baseUrl: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }).default('https://api.stripe.com'),
  meterEventName: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,100}$/, 'expected letters, digits, _ . or -, at most 100')
    .default('apigate_api_requests')
    .describe('the event name of the billing meter metered prices use'),
  timeoutMs: fields.int({ min: 100 }).default(30_000),
  maxNetworkRetries: fields.int({ min: 0, max: 10 }).default(2),
});

export default defineProvider({
  capability: 'payment',
  name: 'stripe',
  description: 'Stripe Billing: subscriptions, metered usage, customer portal and signed webhooks (official stripe SDK)',
  config,
  env: {
    apiKey: 'STRIPE_API_KEY',
    webhookSecret: 'STRIPE_WEBHOOK_SECRET',
    baseUrl: 'STRIPE_BASE_URL',
    meterEventName: 'STRIPE_METER_EVENT_NAME',
    timeoutMs: 'STRIPE_TIMEOUT_MS',
    maxNetworkRetries: 'STRIPE_MAX_NETWORK_RETRIES',
  },
  secrets: ['apiKey', 'webhookSecret'],
  features: { meteredBilling: true, customerPortal: true, invoices: true, webhookPath: '/webhooks/stripe' },
  create: (cfg) => new StripePayment(cfg),
});
