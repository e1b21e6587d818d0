import { describe, expect, it, vi } from 'vitest';
import type { ChangeEvent, DomainError } from '../src/index.js';
import { hashApiKey } from '../src/domain/keys.js';
import { DIALECTS, domainStore, type TestDialect } from './helpers/domain.js';

async function withUser(dialect: TestDialect) {
  const s = await domainStore({ dialect });
  const plan = await s.d.plans.create({ name: 'Free', requestsPerMinute: 10 });
  const user = await s.d.users.create({ email: 'ada@example.com' });
  return { ...s, plan, user };
}

describe.each(DIALECTS)('%s', (dialect) => {
  describe('api keys', () => {
    it('makes ak_ keys shown once and stores only their SHA-256', async () => {
      const { d, user, store } = await withUser(dialect);
      const { apiKey, key } = await d.keys.create({ userId: user.id, name: 'laptop' });
      expect(key).toMatch(/^ak_[0-9A-Za-z]{40}$/);
      expect(apiKey).toMatchObject({
        userId: user.id,
        name: 'laptop',
        status: 'active',
        prefix: key.slice(0, 11),
        lastUsedAt: null,
        revokedAt: null,
      });
      expect(apiKey.id).toMatch(/^key_/);
      expect(JSON.stringify(apiKey)).not.toContain(key);

      const rows = await store.db.select().from(store.t.apiKeys);
      expect(rows).toHaveLength(1);
      expect(rows[0]!.hash).toBe(hashApiKey(key));
      expect(JSON.stringify(rows)).not.toContain(key.slice(11));

      const second = await d.keys.create({ userId: user.id });
      expect(second.key).not.toBe(key);
    });

    it('finds a key by hash with its user plan and status, and checks it like the proxy', async () => {
      const { d, user, plan, clock } = await withUser(dialect);
      const { apiKey, key } = await d.keys.create({ userId: user.id, expiresAt: new Date(clock.now.getTime() + 3_600_000) });
      expect(await d.keys.findByHash(hashApiKey(key))).toEqual({
        keyId: apiKey.id,
        hash: hashApiKey(key),
        userId: user.id,
        planId: plan.id,
        userStatus: 'active',
        expiresAt: apiKey.expiresAt,
        revokedAt: null,
      });
      expect(await d.keys.check(key)).toMatchObject({ ok: true, record: { keyId: apiKey.id } });
      expect(await d.keys.check(`${key.slice(0, -1)}${key.endsWith('x') ? 'y' : 'x'}`)).toEqual({ ok: false, reason: 'unknown' });
      expect(await d.keys.check('not-a-key')).toEqual({ ok: false, reason: 'unknown' });

      clock.now = new Date(clock.now.getTime() + 3_600_000);
      expect(await d.keys.check(key)).toMatchObject({ ok: false, reason: 'expired' });
      expect((await d.keys.get(apiKey.id)).status).toBe('expired');
      expect((await d.keys.list({ userId: user.id, includeInactive: false })).items).toEqual([]);
    });

    it('revokes once, keeps the record, and drops the key from the auth list', async () => {
      const { d, user, clock } = await withUser(dialect);
      const a = await d.keys.create({ userId: user.id, name: 'a' });
      clock.now = new Date(clock.now.getTime() + 1000); // list order is creation time
      const b = await d.keys.create({ userId: user.id, name: 'b' });
      const revoked = await d.keys.revoke(a.apiKey.id);
      expect(revoked).toMatchObject({ status: 'revoked', revokedAt: clock.now });
      clock.now = new Date(clock.now.getTime() + 5000);
      expect((await d.keys.revoke(a.apiKey.id)).revokedAt).toEqual(revoked.revokedAt);
      expect(await d.keys.check(a.key)).toMatchObject({ ok: false, reason: 'revoked' });
      expect((await d.keys.listForAuth()).map((r) => r.keyId)).toEqual([b.apiKey.id]);
      expect((await d.keys.list({ userId: user.id })).items.map((k) => k.status)).toEqual(['revoked', 'active']);
    });

    it('refuses an unknown user, a past expiry and a bad date in one line', async () => {
      const { d, user, clock } = await withUser(dialect);
      const err = (p: Promise<unknown>) =>
        p.then(
          () => expect.unreachable(),
          (e: DomainError) => e,
        );
      expect(await err(d.keys.create({ userId: 'usr_nobody' }))).toMatchObject({
        code: 'USER_NOT_FOUND',
        field: 'user_id',
        message: 'api key: user_id: no user with id usr_nobody',
      });
      expect(await err(d.keys.create({ userId: user.id, expiresAt: new Date(clock.now.getTime() - 1) }))).toMatchObject({
        field: 'expires_at',
      });
      expect(await err(d.keys.create({ userId: user.id, expiresAt: 'someday' as never }))).toMatchObject({
        message: 'api key: expires_at: expected a date and time (ISO 8601)',
      });
      expect(await err(d.keys.revoke('key_nope'))).toMatchObject({ kind: 'not_found', message: 'no api key with id key_nope' });
    });
  });

  describe('change notifier', () => {
    it('emits after each committed write with a per-entity version, and nothing for a refused write', async () => {
      const { d } = await domainStore({ dialect });
      const events: ChangeEvent[] = [];
      d.changes.on('change', (e) => events.push(e));
      const plan = await d.plans.create({ name: 'Free' });
      const user = await d.users.create({ email: 'ada@example.com' });
      const { apiKey } = await d.keys.create({ userId: user.id });
      await d.keys.revoke(apiKey.id);
      const route = await d.routes.create({ pathPrefix: '/api', upstreamUrl: 'http://127.0.0.1:1' });
      await d.users.create({ email: 'ada@example.com' }).catch(() => undefined);
      expect(events).toEqual([
        { entity: 'plans', action: 'created', id: plan.id, version: 1 },
        { entity: 'users', action: 'created', id: user.id, version: 1 },
        { entity: 'keys', action: 'created', id: apiKey.id, version: 1 },
        { entity: 'keys', action: 'revoked', id: apiKey.id, version: 2 },
        { entity: 'routes', action: 'created', id: route.id, version: 1 },
      ]);
      expect(d.changes.version('keys')).toBe(2);
      expect(d.changes.version('webhook_endpoints')).toBe(0);
      // Deleting a user takes their keys with them: both caches hear about it.
      await d.users.delete(user.id);
      expect(events.slice(-2).map((e) => `${e.entity}:${e.action}`)).toEqual(['users:deleted', 'keys:deleted']);
    });

    it('sees writes made by another process through poll()', async () => {
      const server = await domainStore({ dialect });
      const cli = await domainStore({ dialect, dataDir: server.dataDir }); // a second connection: what `apigate keys create` is
      await server.d.plans.create({ name: 'Free' });
      expect(await server.d.changes.poll()).toEqual([]); // its own write is already known

      const seen: ChangeEvent[] = [];
      server.d.changes.on('change', (e) => seen.push(e));
      const user = await cli.d.users.create({ email: 'ada@example.com' });
      await cli.d.keys.create({ userId: user.id });
      await cli.d.keys.create({ userId: user.id });
      const polled = await server.d.changes.poll();
      // On PostgreSQL the change notifications (LISTEN/NOTIFY) may have made the server poll already.
      if (dialect === 'sqlite') expect(polled.sort()).toEqual(['keys', 'users']);
      await vi.waitFor(() =>
        expect(seen).toEqual(
          expect.arrayContaining([
            { entity: 'users', action: 'external', version: 1 },
            { entity: 'keys', action: 'external', version: 2 },
          ]),
        ),
      );
      expect(await server.d.changes.poll()).toEqual([]);
      // A store opened later starts from the stored versions.
      const third = await domainStore({ dialect, dataDir: server.dataDir });
      expect(third.d.changes.version('keys')).toBe(2);
    });

    it("does not take its own committed but not yet emitted write for another process's; once settled, others' writes show again", async () => {
      const server = await domainStore({ dialect });
      // What a poll woken by the write's own NOTIFY sees: the version bumped and committed, not yet emitted here.
      const version = await server.store.tx((tx) => server.d.changes.bump(tx, 'keys'));
      expect(await server.d.changes.poll()).toEqual([]);
      server.d.changes.emitted('keys', 'created', 'key_x', version);
      server.d.changes.settled('keys');
      expect(await server.d.changes.poll()).toEqual([]);
      // A write that rolled back after its bump holds nothing once settled either.
      await expect(
        server.store.tx(async (tx) => {
          await server.d.changes.bump(tx, 'keys');
          throw new Error('refused');
        }),
      ).rejects.toThrow('refused');
      server.d.changes.settled('keys');
      const cli = await domainStore({ dialect, dataDir: server.dataDir });
      await cli.d.plans.create({ name: 'Free' });
      const user = await cli.d.users.create({ email: 'ada@example.com' });
      await cli.d.keys.create({ userId: user.id });
      await vi.waitFor(async () => {
        await server.d.changes.poll();
        expect(server.d.changes.version('keys')).toBe(version + 1);
      });
    });

    it('watch() polls on a timer until stopped', async () => {
      const server = await domainStore({ dialect });
      const cli = await domainStore({ dialect, dataDir: server.dataDir });
      const stop = server.d.changes.watch(20);
      try {
        const heard = new Promise<ChangeEvent>((resolve) => server.d.changes.once('change', resolve));
        await cli.d.routes.create({ pathPrefix: '/v1', upstreamUrl: 'http://127.0.0.1:9' });
        expect(await heard).toMatchObject({ entity: 'routes', action: 'external' });
      } finally {
        stop();
      }
    });
  });
});
