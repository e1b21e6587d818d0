import { describe, expect, it, vi } from 'vitest';
import { monthOf, openStore } from '../src/index.js';
import { KEY_A } from './helpers.js';
import { cleanupAfterEach } from './helpers/cleanup.js';
import { customer, recorder, startGate } from './helpers/gate.js';
import { call, listen } from './helpers/http.js';

const { defer, use } = cleanupAfterEach();

describe('proxy hardening', () => {
  it('meters a response the upstream cut mid-body as an error, not a 200', async () => {
    const up = await use(
      await listen((req, res) => {
        res.writeHead(200, { 'content-length': '100' });
        if (req.url === '/cut') {
          res.write('partial');
          setImmediate(() => res.socket?.destroy());
        } else res.end('x'.repeat(100));
      }),
    );
    const gate = await startGate({ gateway: { pollIntervalMs: 50, meterIntervalMs: 20 } });
    defer(() => gate.stop());
    const { key, user } = await customer(gate.store, up.url);
    await gate.gateway.catalog.settled();
    expect((await call(`${gate.url}/api/whole`, { headers: { 'x-api-key': key } })).status).toBe(200);
    await expect(call(`${gate.url}/api/cut`, { headers: { 'x-api-key': key } })).rejects.toThrow(/aborted|socket hang up|ECONNRESET/);
    const month = monthOf(new Date());
    await vi.waitFor(
      async () => expect((await gate.store.domain.usage.forUser(user.id, month)).totals).toMatchObject({ requests: 2, errors: 1 }),
      {
        timeout: 10_000,
        interval: 50,
      },
    );
    await gate.stop();
    const store = await openStore({ dataDir: gate.dataDir, secretKey: KEY_A });
    defer(() => store.close());
    expect((await store.domain.usage.forUser(user.id, month)).totals).toMatchObject({ requests: 2, errors: 1 });
  });

  it('strips underscore and mixed look-alikes of the injected identity and forwarding headers, in any case', async () => {
    const upstream = await use(recorder());
    const gate = await startGate({ gateway: { pollIntervalMs: 50 } });
    defer(() => gate.stop());
    const { key, user, apiKey } = await customer(gate.store, upstream.url);
    await gate.gateway.catalog.settled();
    const forged = {
      X_User_ID: 'usr_forged',
      x_plan_id: 'plan_forged',
      X_KEY_ID: 'key_forged',
      'X-User_Id': 'usr_mixed',
      X_Forwarded_For: '10.9.9.9',
      'x_forwarded-host': 'evil.example',
      'X-Custom_Header': 'kept',
    };
    expect((await call(`${gate.url}/api/x`, { headers: { 'x-api-key': key, ...forged } })).status).toBe(200);
    const got = upstream.received[0]!;
    const names = Object.keys(got.headers);
    for (const n of ['x_user_id', 'x_plan_id', 'x_key_id', 'x-user_id', 'x_forwarded_for', 'x_forwarded-host'])
      expect(names, n).not.toContain(n);
    expect(got.headers['x-user-id']).toBe(user.id);
    expect(got.headers['x-key-id']).toBe(apiKey.id);
    expect(got.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(got.headers['x-custom_header']).toBe('kept');
    expect(JSON.stringify(got.headers)).not.toMatch(/forged|usr_mixed|10\.9\.9\.9|evil\.example/);
  });
});
