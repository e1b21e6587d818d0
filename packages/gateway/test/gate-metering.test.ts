import type { Kernel } from '@apigate/kernel';
import { describe, expect, it, vi } from 'vitest';
import { exportUsage, monthOf, openStore, USAGE_CSV_COLUMNS } from '../src/index.js';
import { decodeEmail, type EmailJob } from '../src/delivery/codec.js';
import { EMAIL_QUEUE } from '../src/delivery/outbox.js';
import { renderQuotaEmail } from '../src/gate/notices.js';
import { KEY_A } from './helpers.js';
import { readAll } from './helpers/http.js';
import { cleanupAfterEach } from './helpers/cleanup.js';
import { customer, recorder, startGate, sweepRedis } from './helpers/gate.js';
import { call } from './helpers/http.js';

const { defer, use } = cleanupAfterEach();

const month = () => monthOf(new Date());

/** Stored requests of a user this month, read through a fresh store (the gateway is stopped). */
async function storedRequests(dataDir: string, userId: string): Promise<number> {
  const store = await openStore({ dataDir, secretKey: KEY_A });
  try {
    return (await store.domain.usage.forUser(userId, month())).totals.requests;
  } finally {
    await store.close();
  }
}

describe('metering, quota notices and restarts', () => {
  it('emails 80% and 100% once through the outbox, fires usage.threshold and usage.limit, and remembers the count across a restart', async () => {
    const upstream = await use(recorder());
    const hooks = await use(recorder(() => ({ status: 200 })));
    const gate = await startGate({ outbox: true });
    defer(() => gate.stop());
    const { user, key } = await customer(gate.store, upstream.url, { monthly: 5 });
    await gate.store.domain.webhooks.createEndpoint({ url: hooks.url, events: ['usage.*'] });
    const emails: { id: string; to: unknown; subject: string; text?: string | undefined }[] = [];
    // The outbox's jobs as the email worker would take them.
    const capture = (kernel: Kernel) => {
      const worker = kernel.get('queue').process(EMAIL_QUEUE, async (job) => {
        const m = decodeEmail(job.payload as EmailJob);
        emails.push({ id: job.id, to: m.to, subject: m.subject, text: m.text });
      });
      defer(() => worker.close());
    };
    capture(gate.kernel);

    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await call(`${gate.url}/api/x`, { headers: { 'x-api-key': key } })).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
    await hooks.count(2);
    await vi.waitFor(() => expect(emails).toHaveLength(2));
    await gate.stop();

    const m = month();
    expect(emails.map((e) => e.id).sort()).toEqual([`quota:${user.id}:${m}:100`, `quota:${user.id}:${m}:80`]);
    const at80 = emails.find((e) => e.id.endsWith(':80'))!;
    expect(at80.to).toBe(user.email);
    expect(at80.subject).toBe(`You have used 80% of your API quota for ${m}`);
    expect(at80.text).toContain('you have used 4 of the 5 requests');
    expect(emails.find((e) => e.id.endsWith(':100'))!.subject).toBe(`Your API quota for ${m} is used up`);
    const events = hooks.received.map((r) => JSON.parse(r.body.toString()));
    expect(events.map((e) => [e.type, e.id]).sort()).toEqual([
      ['usage.limit', `quota:${user.id}:${m}:100`],
      ['usage.threshold', `quota:${user.id}:${m}:80`],
    ]);
    expect(events.find((e) => e.type === 'usage.threshold').data).toMatchObject({
      user_id: user.id,
      period: m,
      threshold: 80,
      used: 4,
      limit: 5,
    });
    expect(await storedRequests(gate.dataDir, user.id)).toBe(5);

    // A restart with the memory cache: the quota starts from the stored count, and nothing is sent again.
    const again = await startGate({ dataDir: gate.dataDir, outbox: true });
    defer(() => again.stop());
    capture(again.kernel);
    const late = await call(`${again.url}/api/x`, { headers: { 'x-api-key': key } });
    expect(late.status).toBe(429);
    expect(JSON.parse(late.body.toString()).error.code).toBe('QUOTA_EXCEEDED');
    await again.stop(); // waits for any notice it started
    expect(emails).toHaveLength(2);
    const store = await openStore({ dataDir: gate.dataDir, secretKey: KEY_A });
    defer(() => store.close());
    expect((await store.domain.webhooks.listDeliveries()).items).toHaveLength(2); // recorded before stop() returns
  });

  it('loses no count when stopped while requests are in flight (Redis cache and durable Redis queue), and keeps the quota in Redis', async () => {
    let release: () => void = () => {};
    const released = new Promise<void>((r) => (release = r));
    // Answers at once until `hold` is set; then holds every answer until release().
    let hold = false;
    const upstream = await use(recorder(async () => (hold ? released.then(() => ({ status: 200 })) : { status: 200 })));
    const first = await startGate({ cache: 'redis', queue: 'redis' });
    defer(
      () => sweepRedis(first.redisPrefix),
      () => first.stop(),
    );
    const { user, key } = await customer(first.store, upstream.url, { monthly: 1000 });
    const get = (url: string) => call(`${url}/api/x`, { headers: { 'x-api-key': key } });

    const quick = await Promise.all(Array.from({ length: 10 }, () => get(first.url)));
    hold = true;
    const inFlight = Array.from({ length: 5 }, () => get(first.url));
    await upstream.count(15);
    const stopped = first.stop(); // stops accepting; the five held requests are still to be answered
    release();
    const late = await Promise.all(inFlight);
    await stopped;
    expect([...quick, ...late].map((r) => r.status)).toEqual(Array(15).fill(200));
    expect(await storedRequests(first.dataDir, user.id)).toBe(15);

    hold = false;
    const second = await startGate({ cache: 'redis', queue: 'redis', dataDir: first.dataDir, redisPrefix: first.redisPrefix });
    defer(() => second.stop());
    const more = await get(second.url);
    expect(more.status).toBe(200);
    await second.stop();
    expect(await storedRequests(first.dataDir, user.id)).toBe(16);
  });

  it('writes the month as CSV through the storage capability', async () => {
    const upstream = await use(recorder());
    const gate = await startGate();
    defer(() => gate.stop());
    const a = await customer(gate.store, upstream.url);
    await gate.store.domain.users.update(a.user.id, { name: 'Ada, "the first"' });
    for (let i = 0; i < 3; i++) await call(`${gate.url}/api/x`, { headers: { 'x-api-key': a.key } });
    await gate.gateway.close(); // usage applied to the store
    const storage = gate.kernel.get('storage');
    const out = await exportUsage(gate.store, storage, month());
    expect(out).toMatchObject({ key: `exports/usage-${month()}.csv`, rows: 1 });
    expect(out.signedUrl).toBeUndefined(); // the memory provider signs no URLs
    const obj = await storage.get(out.key);
    expect(obj?.contentType).toBe('text/csv; charset=utf-8');
    const lines = (await readAll(obj!.body)).toString('utf8').trimEnd().split('\r\n');
    expect(lines[0]).toBe(USAGE_CSV_COLUMNS.join(','));
    expect(lines[1]).toBe(
      [month(), a.user.id, a.user.email, a.plan.name, a.apiKey.id, a.apiKey.prefix, 'test', 3, 0, 0, lines[1]!.split(',').at(-1)].join(','),
    );
  });

  it('renders the quota email', () => {
    const mail = renderQuotaEmail({
      name: '<Ada>',
      planName: 'Pro',
      used: 800,
      limit: 1000,
      threshold: 0.8,
      period: '2026-11',
      resetAt: new Date('2026-12-01T00:00:00Z'),
    });
    expect(mail.subject).toBe('You have used 80% of your API quota for 2026-11');
    expect(mail.text).toContain('you have used 800 of the 1000 requests of your Pro plan for 2026-11 (80%)');
    expect(mail.text).toContain('The quota resets on 2026-12-01 00:00 UTC.');
    expect(mail.html).toContain('Hello &#60;Ada&#62;,');
  });
});
