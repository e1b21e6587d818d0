// The image's HEALTHCHECK script follows the address `serve` actually bound (here a random port
// from --port 0, not APIGATE_PORT), and the start-up log names the bound address.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { APP_DIR, BIN, cleanEnv, run, serve, tempDir } from './helpers.js';

const HEALTHCHECK = path.join(APP_DIR, 'dist', 'healthcheck.js');

describe('healthcheck (the image HEALTHCHECK)', () => {
  it('checks the port serve bound, and fails once it stopped', async () => {
    const dataDir = tempDir('healthcheck');
    // APIGATE_PORT points elsewhere on purpose: the check must not trust it.
    const env = cleanEnv({ APIGATE_DATA_DIR: dataDir, APIGATE_PORT: '1' });
    const before = await run(process.execPath, [HEALTHCHECK], { env });
    expect(before.code).toBe(1);
    expect(before.stderr).toContain('serve.json not found');

    const served = await serve(BIN, env);
    const port = new URL(served.url).port;
    expect(served.logs()).toContain(`apigate listening on http://127.0.0.1:${port} (bound to 127.0.0.1:${port})`);
    const ok = await run(process.execPath, [HEALTHCHECK], { env });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout.trim()).toBe(`ok: http://127.0.0.1:${port}/admin/health answered 200 healthy`);

    expect(await served.stop()).toBe(0);
    expect(existsSync(path.join(dataDir, 'serve.json'))).toBe(false);
    const after = await run(process.execPath, [HEALTHCHECK], { env });
    expect(after.code).toBe(1);
  });
});
