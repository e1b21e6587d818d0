import { spawn } from 'node:child_process';
import { readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { APP_DIR, cleanEnv, REPO_DIR, tempDir } from './helpers.js';

/** The gateway README's startApiGate sample, exactly as the README shows it. */
function readmeSample(): string {
  const readme = readFileSync(path.join(REPO_DIR, 'packages/gateway/README.md'), 'utf8');
  const m = /<!-- sample: startApiGate -->\n```ts\n([\s\S]*?)\n```/.exec(readme);
  if (!m) throw new Error('packages/gateway/README.md has no "<!-- sample: startApiGate -->" ts block');
  return m[1]!;
}

describe('the gateway README sample', () => {
  const dir = tempDir('readme-sample');
  const children: ReturnType<typeof spawn>[] = [];
  afterAll(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  });

  it('runs as written: serves health and the proxy, and stops cleanly on SIGTERM', async () => {
    // A folder like a user's: a package.json listing the kernel, the gateway and the providers, their node_modules.
    const app = JSON.parse(readFileSync(path.join(APP_DIR, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    writeFileSync(
      path.join(dir, 'package.json'),
      JSON.stringify({ name: 'sample', private: true, type: 'module', dependencies: app.dependencies }),
    );
    symlinkSync(path.join(APP_DIR, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
    // The sample has no type annotations: the same text is a JavaScript module.
    writeFileSync(path.join(dir, 'sample.mjs'), readmeSample());

    const child = spawn(process.execPath, ['sample.mjs'], {
      cwd: dir,
      env: cleanEnv({ APIGATE_DATA_DIR: path.join(dir, 'data'), PORT: '0' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number>((r) => child.on('close', (code) => r(code ?? -1)));
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setInterval(() => {
        const m = /listening on (http:\/\/[^"\s]+)/.exec(out);
        if (m) {
          clearInterval(timer);
          resolve(m[1]!.replace('0.0.0.0', '127.0.0.1').replace('[::]', '127.0.0.1'));
        }
      }, 50);
      void exited.then((code) => {
        clearInterval(timer);
        reject(new Error(`the sample exited with ${code} before listening:\n${out}`));
      });
    });

    const health = await fetch(`${url}/admin/health`);
    expect(health.status).toBe(200);
    const body = (await health.json()) as { status: string; providers: Record<string, { provider: string | null }> };
    expect(body.status).toBe('healthy');
    expect(body.providers.cache?.provider).toBe('memory');
    // The proxy path (front): a call without an API key is refused by the gateway, not by the app's 404.
    const proxied = await fetch(`${url}/v1/anything`);
    expect(proxied.status).toBe(401);

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(out).toContain('gateway stopped');
  });
});
