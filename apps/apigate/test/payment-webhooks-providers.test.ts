import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import {
  createPaymentWebhookApp,
  CustomerBilling,
  openStore,
  PaymentInbox,
  PaymentProcessor,
  type PaymentWorker,
  paymentWebhookPath,
  type RunningServer,
  type Store,
  startPaymentWorker,
  startServer,
} from '@apigate/gateway';
import { type AnyProviderDefinition, type PaymentFeatures, type PaymentProvider, type QueueProvider, silentLogger } from '@apigate/kernel';
import lemonsqueezy from '@apigate/provider-lemonsqueezy';
import { API_KEY as LEMON_KEY, STORE_ID } from '@apigate/provider-lemonsqueezy/testing';
import memoryQueue from '@apigate/provider-memory-queue';
import paddle from '@apigate/provider-paddle';
import { API_KEY as PADDLE_KEY } from '@apigate/provider-paddle/testing';
import stripe from '@apigate/provider-stripe';
import { SECRET_KEY as STRIPE_KEY } from '@apigate/provider-stripe/testing';
import { createForTest } from '@apigate/provider-testkit';
import { describe, expect, it, vi } from 'vitest';
import { tempDir } from './helpers.js';
import { usePaymentFakes } from './payment-fakes.js';

/**
 * Each real payment provider, built against the local stand-in its own tests use, behind the
 * gateway's webhook route, inbox and worker on a listening server: webhooks signed exactly as the
 * provider documents are stored, applied and refused as they should be.
 */
type Body = Record<string, unknown>;
interface Signed {
  body: string;
  headers: Record<string, string>;
}
interface Case {
  name: 'stripe' | 'paddle' | 'lemonsqueezy';
  def: AnyProviderDefinition;
  settings: () => Record<string, unknown>;
  /** Pays the checkout on the stand-in; returns what the webhook body is built from. */
  pay: (sessionId: string) => { subscriptionId: string; orderId?: string };
  /** The provider's body for "this purchase started a subscription", with `id` as its event id. */
  body: (id: string, paid: { subscriptionId: string; orderId?: string }) => Body;
  /** Signs as the provider documents it. */
  sign: (body: string, secret?: string) => Signed;
  /** The same event as the other mode (test vs live) would send it, signed; and the error code it gets. */
  otherMode: (body: Body) => { signed: Signed; code: string };
}

const SECRETS = {
  stripe: 'whsec_apigateGatewayWebhookTest0123456',
  paddle: 'pdl_ntfset_01hzfakedestination00000_webhookSecretForTests',
  lemonsqueezy: 'lemon-signing-secret-gateway-0123',
};
const hmac = (secret: string, data: string) => createHmac('sha256', secret).update(data, 'utf8').digest('hex');
const paddleTime = (d: Date) => d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

const fakes = usePaymentFakes({ Pro: 2900 });

// Stripe: `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`; the key is sk_test_, so a live event is the other mode.
const signStripe = (body: string, secret = SECRETS.stripe): Signed => {
  const t = Math.floor(Date.now() / 1000);
  return { body, headers: { 'content-type': 'application/json', 'stripe-signature': `t=${t},v1=${hmac(secret, `${t}.${body}`)}` } };
};
// Paddle: `Paddle-Signature: ts=<unix>;h1=<hex HMAC-SHA256 of "<ts>:<body>">`; no mode in the body, per-environment secrets.
const signPaddle = (body: string, secret = SECRETS.paddle): Signed => {
  const ts = Math.floor(Date.now() / 1000);
  return { body, headers: { 'content-type': 'application/json', 'paddle-signature': `ts=${ts};h1=${hmac(secret, `${ts}:${body}`)}` } };
};
// LemonSqueezy: `X-Signature: <hex HMAC-SHA256 of the body>`; `meta.test_mode` says the mode.
const signLemon = (body: string, secret = SECRETS.lemonsqueezy): Signed => ({
  body,
  headers: {
    'content-type': 'application/json',
    'x-event-name': String((JSON.parse(body) as { meta: { event_name: string } }).meta.event_name),
    'x-signature': hmac(secret, body),
  },
});

const CASES: Case[] = [
  {
    name: 'stripe',
    def: stripe as AnyProviderDefinition,
    settings: () => ({ apiKey: STRIPE_KEY, webhookSecret: SECRETS.stripe, baseUrl: fakes.stripe.url }),
    pay: (id) => fakes.stripe.completeCheckout(id),
    body: (id, paid) =>
      fakes.stripe.eventJson({
        id,
        type: 'customer.subscription.created',
        created: Math.floor(Date.now() / 1000),
        object: fakes.stripe.subscriptionJson(paid.subscriptionId),
      }) as Body,
    sign: signStripe,
    otherMode: (body) => ({
      signed: signStripe(JSON.stringify({ ...body, id: `${body.id}_live`, livemode: true })),
      code: 'WEBHOOK_MODE_MISMATCH',
    }),
  },
  {
    name: 'paddle',
    def: paddle as AnyProviderDefinition,
    settings: () => ({ apiKey: PADDLE_KEY, webhookSecret: SECRETS.paddle, baseUrl: fakes.paddle.url }),
    pay: (id) => ({ subscriptionId: String(fakes.paddle.completeTransaction(id).id) }),
    body: (id, paid) => ({
      event_id: id,
      event_type: 'subscription.created',
      occurred_at: paddleTime(new Date()),
      notification_id: `ntf_01${randomBytes(12).toString('hex')}`,
      data: fakes.paddle.subscriptions.get(paid.subscriptionId),
    }),
    sign: signPaddle,
    otherMode: (body) => ({
      signed: signPaddle(
        JSON.stringify({ ...body, event_id: `${body.event_id}_sbx` }),
        'pdl_ntfset_01hzsandboxdestination000_otherEnvironmentSecret',
      ),
      code: 'WEBHOOK_SIGNATURE_INVALID',
    }),
  },
  {
    name: 'lemonsqueezy',
    def: lemonsqueezy as AnyProviderDefinition,
    settings: () => ({ apiKey: LEMON_KEY, storeId: STORE_ID, webhookSecret: SECRETS.lemonsqueezy, baseUrl: fakes.lemon.url }),
    pay: (id) => fakes.lemon.completeCheckout(id),
    // The order does not name its subscription: the worker looks it up (a provider API call after the 200).
    body: (id, paid) => ({
      meta: { event_name: 'order_created', test_mode: true, webhook_id: id },
      data: fakes.lemon.db.orders!.get(paid.orderId!),
    }),
    sign: signLemon,
    otherMode: (body) => ({
      signed: signLemon(
        JSON.stringify({
          ...body,
          meta: { ...(body.meta as Body), webhook_id: `${(body.meta as Body).webhook_id}_live`, test_mode: false },
        }),
      ),
      code: 'WEBHOOK_MODE_MISMATCH',
    }),
  },
];

async function setup(c: Case) {
  const store: Store = await openStore({ dataDir: tempDir(`webhooks-${c.name}`) });
  const { provider } = await createForTest(c.def, c.settings());
  const payment = provider as PaymentProvider;
  const { provider: queue } = await createForTest(memoryQueue);
  const processorOpts = { store, logger: silentLogger() };
  const billing = new CustomerBilling({
    ...processorOpts,
    providerName: c.name,
    payment,
    features: c.def.features as PaymentFeatures,
    applier: new PaymentProcessor(processorOpts),
  });
  const worker: PaymentWorker = startPaymentWorker(queue as QueueProvider, { ...processorOpts, providerName: c.name, payment });
  const path = paymentWebhookPath(c.name, c.def.features as PaymentFeatures);
  // The route as createHttpApp mounts it at `path`, served here at the root of its own server.
  const app = createPaymentWebhookApp({ providerName: c.name, payment, queue: queue as QueueProvider, store, logger: silentLogger() });
  const server: RunningServer = await startServer({ app, port: 0, host: '127.0.0.1' });
  const d = store.domain;
  await d.plans.create({ name: 'Free', isDefault: true });
  const pro = await d.plans.create({ name: 'Pro', priceCents: 2900 });
  const user = await d.users.create({ email: `ada-webhooks-${c.name}-${randomUUID().slice(0, 8)}@example.com`, name: 'Ada' });
  const inbox = new PaymentInbox(store);
  const post = (s: Signed) => fetch(`${server.url}/`, { method: 'POST', headers: s.headers, body: s.body });
  const close = async () => {
    await server.close();
    await worker.close();
    await (queue as QueueProvider).close();
    await payment.close();
    await store.close();
  };
  return { store, billing, user, pro, inbox, post, path, close, planOf: async () => (await d.users.get(user.id)).planId };
}

describe.each(CASES)('payment webhooks of $name (its stand-in) through the gateway route', (c) => {
  it('a signed event is stored and applied by the worker; a repeat is a duplicate; tampered and other-mode events are refused', async () => {
    const h = await setup(c);
    try {
      expect(h.path).toBe(`/webhooks/${c.name}`);
      // The gateway's checkout makes the customer (and its mapping) and the plan's price.
      const { sessionId } = await h.billing.checkout(h.user, { plan: 'Pro', returnBase: 'https://api.example.com' });
      const paid = c.pay(sessionId);
      const eventId = c.name === 'paddle' ? `evt_01${randomBytes(12).toString('hex')}` : `evt_${randomUUID()}`;
      const body = c.body(eventId, paid);
      const signed = c.sign(JSON.stringify(body));

      const res = await h.post(signed);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ received: true, duplicate: false });
      await vi.waitFor(async () => expect((await h.inbox.find(c.name, eventId))?.status).toBe('applied'), {
        timeout: 15_000,
        interval: 50,
      });
      expect(await h.planOf()).toBe(h.pro.id);
      const sub = (await h.store.domain.subscriptions.listForUser(h.user.id))[0]!;
      expect(sub).toMatchObject({ provider: c.name, externalSubscriptionId: paid.subscriptionId, status: 'active', planId: h.pro.id });

      expect(await (await h.post(signed)).json()).toEqual({ received: true, duplicate: true });

      // One byte more inside the signed JSON (still the same JSON): the signature covers the bytes.
      const tampered = await h.post({ ...signed, body: signed.body.replace(/^\{"/, '{ "') });
      expect(tampered.status).toBe(400);
      expect(((await tampered.json()) as { error: { code: string } }).error.code).toBe('WEBHOOK_SIGNATURE_INVALID');

      const other = c.otherMode(body);
      const refused = await h.post(other.signed);
      expect(refused.status).toBe(400);
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe(other.code);
      expect((await h.inbox.list({ provider: c.name })).items.map((r) => r.eventId)).toEqual([eventId]);
    } finally {
      await h.close();
    }
  });
});
