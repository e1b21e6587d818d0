import { describe, expect, it } from 'vitest';
import { DomainError } from '../src/index.js';
import { DIALECTS, domainStore } from './helpers/domain.js';

async function rejection(p: Promise<unknown>): Promise<DomainError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DomainError);
  return err as DomainError;
}

describe.each(DIALECTS)('%s', (dialect) => {
  describe('plans', () => {
    it('creates plans with defaults; the first plan is the default and exactly one stays default', async () => {
      const { d } = await domainStore({ dialect });
      const free = await d.plans.create({ name: 'Free', requestsPerMinute: 10, requestsPerMonth: 1000 });
      expect(free).toMatchObject({
        name: 'Free',
        requestsPerMinute: 10,
        requestsPerMonth: 1000,
        priceCents: 0,
        currency: 'usd',
        trialDays: 0,
        overageCentsPerRequest: null,
        isDefault: true,
      });
      expect(free.id).toMatch(/^plan_[0-9A-Za-z]{16}$/);

      const pro = await d.plans.create({ name: 'Pro', priceCents: 2900, currency: 'EUR', trialDays: 14, overageCentsPerRequest: 0.05 });
      expect(pro).toMatchObject({ isDefault: false, currency: 'eur', overageCentsPerRequest: 0.05, requestsPerMinute: null });

      await d.plans.setDefault(pro.id);
      expect((await d.plans.list()).filter((p) => p.isDefault).map((p) => p.name)).toEqual(['Pro']);
      const biz = await d.plans.create({ name: 'Business', isDefault: true });
      expect((await d.plans.list()).filter((p) => p.isDefault).map((p) => p.id)).toEqual([biz.id]);
      expect((await d.plans.getDefault())?.id).toBe(biz.id);
    });

    it('refuses a duplicate name (any case), bad fields and unsetting the default, each in one line naming the field', async () => {
      const { d } = await domainStore({ dialect });
      await d.plans.create({ name: 'Free' });
      let err = await rejection(d.plans.create({ name: 'free' }));
      expect(err).toMatchObject({ kind: 'conflict', code: 'PLAN_NAME_TAKEN', field: 'name' });
      expect(err.message).toMatch(/^plan: name: a plan named "free" already exists \(plan_/);

      err = await rejection(d.plans.create({ name: 'X', requestsPerMinute: 1.5 }));
      expect(err).toMatchObject({
        kind: 'invalid',
        field: 'requests_per_minute',
        message: 'plan: requests_per_minute: expected a whole number of requests per minute',
      });
      err = await rejection(d.plans.create({ name: 'X', currency: 'dollars' }));
      expect(err.message).toBe('plan: currency: expected a 3-letter ISO 4217 code such as usd');
      err = await rejection(d.plans.create({ name: 'X', overageCentsPerRequest: 0.0000001 }));
      expect(err.message).toBe('plan: overage_cents_per_request: at most 6 decimal places');
      err = await rejection(d.plans.create({ name: 'X', colour: 'red' } as never));
      expect(err).toMatchObject({ field: 'colour', message: 'plan: colour: is not a field of this request' });
      err = await rejection(d.plans.create({ name: '  ' }));
      expect(err.message).toBe('plan: name: must not be empty');

      const [free] = await d.plans.list();
      err = await rejection(d.plans.update(free!.id, { isDefault: false }));
      expect(err.field).toBe('is_default');
      for (const e of [err]) expect(e.message.split('\n')).toHaveLength(1);
    });

    it('updates plans and resolves them by id or name', async () => {
      const { d } = await domainStore({ dialect });
      const p = await d.plans.create({ name: 'Starter', requestsPerMinute: 5 });
      const up = await d.plans.update(p.id, { requestsPerMinute: null, requestsPerMonth: 50_000, overageCentsPerRequest: 0.001 });
      expect(up).toMatchObject({ requestsPerMinute: null, requestsPerMonth: 50_000, overageCentsPerRequest: 0.001, name: 'Starter' });
      expect((await d.plans.resolve('starter')).id).toBe(p.id);
      expect((await d.plans.resolve(p.id)).name).toBe('Starter');
      const err = await rejection(d.plans.resolve('gold'));
      expect(err).toMatchObject({ kind: 'not_found', message: 'no plan with id or name "gold"' });
      expect((await rejection(d.plans.update('plan_missing', { name: 'x' }))).kind).toBe('not_found');
    });

    it('refuses to delete a plan in use or the default while others exist', async () => {
      const { d } = await domainStore({ dialect });
      const free = await d.plans.create({ name: 'Free' });
      const pro = await d.plans.create({ name: 'Pro' });
      const user = await d.users.create({ email: 'a@example.com', planId: pro.id });
      let err = await rejection(d.plans.delete(pro.id));
      expect(err).toMatchObject({ kind: 'conflict', code: 'PLAN_IN_USE' });
      expect(err.message).toBe(`plan Pro (${pro.id}) is the plan of 1 user(s); move them to another plan first`);
      err = await rejection(d.plans.delete(free.id));
      expect(err.code).toBe('PLAN_IS_DEFAULT');
      await d.users.update(user.id, { planId: free.id });
      await d.plans.delete(pro.id);
      expect((await d.plans.list()).map((p) => p.name)).toEqual(['Free']);
    });

    it('computes overage exactly in integer micro-cents, rounding the total up to a cent', async () => {
      const { overageCents } = await import('../src/domain/plans.js');
      expect(overageCents({ overageCentsPerRequest: 0.05 }, 12_345)).toBe(618); // 617.25 -> 618
      expect(overageCents({ overageCentsPerRequest: 0.1 }, 30)).toBe(3); // no float drift to 3.0000000004 -> 4
      expect(overageCents({ overageCentsPerRequest: null }, 1000)).toBe(0);
    });
  });

  describe('users', () => {
    it('creates users on the default plan with a normalised email', async () => {
      const { d } = await domainStore({ dialect });
      const err0 = await rejection(d.users.create({ email: 'early@example.com' }));
      expect(err0).toMatchObject({ code: 'NO_DEFAULT_PLAN', field: 'plan_id' });
      const free = await d.plans.create({ name: 'Free' });
      const u = await d.users.create({ email: '  Ada@Example.COM ', name: 'Ada' });
      expect(u).toMatchObject({ email: 'ada@example.com', name: 'Ada', status: 'active', planId: free.id, emailVerified: false });
      expect(u.id).toMatch(/^usr_[0-9A-Za-z]{16}$/);
      expect(u).not.toHaveProperty('passwordHash');
      expect((await d.users.findByEmail('ADA@example.com'))?.id).toBe(u.id);
      expect((await d.users.resolve('ada@example.com')).id).toBe(u.id);
    });

    it('says a duplicate email or an unknown plan id in one line naming the field', async () => {
      const { d } = await domainStore({ dialect });
      await d.plans.create({ name: 'Free' });
      const u = await d.users.create({ email: 'ada@example.com' });
      let err = await rejection(d.users.create({ email: 'ADA@example.com' }));
      expect(err).toMatchObject({
        kind: 'conflict',
        code: 'EMAIL_TAKEN',
        field: 'email',
        message: `user: email: ada@example.com is already the email of user ${u.id}`,
      });
      err = await rejection(d.users.create({ email: 'bob@example.com', planId: 'plan_nope' }));
      expect(err).toMatchObject({
        kind: 'invalid',
        code: 'PLAN_NOT_FOUND',
        field: 'plan_id',
        message: 'user: plan_id: no plan with id plan_nope',
      });
      err = await rejection(d.users.create({ email: 'not-an-email' }));
      expect(err).toMatchObject({ field: 'email', message: 'user: email: expected an email address such as ada@example.com' });
      err = await rejection(d.users.update(u.id, { status: 'banned' as never }));
      expect(err.message).toBe('user: status: expected active or suspended');
      const b = await d.users.create({ email: 'bob@example.com' });
      err = await rejection(d.users.update(b.id, { email: 'ada@example.com' }));
      expect(err.code).toBe('EMAIL_TAKEN');
    });

    it('suspends, activates, changes plan and deletes with the keys', async () => {
      const { d } = await domainStore({ dialect });
      await d.plans.create({ name: 'Free' });
      const pro = await d.plans.create({ name: 'Pro' });
      const u = await d.users.create({ email: 'ada@example.com' });
      const { key } = await d.keys.create({ userId: u.id });
      expect((await d.users.suspend(u.id)).status).toBe('suspended');
      expect(await d.keys.check(key)).toMatchObject({ ok: false, reason: 'suspended' });
      expect((await d.users.activate(u.id)).status).toBe('active');
      expect((await d.users.update(u.id, { planId: pro.id })).planId).toBe(pro.id);
      expect(await d.keys.check(key)).toMatchObject({ ok: true, record: { planId: pro.id } });
      await d.users.delete(u.id);
      expect(await d.users.find(u.id)).toBeUndefined();
      expect(await d.keys.check(key)).toEqual({ ok: false, reason: 'unknown' });
      expect((await rejection(d.users.delete(u.id))).kind).toBe('not_found');
    });

    it('lists users in pages, filtered by status and plan', async () => {
      const { d, clock } = await domainStore({ dialect });
      const free = await d.plans.create({ name: 'Free' });
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        clock.now = new Date(clock.now.getTime() + 1000);
        ids.push((await d.users.create({ email: `u${i}@example.com` })).id);
      }
      await d.users.suspend(ids[1]!);
      const p1 = await d.users.list({ limit: 2 });
      expect(p1.items.map((u) => u.id)).toEqual(ids.slice(0, 2));
      const p2 = await d.users.list({ limit: 2, cursor: p1.cursor! });
      const p3 = await d.users.list({ limit: 2, cursor: p2.cursor! });
      expect([...p2.items, ...p3.items].map((u) => u.id)).toEqual(ids.slice(2));
      expect(p3.cursor).toBeUndefined();
      expect((await d.users.list({ status: 'suspended' })).items.map((u) => u.id)).toEqual([ids[1]]);
      expect((await d.users.list({ planId: free.id })).items).toHaveLength(5);
      expect((await rejection(d.users.list({ cursor: 'garbage' }))).field).toBe('cursor');
      expect((await rejection(d.users.list({ limit: 0 }))).field).toBe('limit');
    });

    it('keeps the portal password hash out of user objects', async () => {
      const { d } = await domainStore({ dialect });
      await d.plans.create({ name: 'Free' });
      const u = await d.users.create({ email: 'ada@example.com', passwordHash: 'scrypt$abc' });
      expect(await d.users.passwordHash(u.id)).toBe('scrypt$abc');
      await d.users.setPasswordHash(u.id, 'scrypt$def');
      expect(await d.users.passwordHash(u.id)).toBe('scrypt$def');
      expect(JSON.stringify(await d.users.get(u.id))).not.toContain('scrypt');
    });
  });
});
