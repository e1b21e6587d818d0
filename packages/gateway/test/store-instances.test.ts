import { X509Certificate } from 'node:crypto';
import { selfSignedCertificate } from '@apigate/provider-testkit';
import { describe, expect, it, vi } from 'vitest';
import { type ChangeEvent, CertificateStore, PaymentInbox } from '../src/index.js';
import { PortalStore } from '../src/portal/store.js';
import { tempDir } from './helpers.js';
import { domainStore } from './helpers/domain.js';

/** Two instances sharing one PostgreSQL database: what several `apigate serve` processes are. */
async function twoInstances() {
  const a = await domainStore({ dialect: 'postgres' });
  const b = await domainStore({ dialect: 'postgres', dataDir: a.dataDir });
  return { a, b };
}

describe('several instances on one PostgreSQL database', () => {
  it('a key revoked through one instance reaches the other within a second, without its poll timer (LISTEN/NOTIFY)', async () => {
    const { a, b } = await twoInstances();
    await a.d.plans.create({ name: 'Free' });
    const user = await a.d.users.create({ email: 'ada@example.com' });
    const { apiKey } = await a.d.keys.create({ userId: user.id });
    const heard: ChangeEvent[] = [];
    b.d.changes.on('change', (e) => heard.push(e));
    await a.d.keys.revoke(apiKey.id);
    // b never calls poll() or watch(): the notification sent at a's commit makes it read the versions.
    await vi.waitFor(() => expect(b.d.changes.version('keys')).toBe(a.d.changes.version('keys')), { timeout: 1000, interval: 10 });
    expect(heard).toContainEqual(expect.objectContaining({ entity: 'keys', action: 'external', version: a.d.changes.version('keys') }));
    expect((await b.d.keys.get(apiKey.id)).status).toBe('revoked');
  });

  it('domain writes through both instances at once keep their checks (one email, one default plan)', async () => {
    const { a, b } = await twoInstances();
    const plans = await Promise.all([a.d.plans.create({ name: 'Free' }), b.d.plans.create({ name: 'Pro' })]);
    expect(plans.filter((p) => p.isDefault)).toHaveLength(1);
    const made = await Promise.allSettled([a.d.users.create({ email: 'ada@example.com' }), b.d.users.create({ email: 'ada@example.com' })]);
    expect(made.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(made.find((r) => r.status === 'rejected')).toMatchObject({ reason: { code: 'EMAIL_TAKEN' } });
  });

  it('a payment event posted to both instances is recorded once, and each try is claimed by one worker', async () => {
    const { a, b } = await twoInstances();
    const inboxA = new PaymentInbox(a.store);
    const inboxB = new PaymentInbox(b.store);
    const v = { id: 'evt_1', type: 'subscription.created', occurredAt: new Date() };
    const input = { rawBody: new TextEncoder().encode('{"id":"evt_1"}'), headers: { 'x-sig': 't=1' } };
    const recorded = await Promise.all([inboxA.record('dummy', v, input), inboxB.record('dummy', v, input)]);
    expect(recorded.filter(Boolean)).toHaveLength(1);

    const row = (await inboxA.find('dummy', 'evt_1'))!;
    expect(row).toMatchObject({ status: 'queued', attempts: 0, hasBody: true });
    // Both workers got a job for it (a redelivery, a sweep): only one moves attempts 0 -> 1.
    const claims = await Promise.all([
      inboxA.startAttempt('dummy', 'evt_1', row.attempts),
      inboxB.startAttempt('dummy', 'evt_1', row.attempts),
    ]);
    expect(claims.filter((c) => c !== undefined)).toEqual([1]);
    expect((await inboxB.find('dummy', 'evt_1'))!.attempts).toBe(1);
    expect(await inboxB.input('dummy', 'evt_1')).toEqual({ rawBody: new Uint8Array(input.rawBody), headers: { 'x-sig': 't=1' } });
  });

  it('a usage batch delivered to both instances at once is counted once', async () => {
    const { a, b } = await twoInstances();
    await a.d.plans.create({ name: 'Free' });
    const user = await a.d.users.create({ email: 'ada@example.com' });
    const { apiKey } = await a.d.keys.create({ userId: user.id });
    const batch = Array.from({ length: 20 }, (_, i) => ({
      keyId: apiKey.id,
      userId: user.id,
      at: Date.parse('2025-03-10T12:00:00Z') + i * 1000,
    }));
    const results = await Promise.all([
      a.d.usage.applyBatch('b1', batch),
      b.d.usage.applyBatch('b1', batch),
      b.d.usage.applyBatch('b1', batch),
    ]);
    expect(results.filter((r) => r.applied)).toHaveLength(1);
    expect((await b.d.usage.forUser(user.id, '2025-03')).totals.requests).toBe(20);
  });

  it('a portal token used through both instances at once works once', async () => {
    const { a, b } = await twoInstances();
    await a.d.plans.create({ name: 'Free' });
    const user = await a.d.users.create({ email: 'ada@example.com' });
    const now = () => new Date();
    const issued = await new PortalStore(a.store, now).issueToken(user.id, 'reset_password', user.email, 60_000);
    const uses = await Promise.all([
      new PortalStore(a.store, now).consumeToken(issued.token, 'reset_password'),
      new PortalStore(b.store, now).consumeToken(issued.token, 'reset_password'),
    ]);
    expect(uses.map((u) => u.ok).sort()).toEqual([false, true]);
    expect(uses.find((u) => !u.ok)).toEqual({ ok: false, reason: 'used' });
  });

  it('a scheduled job runs on one instance at a time (store.exclusive)', async () => {
    const { a, b } = await twoInstances();
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    let entered!: () => void;
    const inside = new Promise<void>((r) => {
      entered = r;
    });
    const first = a.store.exclusive('payment:reconcile:dummy', async () => {
      entered();
      await held;
      return 'a ran';
    });
    // While a's round holds the job (it is inside its round: the lock is taken), b's tick skips it;
    // once a is done, b may run the next round.
    await inside;
    expect(await b.store.exclusive('payment:reconcile:dummy', async () => 'b ran')).toEqual({ ran: false });
    release();
    expect(await first).toEqual({ ran: true, result: 'a ran' });
    expect(await b.store.exclusive('payment:reconcile:dummy', async () => 'b ran')).toEqual({ ran: true, result: 'b ran' });
  });

  it('a certificate stored by one instance is served by the other', async () => {
    const { a, b } = await twoInstances();
    const { certPem, keyPem } = selfSignedCertificate({ commonName: 'api.example.com', dir: await tempDir() });
    const x = new X509Certificate(certPem);
    const saved = await new CertificateStore(a.store).save({
      domains: ['api.example.com'],
      certPem,
      chainPem: certPem,
      keyPem,
      notBefore: new Date(x.validFrom),
      notAfter: new Date(x.validTo),
      serialNumber: x.serialNumber,
      issuer: x.issuer,
    });
    const other = new CertificateStore(b.store);
    expect(await other.get(saved.domainsKey)).toMatchObject({ domainsKey: 'api.example.com', keyPem, serialNumber: x.serialNumber });
    expect((await other.all()).map((c) => c.domainsKey)).toEqual(['api.example.com']);
  });
});
