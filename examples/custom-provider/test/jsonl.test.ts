import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { assertValidManifest, createForTest, describeNotificationProvider } from '@apigate/provider-testkit';
import { describe, expect, it } from 'vitest';
import pkg from '../package.json' with { type: 'json' };
import provider from '../src/index.js';

const file = path.join(await mkdtemp(path.join(tmpdir(), 'jsonl-')), 'out.jsonl');
const readLines = () =>
  readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));

describe('apigate-provider-jsonl-notification', () => {
  it('has a valid manifest', () => assertValidManifest(pkg, provider));

  it('writes to <dataDir>/notifications.jsonl by default', async () => {
    const { provider: p, dataDir } = await createForTest(provider, {});
    await p.notify({ id: 'n1', event: 'test', title: 'hello', severity: 'info', occurredAt: new Date(0) });
    await p.close();
    const line = JSON.parse(readFileSync(path.join(dataDir, 'notifications.jsonl'), 'utf8'));
    expect(line).toMatchObject({ id: 'n1', title: 'hello', occurredAt: '1970-01-01T00:00:00.000Z' });
  });
});

describeNotificationProvider(provider, { name: 'jsonl', config: { path: file }, received: readLines });
