import { beforeEach, describe, expect, it } from 'vitest';
import type { ProviderMapping, Store } from '../src/index.js';
import { DIALECTS, domainStore } from './helpers/domain.js';

let store: Store;

const cus = (localId: string, externalId: string) => ({ provider: 'stripe', entityType: 'customer', localId, externalId });

describe.each(DIALECTS)('%s', (dialect) => {
  describe('provider mappings', () => {
    beforeEach(async () => {
      store = (await domainStore({ dialect })).store;
    });

    it('puts and finds a mapping both ways', async () => {
      const put = await store.mappings.put(cus('user-1', 'cus_A'));
      expect(put).toMatchObject(cus('user-1', 'cus_A'));
      expect(put.createdAt).toBeInstanceOf(Date);

      expect(await store.mappings.findExternal('stripe', 'customer', 'user-1')).toEqual(put);
      expect(await store.mappings.findLocal('stripe', 'customer', 'cus_A')).toEqual(put);
      expect(await store.mappings.findExternal('stripe', 'customer', 'user-2')).toBeUndefined();
      expect(await store.mappings.findLocal('stripe', 'customer', 'cus_B')).toBeUndefined();
      // Scoped by provider and entity type.
      expect(await store.mappings.findExternal('paddle', 'customer', 'user-1')).toBeUndefined();
      expect(await store.mappings.findLocal('stripe', 'subscription', 'cus_A')).toBeUndefined();
    });

    it('put is idempotent for the same pair', async () => {
      const first = await store.mappings.put(cus('user-1', 'cus_A'));
      const again = await store.mappings.put(cus('user-1', 'cus_A'));
      expect(again).toEqual(first);
      expect((await store.mappings.list({})).items).toHaveLength(1);
    });

    it('a local id already mapped elsewhere is a clear conflict', async () => {
      await store.mappings.put(cus('user-1', 'cus_A'));
      await expect(store.mappings.put(cus('user-1', 'cus_B'))).rejects.toMatchObject({
        code: 'MAPPING_CONFLICT',
        message: expect.stringMatching(/local id user-1 is already mapped to external id cus_A, not cus_B/),
      });
      expect((await store.mappings.findExternal('stripe', 'customer', 'user-1'))!.externalId).toBe('cus_A');
    });

    it('an external id already mapped elsewhere is a clear conflict', async () => {
      await store.mappings.put(cus('user-1', 'cus_A'));
      await expect(store.mappings.put(cus('user-2', 'cus_A'))).rejects.toMatchObject({
        code: 'MAPPING_CONFLICT',
        message: expect.stringMatching(/external id cus_A is already mapped to local id user-1, not user-2/),
      });
      expect(await store.mappings.findExternal('stripe', 'customer', 'user-2')).toBeUndefined();
    });

    it('the same ids may be reused under another provider or entity type', async () => {
      await store.mappings.put(cus('user-1', 'x-1'));
      await store.mappings.put({ provider: 'paddle', entityType: 'customer', localId: 'user-1', externalId: 'x-1' });
      await store.mappings.put({ provider: 'stripe', entityType: 'subscription', localId: 'user-1', externalId: 'x-1' });
      expect((await store.mappings.list({})).items).toHaveLength(3);
    });

    it('the database itself enforces uniqueness both ways', async () => {
      const ins = (localId: string, externalId: string) =>
        store.db
          .insert(store.t.providerMappings)
          .values({ provider: 'stripe', entityType: 'customer', localId, externalId, createdAt: new Date() })
          .then(() => 'inserted');
      expect(await ins('u1', 'e1')).toBe('inserted');
      // Drizzle wraps the driver's error; its cause names the constraint (SQLite UNIQUE / PRIMARY KEY, PostgreSQL duplicate key).
      const cause = (p: Promise<unknown>) =>
        p.then(
          () => 'inserted',
          (err: { cause?: Error } & Error) => String(err.cause?.message ?? err.message),
        );
      expect(await cause(ins('u1', 'e2'))).toMatch(/UNIQUE|PRIMARY KEY|duplicate key/);
      expect(await cause(ins('u2', 'e1'))).toMatch(/UNIQUE|duplicate key/);
    });

    it('rejects empty ids', async () => {
      await expect(store.mappings.put(cus('', 'cus_A'))).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    });

    it('delete removes one mapping and reports whether it existed', async () => {
      await store.mappings.put(cus('user-1', 'cus_A'));
      expect(await store.mappings.delete('stripe', 'customer', 'user-1')).toBe(true);
      expect(await store.mappings.delete('stripe', 'customer', 'user-1')).toBe(false);
      expect(await store.mappings.findLocal('stripe', 'customer', 'cus_A')).toBeUndefined();
      // Once deleted, the external id may be mapped again.
      await store.mappings.put(cus('user-2', 'cus_A'));
    });

    it('lists in key order, filtered, page by page with a cursor', async () => {
      for (let i = 0; i < 7; i++) await store.mappings.put(cus(`user-${i}`, `cus_${i}`));
      await store.mappings.put({ provider: 'stripe', entityType: 'subscription', localId: 'sub-local', externalId: 'sub_1' });
      await store.mappings.put({ provider: 'paddle', entityType: 'customer', localId: 'user-0', externalId: 'ctm_1' });

      const seen: ProviderMapping[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await store.mappings.list({ provider: 'stripe', entityType: 'customer', limit: 3, ...(cursor ? { cursor } : {}) });
        seen.push(...page.items);
        cursor = page.cursor;
        pages++;
      } while (cursor);
      expect(pages).toBe(3);
      expect(seen.map((m) => m.localId)).toEqual(['user-0', 'user-1', 'user-2', 'user-3', 'user-4', 'user-5', 'user-6']);

      const exact = await store.mappings.list({ provider: 'stripe', entityType: 'customer', limit: 7 });
      expect(exact.items).toHaveLength(7);
      expect(exact.cursor).toBeUndefined();

      const stripe = await store.mappings.list({ provider: 'stripe' });
      expect(stripe.items.map((m) => m.entityType)).toEqual([...Array(7).fill('customer'), 'subscription']);

      const all = await store.mappings.list({ limit: 2 });
      expect(all.items.map((m) => `${m.provider}/${m.localId}`)).toEqual(['paddle/user-0', 'stripe/user-0']);
      const next = await store.mappings.list({ limit: 2, cursor: all.cursor! });
      expect(next.items.map((m) => `${m.provider}/${m.localId}`)).toEqual(['stripe/user-1', 'stripe/user-2']);
    });

    it('rejects a bad cursor or limit with one line', async () => {
      await expect(store.mappings.list({ cursor: 'not-a-cursor' })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
      await expect(store.mappings.list({ limit: 0 })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
      await expect(store.mappings.list({ limit: 1001 })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    });
  });
});
