import { randomUUID } from 'node:crypto';
import type { Notification, ProviderErrorEvent } from '@apigate/kernel';
import { createForTest } from '@apigate/provider-testkit';
import webhook from '@apigate/provider-webhook-notification';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DELIVERY_FAILED_CODE, DeliveryWorkers, NOTIFICATION_QUEUE, Outbox } from '../src/delivery/index.js';
import { REDIS_URL } from './helpers/caches.js';
import { countBy, recordOutcomes, startReceiver, type WebhookReceiver } from './helpers/delivery.js';
import { memory, redis, type TestQueue } from './helpers/queues.js';

const SECRET = 'delivery-test-secret-0123456789';
const WAIT = 30_000;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(makeQueue: () => Promise<TestQueue>, url: string) {
  const q = await makeQueue();
  const { provider, events } = await createForTest(webhook, { url, secret: SECRET, timeoutMs: '5000' });
  const raised: ProviderErrorEvent[] = [];
  const outbox = new Outbox({ queue: q.queue, attempts: 40, backoffMs: 25 });
  const workers = DeliveryWorkers.start({
    queue: q.queue,
    notification: { provider, name: 'webhook' },
    raise: (e) => raised.push(e),
    concurrency: 2,
  });
  const outcomes = recordOutcomes(workers);
  cleanups.push(async () => {
    await workers.close();
    await q.queue.purge(NOTIFICATION_QUEUE);
    await provider.close();
    await q.close();
  });
  return { queue: q.queue, events, raised, outbox, outcomes };
}

const note = (id: string): Notification => ({
  id,
  event: 'test.delivery',
  title: `notification ${id}`,
  text: 'sent through the outbox',
  severity: 'warning',
  fields: { attempt: 1, where: 'queue' },
  occurredAt: new Date('2025-01-02T03:04:05.000Z'),
});

describe.each([
  ['memory', memory],
  ['redis', () => redis(REDIS_URL)],
])('notification outbox on the %s queue', (_name, makeQueue) => {
  it(
    'loses nothing while the webhook receiver is down: each event id arrives once, signed, after it is back',
    async () => {
      let receiver: WebhookReceiver = await startReceiver(SECRET);
      const { port, url, deliveries } = receiver;
      await receiver.stop();
      const { queue, outbox, outcomes, raised, events } = await setup(makeQueue, url);

      const ids = Array.from({ length: 5 }, (_v, i) => `evt-${i}-${randomUUID()}`);
      for (const id of ids) {
        expect(await outbox.notify(note(id))).toEqual({ queue: NOTIFICATION_QUEUE, id, duplicate: false });
        expect((await outbox.notify(note(id))).duplicate, 'the notification id is the idempotency id').toBe(true);
      }
      await outcomes.until((o) => ids.every((id) => o.some((x) => x.jobId === id && x.status === 'retrying')));
      expect(events.some((e) => e.type === 'provider.error' && e.retryable && /could not reach/.test(e.message))).toBe(true);

      receiver = await startReceiver(SECRET, port, deliveries);
      cleanups.push(() => receiver.stop());
      await outcomes.until((o) => ids.every((id) => o.some((x) => x.jobId === id && x.status === 'delivered')));
      await vi.waitFor(
        async () => expect(await queue.stats(NOTIFICATION_QUEUE)).toMatchObject({ waiting: 0, active: 0, delayed: 0, failed: 0 }),
        {
          timeout: WAIT,
        },
      );
      for (const id of ids) expect((await outbox.notify(note(id))).duplicate).toBe(true);

      expect(Object.fromEntries(countBy(deliveries, (d) => d.id))).toEqual(Object.fromEntries(ids.map((id) => [id, 1])));
      const d = deliveries.find((x) => x.id === ids[0])!;
      expect(d).toEqual({
        id: ids[0],
        type: 'test.delivery',
        timestamp: '2025-01-02T03:04:05.000Z',
        data: {
          title: `notification ${ids[0]}`,
          text: 'sent through the outbox',
          severity: 'warning',
          fields: { attempt: 1, where: 'queue' },
        },
      });
      expect(raised).toEqual([]);
    },
    WAIT * 2,
  );

  it(
    'a receiver answering 400 fails the job at once; 503 is retried until it answers 200',
    async () => {
      const receiver = await startReceiver(SECRET);
      cleanups.push(() => receiver.stop());
      const { queue, outbox, outcomes, raised } = await setup(makeQueue, receiver.url);

      receiver.answer = 400;
      const refused = `refused-${randomUUID()}`;
      await outbox.notify(note(refused));
      await outcomes.until((o) => o.some((x) => x.jobId === refused && x.status === 'failed'));
      expect(outcomes.seen.filter((x) => x.jobId === refused).map((x) => x.attempt)).toEqual([1]);
      await vi.waitFor(async () => expect((await queue.failed(NOTIFICATION_QUEUE)).items.map((f) => f.id)).toEqual([refused]), {
        timeout: WAIT,
      });
      expect(raised.map((e) => [e.capability, e.provider, e.operation, e.code])).toEqual([
        ['notification', 'webhook', 'deliver', DELIVERY_FAILED_CODE],
      ]);

      receiver.answer = 503;
      const flaky = `flaky-${randomUUID()}`;
      await outbox.notify(note(flaky));
      await outcomes.until((o) => o.filter((x) => x.jobId === flaky && x.status === 'retrying').length >= 2);
      receiver.answer = 200;
      await outcomes.until((o) => o.some((x) => x.jobId === flaky && x.status === 'delivered'));
      expect(receiver.deliveries.map((x) => x.id)).toEqual([flaky]);
      expect(raised).toHaveLength(1);
    },
    WAIT,
  );
});
