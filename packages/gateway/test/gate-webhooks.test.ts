import { verifyWebhookSignature } from '@apigate/provider-webhook-notification';
import { describe, expect, it, vi } from 'vitest';
import { openStore, type WebhookEvent, WebhookDispatcher } from '../src/index.js';
import { WEBHOOK_QUEUE } from '../src/delivery/outbound-webhooks.js';
import { KEY_A } from './helpers.js';
import { cleanupAfterEach } from './helpers/cleanup.js';
import { domainStore } from './helpers/domain.js';
import { customer, recorder, startGate } from './helpers/gate.js';
import { memory as memoryQueue } from './helpers/queues.js';

const { defer, use } = cleanupAfterEach();

/** A dispatcher over a real store and the memory queue, with its worker running and fast retries. */
async function dispatcher(attempts = 3) {
  const { d } = await domainStore();
  const { queue, close } = await memoryQueue();
  const hooks = new WebhookDispatcher({ domain: d, queue, attempts, backoffMs: 5, timeoutMs: 5000 });
  const worker = hooks.start();
  defer(close, () => worker.close());
  return { d, queue, hooks };
}

const settled = async (d: Awaited<ReturnType<typeof dispatcher>>['d'], id: string) =>
  vi.waitFor(async () => {
    const row = await d.webhooks.getDelivery(id);
    expect(row.status).not.toBe('pending');
    return row;
  });

describe('outbound webhooks', () => {
  it('POSTs {id, type, created_at, data} signed the way provider-webhook-notification signs, and logs the delivery', async () => {
    const receiver = await use(recorder(() => ({ status: 204 })));
    const { d, hooks } = await dispatcher();
    const { endpoint, secret } = await d.webhooks.createEndpoint({ url: `${receiver.url}/hooks`, events: ['usage.*'] });
    await d.webhooks.createEndpoint({ url: `${receiver.url}/other`, events: ['key.created'] });

    const { event, deliveries } = await hooks.emit(
      'usage.threshold',
      { user_id: 'usr_1', threshold: 80 },
      { id: 'quota:usr_1:2026-11:80' },
    );
    expect(deliveries).toHaveLength(1); // the other endpoint is not subscribed
    const row = await settled(d, deliveries[0]!.id);
    expect(row).toMatchObject({
      status: 'succeeded',
      attempts: 1,
      responseStatus: 204,
      endpointId: endpoint.id,
      eventType: 'usage.threshold',
    });

    const got = receiver.received[0]!;
    expect(got.url).toBe('/hooks');
    expect(got.headers['content-type']).toBe('application/json');
    expect(got.headers['x-apigate-event-id']).toBe('quota:usr_1:2026-11:80');
    expect(got.headers['x-apigate-event-type']).toBe('usage.threshold');
    // The plugin's own verifier accepts it: one scheme for every signed delivery APIGate makes.
    const payload = verifyWebhookSignature({ rawBody: got.body, headers: got.headers, secret }) as unknown as WebhookEvent;
    expect(payload).toEqual({
      id: event.id,
      type: 'usage.threshold',
      created_at: event.created_at,
      data: { user_id: 'usr_1', threshold: 80 },
    });
    expect(() => verifyWebhookSignature({ rawBody: got.body, headers: got.headers, secret: 'whsec_not-the-right-secret' })).toThrow(
      /does not match/,
    );
  });

  it('retries 5xx answers with backoff until one succeeds, and gives up on a 4xx at once', async () => {
    const flaky = await use(recorder((n) => (n < 3 ? { status: 503, body: 'busy' } : { status: 200 })));
    const gone = await use(recorder(() => ({ status: 410, body: 'endpoint retired' })));
    const { d, hooks, queue } = await dispatcher(5);
    const a = await d.webhooks.createEndpoint({ url: flaky.url, events: ['test'] });
    const b = await d.webhooks.createEndpoint({ url: gone.url, events: ['test'] });

    const { deliveries } = await hooks.emit('test', { message: 'hi' });
    const of = (endpointId: string) => settled(d, deliveries.find((x) => x.endpointId === endpointId)!.id);
    const [ok, failed] = await Promise.all([of(a.endpoint.id), of(b.endpoint.id)]);
    expect(ok).toMatchObject({ status: 'succeeded', attempts: 3, responseStatus: 200, lastError: null });
    expect(failed).toMatchObject({ status: 'failed', attempts: 1, responseStatus: 410 });
    expect(failed!.lastError).toContain('answered 410: endpoint retired');
    expect(gone.received).toHaveLength(1);
    expect(new Set(flaky.received.map((r) => r.body.toString())).size).toBe(1); // the same body each time
    expect((await queue.failed(WEBHOOK_QUEUE)).items).toHaveLength(1);
  });

  it('marks a delivery failed once its attempts are spent, and sends an event id only once per endpoint', async () => {
    const down = await use(recorder(() => ({ status: 500 })));
    const { d, hooks } = await dispatcher(2);
    await d.webhooks.createEndpoint({ url: down.url, events: ['*'] });
    const first = await hooks.emit('payment.failed', { invoice: 'in_1' }, { id: 'evt_fixed' });
    expect(await settled(d, first.deliveries[0]!.id)).toMatchObject({ status: 'failed', attempts: 2, responseStatus: 500 });
    const again = await hooks.emit('payment.failed', { invoice: 'in_1' }, { id: 'evt_fixed' });
    expect(again.deliveries[0]!.id).toBe(first.deliveries[0]!.id);
    expect((await d.webhooks.listDeliveries()).items).toHaveLength(1);
    expect(down.received).toHaveLength(2);
  });

  it('emits key.created, key.revoked and plan.changed for changes made here and by another process', async () => {
    const receiver = await use(recorder(() => ({ status: 200 })));
    const upstream = await use(recorder());
    const gate = await startGate({ gateway: { pollIntervalMs: 50, webhookRetry: { attempts: 3, backoffMs: 10 } } });
    defer(() => gate.stop());
    const d = gate.store.domain;
    await d.webhooks.createEndpoint({ url: receiver.url, events: ['key.*', 'plan.changed'] });
    const { user, apiKey, plan } = await customer(gate.store, upstream.url);
    await receiver.count(1);
    await d.keys.revoke(apiKey.id);
    await receiver.count(2);

    const other = await openStore({ dataDir: gate.dataDir, secretKey: KEY_A });
    defer(() => other.close());
    const bigger = await other.domain.plans.create({ name: 'bigger' });
    await other.domain.users.update(user.id, { planId: bigger.id });
    await receiver.count(3);

    const events = receiver.received.map((r) => JSON.parse(r.body.toString()) as WebhookEvent);
    expect(events.map((e) => [e.type, e.id])).toEqual([
      ['key.created', `key.created:${apiKey.id}`],
      ['key.revoked', `key.revoked:${apiKey.id}`],
      ['plan.changed', expect.stringMatching(new RegExp(`^plan\\.changed:${user.id}:\\d+$`))],
    ]);
    expect(events[0]!.data).toEqual({ key_id: apiKey.id, user_id: user.id, name: 'test', prefix: apiKey.prefix });
    expect(events[2]!.data).toEqual({ user_id: user.id, previous_plan_id: plan.id, plan_id: bigger.id });
    await vi.waitFor(async () => expect((await d.webhooks.listDeliveries({ status: 'succeeded' })).items).toHaveLength(3));
  });
});
