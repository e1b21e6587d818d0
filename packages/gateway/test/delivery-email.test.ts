import { randomUUID } from 'node:crypto';
import { type EmailProvider, InvalidInputError, type ProviderErrorEvent } from '@apigate/kernel';
import smtp from '@apigate/provider-smtp';
import { createForTest } from '@apigate/provider-testkit';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DELIVERY_FAILED_CODE, DeliveryWorkers, EMAIL_QUEUE, Outbox } from '../src/delivery/index.js';
import { REDIS_URL } from './helpers/caches.js';
import { countBy, type ReceivedMail, recordOutcomes, startSmtp } from './helpers/delivery.js';
import { closedPort } from './helpers/http.js';
import { memory, redis, type TestQueue } from './helpers/queues.js';

const FROM = '"APIGate" <noreply@apigate.test>';
/** Small waits so the tests are quick; many tries so an outage on a busy machine still ends in delivery. */
const FAST = { attempts: 40, backoffMs: 25 };
const WAIT = 30_000;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(makeQueue: () => Promise<TestQueue>, port: number, delivery = FAST) {
  const q = await makeQueue();
  const { provider: email, events } = await createForTest(smtp, {
    host: '127.0.0.1',
    port: String(port),
    from: FROM,
    tls: 'false',
    timeoutMs: '5000',
    poolSize: '2',
  });
  const raised: ProviderErrorEvent[] = [];
  const outbox = new Outbox({ queue: q.queue, ...delivery });
  const workers = DeliveryWorkers.start({
    queue: q.queue,
    email: { provider: email, name: 'smtp' },
    raise: (e) => raised.push(e),
    concurrency: 2,
  });
  const outcomes = recordOutcomes(workers);
  cleanups.push(async () => {
    await workers.close();
    await q.queue.purge(EMAIL_QUEUE);
    await email.close();
    await q.close();
  });
  return { queue: q.queue, email: email as EmailProvider, events, raised, outbox, workers, outcomes };
}

const message = (id: string, to = 'alice@example.com') => ({
  to,
  subject: `outbox ${id}`,
  text: `plain part of ${id}`,
  html: `<p>html part of <b>${id}</b></p>`,
  headers: { 'X-Test-Id': id },
});

describe.each([
  ['redis', () => redis(REDIS_URL)],
  ['memory', memory],
])('email outbox on the %s queue', (_name, makeQueue) => {
  it(
    'loses nothing while the SMTP server is down: every message arrives once per idempotency id after it is back',
    async () => {
      const inbox: ReceivedMail[] = [];
      let server = await startSmtp(0, inbox);
      const port = server.port;
      const { queue, outbox, outcomes, raised, events } = await setup(makeQueue, port);

      // Up: one message goes straight through.
      const first = `first-${randomUUID()}`;
      await outbox.sendEmail(message(first), { idempotencyId: first });
      await outcomes.until((o) => o.some((x) => x.jobId === first && x.status === 'delivered'));

      // Down: the port is closed; messages are queued and their tries fail with retryable errors.
      await server.stop();
      const ids = Array.from({ length: 5 }, (_v, i) => `mail-${i}-${randomUUID()}`);
      for (const id of ids) {
        expect(await outbox.sendEmail(message(id), { idempotencyId: id })).toEqual({ queue: EMAIL_QUEUE, id, duplicate: false });
        // The same idempotency id again, while the first is still retrying: not queued twice.
        expect((await outbox.sendEmail(message(id), { idempotencyId: id })).duplicate).toBe(true);
      }
      await outcomes.until((o) => ids.every((id) => o.some((x) => x.jobId === id && x.status === 'retrying')));
      expect(events.some((e) => e.type === 'provider.error' && e.operation === 'send' && e.retryable)).toBe(true);

      // Back on the same port: the retries deliver everything.
      server = await startSmtp(port, inbox);
      cleanups.push(() => server.stop());
      await outcomes.until((o) => ids.every((id) => o.some((x) => x.jobId === id && x.status === 'delivered')));
      await vi.waitFor(async () => expect(await queue.stats(EMAIL_QUEUE)).toMatchObject({ waiting: 0, active: 0, delayed: 0, failed: 0 }), {
        timeout: WAIT,
      });

      // Known ids stay taken after delivery: sending again is a no-op.
      for (const id of [first, ...ids]) expect((await outbox.sendEmail(message(id), { idempotencyId: id })).duplicate).toBe(true);
      const sentinel = `sentinel-${randomUUID()}`;
      await outbox.sendEmail(message(sentinel), { idempotencyId: sentinel });
      await outcomes.until((o) => o.some((x) => x.jobId === sentinel && x.status === 'delivered'));

      const arrived = countBy(inbox, (m) => m.headers['x-test-id'] ?? '?');
      expect(Object.fromEntries(arrived)).toEqual(Object.fromEntries([first, ...ids, sentinel].map((id) => [id, 1])));
      const one = inbox.find((m) => m.headers['x-test-id'] === ids[0])!;
      expect(one).toMatchObject({ to: ['alice@example.com'], subject: `outbox ${ids[0]}`, text: `plain part of ${ids[0]}` });
      expect(one.html).toContain(`<b>${ids[0]}</b>`);
      expect(one.from).toContain('noreply@apigate.test');
      expect(raised, 'no job reached the failed set').toEqual([]);
    },
    WAIT * 2,
  );

  it(
    'sends a permanently refused message to the failed set at once and raises provider.error',
    async () => {
      const inbox: ReceivedMail[] = [];
      const server = await startSmtp(0, inbox);
      cleanups.push(() => server.stop());
      const { queue, outbox, outcomes, raised } = await setup(makeQueue, server.port);

      const id = `refused-${randomUUID()}`;
      await outbox.sendEmail(message(id, 'unknown@example.com'), { idempotencyId: id });
      await outcomes.until((o) => o.some((x) => x.jobId === id && x.status === 'failed'));
      expect(outcomes.seen.filter((x) => x.jobId === id).map((x) => [x.status, x.attempt])).toEqual([['failed', 1]]);
      await vi.waitFor(async () => expect(await queue.stats(EMAIL_QUEUE)).toMatchObject({ failed: 1, delayed: 0, waiting: 0 }), {
        timeout: WAIT,
      });
      const { items } = await queue.failed(EMAIL_QUEUE);
      expect(items).toHaveLength(1);
      expect(items[0]).toMatchObject({ id, attempt: 1, maxAttempts: FAST.attempts });
      expect(items[0]!.error).toMatch(/550|No such user/);
      expect(raised).toHaveLength(1);
      expect(raised[0]).toMatchObject({
        type: 'provider.error',
        capability: 'email',
        provider: 'smtp',
        operation: 'deliver',
        code: DELIVERY_FAILED_CODE,
      });
      expect(raised[0]!.message).toContain(id);
      expect(inbox).toEqual([]);
    },
    WAIT,
  );

  it(
    'after the last attempt the job is in the failed set with a provider.error; retryFailed delivers it once the server is back',
    async () => {
      const port = await closedPort();
      const { queue, outbox, outcomes, raised } = await setup(makeQueue, port, { attempts: 3, backoffMs: 10 });
      const id = `exhausted-${randomUUID()}`;
      await outbox.sendEmail(message(id), { idempotencyId: id });
      await outcomes.until((o) => o.some((x) => x.jobId === id && x.status === 'failed'));
      expect(outcomes.seen.filter((x) => x.jobId === id).map((x) => [x.status, x.attempt])).toEqual([
        ['retrying', 1],
        ['retrying', 2],
        ['failed', 3],
      ]);
      await vi.waitFor(async () => expect((await queue.failed(EMAIL_QUEUE)).items.map((f) => f.id)).toEqual([id]), { timeout: WAIT });
      expect(raised.map((e) => [e.capability, e.operation, e.code])).toEqual([['email', 'deliver', DELIVERY_FAILED_CODE]]);
      expect(raised[0]!.message).toContain('after 3 of 3 attempts');

      const inbox: ReceivedMail[] = [];
      const server = await startSmtp(port, inbox);
      cleanups.push(() => server.stop());
      expect(await queue.retryFailed(EMAIL_QUEUE, id)).toBe(1);
      await outcomes.until((o) => o.some((x) => x.jobId === id && x.status === 'delivered'));
      expect(inbox.map((m) => m.headers['x-test-id'])).toEqual([id]);
    },
    WAIT,
  );
});

describe('outbox input', () => {
  it('refuses a message that can never be sent before it is queued', async () => {
    const q = await memory();
    cleanups.push(() => q.close());
    const outbox = new Outbox({ queue: q.queue, ...FAST });
    await expect(outbox.sendEmail({ to: [], subject: 'x', text: 'y' })).rejects.toThrow(InvalidInputError);
    await expect(
      outbox.sendEmail({ to: 'a@example.com', subject: 'x', headers: { 'X-Bad': 'a\r\nBcc: victim@example.com' } }),
    ).rejects.toThrow(/single-line/);
    expect(await q.queue.stats(EMAIL_QUEUE)).toMatchObject({ waiting: 0, delayed: 0 });
  });

  it('carries attachments through the queue as bytes', async () => {
    const inbox: ReceivedMail[] = [];
    const server = await startSmtp(0, inbox);
    cleanups.push(() => server.stop());
    const { outbox, outcomes } = await setup(memory, server.port);
    const bytes = new Uint8Array([0, 1, 2, 250, 255, 13, 10]);
    const { id } = await outbox.sendEmail({
      to: 'a@example.com',
      subject: 'files',
      text: 'see attached',
      attachments: [{ filename: 'b.bin', content: bytes, contentType: 'application/octet-stream' }],
    });
    await outcomes.until((o) => o.some((x) => x.jobId === id && x.status === 'delivered'));
    expect(inbox).toHaveLength(1);
    expect(inbox[0]!.attachments).toHaveLength(1);
    expect(inbox[0]!.attachments[0]).toMatchObject({ filename: 'b.bin', contentType: 'application/octet-stream' });
    expect(inbox[0]!.attachments[0]!.content.equals(Buffer.from(bytes))).toBe(true);
  });
});
