import { describe, expect, it } from 'vitest';
import { domainStore } from './helpers/domain.js';

// The admin dashboard's overview: all traffic per minute and the month's busiest keys across users.
describe('usage across all users', () => {
  it("sums every key per minute in [from, to) and ranks the month's keys by requests", async () => {
    const { d } = await domainStore();
    await d.plans.create({ name: 'Free' });
    const ada = await d.users.create({ email: 'ada@example.com' });
    const bob = await d.users.create({ email: 'bob@example.com' });
    const a = (await d.keys.create({ userId: ada.id })).apiKey;
    const b = (await d.keys.create({ userId: bob.id })).apiKey;
    const t = Date.parse('2025-03-10T12:00:00Z');
    await d.usage.applyBatch('b1', [
      { keyId: a.id, userId: ada.id, at: t, requests: 2, errors: 1 },
      { keyId: b.id, userId: bob.id, at: t + 5_000, requests: 3 },
      { keyId: b.id, userId: bob.id, at: t + 60_000, requests: 4 },
      { keyId: a.id, userId: ada.id, at: t + 120_000 }, // outside [from, to) below
      { keyId: a.id, userId: ada.id, at: Date.parse('2025-02-28T10:00:00Z'), requests: 50 }, // another month
    ]);

    expect(await d.usage.allMinutes({ from: new Date(t), to: new Date(t + 120_000) })).toEqual([
      { minute: new Date(t), requests: 5, bytesIn: 0, bytesOut: 0, errors: 1 },
      { minute: new Date(t + 60_000), requests: 4, bytesIn: 0, bytesOut: 0, errors: 0 },
    ]);
    const top = await d.usage.topKeys('2025-03');
    expect(top.map((k) => [k.keyId, k.userId, k.requests])).toEqual([
      [b.id, bob.id, 7],
      [a.id, ada.id, 3],
    ]);
    expect(await d.usage.topKeys('2025-03', 1)).toHaveLength(1);
    await expect(d.usage.topKeys('2025-3')).rejects.toThrow(/YYYY-MM/);
  });
});
