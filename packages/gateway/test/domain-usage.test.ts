import { describe, expect, it } from 'vitest';
import { type DomainError, monthBounds, monthOf } from '../src/index.js';
import { DIALECTS, domainStore, type TestDialect } from './helpers/domain.js';

const T = Date.parse('2025-03-31T23:59:30Z');

async function setup(dialect: TestDialect) {
  const s = await domainStore({ dialect });
  await s.d.plans.create({ name: 'Free', requestsPerMonth: 1000 });
  const user = await s.d.users.create({ email: 'ada@example.com' });
  const k1 = (await s.d.keys.create({ userId: user.id, name: 'one' })).apiKey;
  const k2 = (await s.d.keys.create({ userId: user.id, name: 'two' })).apiKey;
  return { ...s, user, k1, k2 };
}

describe.each(DIALECTS)('%s', (dialect) => {
  describe('usage', () => {
    it('adds batches into per-minute and per-month buckets (UTC), split across a month boundary', async () => {
      const { d, user, k1, k2 } = await setup(dialect);
      const u = user.id;
      expect(
        await d.usage.applyBatch('b1', [
          { keyId: k1.id, userId: u, at: T, bytesIn: 10, bytesOut: 100 },
          { keyId: k1.id, userId: u, at: T + 10_000, bytesIn: 5, bytesOut: 50, errors: 1 },
          { keyId: k2.id, userId: u, at: new Date(T), requests: 3, bytesOut: 30 },
          { keyId: k1.id, userId: u, at: T + 40_000, bytesOut: 7 }, // 00:00:10 on April 1st
        ]),
      ).toEqual({ applied: true });

      const march = await d.usage.forUser(u, '2025-03');
      expect(march.totals).toEqual({ requests: 5, bytesIn: 15, bytesOut: 180, errors: 1 });
      expect(march.keys).toEqual([
        { keyId: k2.id, requests: 3, bytesIn: 0, bytesOut: 30, errors: 0 },
        { keyId: k1.id, requests: 2, bytesIn: 15, bytesOut: 150, errors: 1 },
      ]);
      expect((await d.usage.forKey(k1.id, '2025-04')).totals).toEqual({ requests: 1, bytesIn: 0, bytesOut: 7, errors: 0 });
      expect(await d.usage.byUser('2025-03')).toEqual([{ userId: u, requests: 5, bytesIn: 15, bytesOut: 180, errors: 1 }]);

      const minutes = await d.usage.minutes({ userId: u, from: new Date(T - 60_000), to: new Date(T + 120_000) });
      expect(minutes.map((m) => [m.minute.toISOString(), m.requests])).toEqual([
        ['2025-03-31T23:59:00.000Z', 5],
        ['2025-04-01T00:00:00.000Z', 1],
      ]);
      expect(
        (await d.usage.minutes({ keyId: k2.id, from: new Date(T - 60_000), to: new Date(T + 120_000) })).map((m) => m.requests),
      ).toEqual([3]);
    });

    it('counts a batch once however often it is delivered, also from two connections at once', async () => {
      const { d, dataDir, user, k1 } = await setup(dialect);
      const other = await domainStore({ dialect, dataDir });
      const batch = Array.from({ length: 50 }, (_, i) => ({ keyId: k1.id, userId: user.id, at: T - i * 1000 }));
      const results = await Promise.all([
        d.usage.applyBatch('same', batch),
        other.d.usage.applyBatch('same', batch),
        d.usage.applyBatch('same', batch),
      ]);
      expect(results.filter((r) => r.applied)).toHaveLength(1);
      expect(await d.usage.batchApplied('same')).toBe(true);
      expect((await d.usage.forKey(k1.id, '2025-03')).totals.requests).toBe(50);
      await d.usage.applyBatch('next', batch.slice(0, 5));
      expect((await other.d.usage.forUser(user.id, '2025-03')).totals.requests).toBe(55);
    });

    it('drops, and reports, rows whose key it does not know or whose user is not the key owner', async () => {
      const { d, user, k1 } = await setup(dialect);
      const stranger = await d.users.create({ email: 'eve@example.com' });
      const r = await d.usage.applyBatch('mixed', [
        { keyId: k1.id, userId: user.id, at: T, requests: 2 },
        { keyId: 'key_of_another_deployment', userId: 'usr_elsewhere', at: T, requests: 5 },
        { keyId: k1.id, userId: stranger.id, at: T, requests: 7 },
      ]);
      expect(r.applied).toBe(true);
      expect(r.dropped?.map((e) => [e.keyId, e.requests])).toEqual([
        ['key_of_another_deployment', 5],
        [k1.id, 7],
      ]);
      expect((await d.usage.forKey(k1.id, '2025-03')).totals.requests).toBe(2);
      expect(await d.usage.byUser('2025-03')).toEqual([expect.objectContaining({ userId: user.id, requests: 2 })]);
      // All unknown: the batch id is still recorded (a redelivery is not applied again), nothing counted.
      expect(await d.usage.applyBatch('foreign', [{ keyId: 'key_x', userId: 'usr_x', at: T }])).toMatchObject({
        applied: true,
        dropped: [expect.anything()],
      });
      expect(await d.usage.applyBatch('foreign', [{ keyId: 'key_x', userId: 'usr_x', at: T }])).toEqual({ applied: false });
    });

    it('moves last_used_at forward only', async () => {
      const { d, user, k1 } = await setup(dialect);
      await d.usage.applyBatch('a', [{ keyId: k1.id, userId: user.id, at: T }]);
      expect((await d.keys.get(k1.id)).lastUsedAt).toEqual(new Date(T));
      await d.usage.applyBatch('b', [{ keyId: k1.id, userId: user.id, at: T - 60_000 }]);
      expect((await d.keys.get(k1.id)).lastUsedAt).toEqual(new Date(T));
    });

    it('keeps usage of deleted keys and prunes old minutes and batch ids', async () => {
      const { d, user, k1, clock } = await setup(dialect);
      await d.usage.applyBatch('old', [{ keyId: k1.id, userId: user.id, at: T - 86_400_000 }]);
      await d.usage.applyBatch('new', [{ keyId: k1.id, userId: user.id, at: T }]);
      await d.users.delete(user.id);
      expect((await d.usage.forUser(user.id, '2025-03')).totals.requests).toBe(2);
      clock.now = new Date(T + 1000);
      const pruned = await d.usage.prune(new Date(T - 3_600_000));
      expect(pruned.minutes).toBe(1);
      expect((await d.usage.minutes({ keyId: k1.id, from: new Date(0), to: new Date(T + 60_000) })).map((m) => m.requests)).toEqual([1]);
      expect((await d.usage.forKey(k1.id, '2025-03')).totals.requests).toBe(2); // monthly totals stay
    });

    it('names months in UTC and rejects a bad month or batch in one line', async () => {
      const { d } = await setup(dialect);
      expect(monthOf(T)).toBe('2025-03');
      expect(monthBounds('2025-12')).toEqual({ start: new Date('2025-12-01T00:00:00Z'), end: new Date('2026-01-01T00:00:00Z') });
      const err = await d.usage.forUser('usr_x', '2025-13').catch((e: DomainError) => e);
      expect(err).toMatchObject({ field: 'month', message: 'usage: month: expected YYYY-MM such as 2025-01, got "2025-13"' });
      const bad = await d.usage.applyBatch('', []).catch((e: DomainError) => e);
      expect(bad).toMatchObject({ field: 'batch_id' });
      const neg = await d.usage.applyBatch('x', [{ keyId: 'k', userId: 'u', at: T, requests: -1 }]).catch((e: DomainError) => e);
      expect(neg).toMatchObject({ field: 'entries.0.requests' });
    });
  });
});
