import { openStore, PaymentInbox } from '@apigate/gateway';
import { utf8 } from '@apigate/kernel';
import { describe, expect, it } from 'vitest';
import { cleanEnv, cli, tempDir } from './helpers.js';

describe('apigate payments events', { timeout: 120_000 }, () => {
  it('lists failed events, shows one with its body, replays it (queued again, fresh tries), and says plainly what is wrong', async () => {
    const dataDir = tempDir('payments-cli');
    const env = cleanEnv({ APIGATE_DATA_DIR: dataDir, QUEUE_PROVIDER: 'memory' });
    const store = await openStore({ dataDir });
    try {
      const inbox = new PaymentInbox(store);
      const body = JSON.stringify({ id: 'evt_cli_1', type: 'subscription.created', occurredAt: new Date().toISOString() });
      await inbox.record(
        'dummy',
        { id: 'evt_cli_1', type: 'subscription.created', occurredAt: new Date() },
        { rawBody: utf8.encode(body), headers: { 'apigate-dummy-signature': 't=1,v1=ab', authorization: 'Bearer nope' } },
      );
      await inbox.startAttempt('dummy', 'evt_cli_1');
      await inbox.fail('dummy', 'evt_cli_1', 'payment event dummy:evt_cli_1 (subscription.created): no plan for dummy price price_x');

      const list = await cli(['payments', 'events', 'list', '--status', 'failed', '--json'], env);
      expect(list.code, list.stderr).toBe(0);
      const listed = JSON.parse(list.stdout) as { data: Record<string, unknown>[] };
      expect(listed.data).toEqual([expect.objectContaining({ event_id: 'evt_cli_1', provider: 'dummy', status: 'failed', attempts: 1 })]);

      const show = await cli(['payments', 'events', 'show', 'evt_cli_1', '--json'], env);
      expect(show.code, show.stderr).toBe(0);
      const shown = JSON.parse(show.stdout) as { body: string; header_names: string[]; last_error: string };
      expect(shown.body).toBe(body);
      // Credentials are never stored with the body.
      expect(shown.header_names).toEqual(['apigate-dummy-signature']);
      expect(shown.last_error).toContain('no plan for dummy price price_x');

      const replay = await cli(['payments', 'events', 'replay', 'evt_cli_1'], env);
      expect(replay.code, replay.stderr).toBe(0);
      expect(replay.stdout).toContain('queued again');
      expect(await inbox.find('dummy', 'evt_cli_1')).toMatchObject({ status: 'queued', attempts: 0 });

      const missing = await cli(['payments', 'events', 'show', 'evt_nope'], env);
      expect(missing.code).toBe(3);
      expect(missing.stderr.trim()).toBe('apigate: payment event evt_nope not found');
      const bad = await cli(['payments', 'events', 'list', '--status', 'done'], env);
      expect(bad.code).toBe(1);
      expect(bad.stderr.trim()).toBe('apigate: --status: expected one of queued, applied, skipped, failed');
    } finally {
      await store.close();
    }
  });
});
