import { afterEach } from 'vitest';
import { openStore, type Store } from '../../src/index.js';
import { KEY_A, tempDir } from '../helpers.js';

const open: Store[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

/** A store on a fresh temp folder (closed after the test); `clock.now` can be moved. */
export async function domainStore(opts: { dataDir?: string; start?: Date } = {}) {
  const dataDir = opts.dataDir ?? (await tempDir());
  const clock = { now: opts.start ?? new Date('2025-03-10T12:00:00Z') };
  const store = await openStore({ dataDir, secretKey: KEY_A, now: () => clock.now });
  open.push(store);
  return { store, d: store.domain, dataDir, clock };
}
