import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createForTest, describeStorageProvider } from '@apigate/provider-testkit';
import { afterAll } from 'vitest';
import provider from '../src/index.js';

// One folder for every instance, so `reopen` (defaulting to `create`) sees what earlier instances wrote.
const root = mkdtempSync(path.join(tmpdir(), 'apigate-disk-conformance-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describeStorageProvider({
  name: 'provider-disk-storage conformance',
  create: async () => (await createForTest(provider, { path: root })).provider,
  features: provider.features,
});
