import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describeStorageProvider } from '@apigate/provider-testkit';
import provider from '../src/index.js';

// One folder for every instance, so `reopen` (defaulting to `create`) sees what earlier instances wrote.
const root = mkdtempSync(path.join(tmpdir(), 'apigate-disk-conformance-'));

describeStorageProvider(provider, {
  name: 'provider-disk-storage conformance',
  config: { path: root },
  afterAll: () => rmSync(root, { recursive: true, force: true }),
});
