import { openStore } from '@apigate/gateway';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, cleanEnv, cli, serve, tempDir } from './helpers.js';

const dataDir = tempDir('cli');
const env = cleanEnv({ APIGATE_DATA_DIR: dataDir });

describe('apigate CLI', () => {
  it('has --help on every command', async () => {
    for (const args of [
      [],
      ['serve'],
      ['settings'],
      ['settings', 'set'],
      ['settings', 'get'],
      ['settings', 'list'],
      ['settings', 'unset'],
      ['settings', 'keys'],
      ['providers'],
      ['providers', 'list'],
      ['providers', 'test'],
      ['provider-mappings'],
      ['provider-mappings', 'list'],
      ['provider-mappings', 'lookup'],
    ]) {
      const r = await cli([...args, '--help'], env);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stdout).toContain('Usage: apigate');
    }
    const test = await cli(['providers', 'test', '--help'], env);
    for (const flag of ['--payment', '--email', '--cache', '--storage', '--queue', '--notification', '--oauth', '--tls', '--json']) {
      expect(test.stdout).toContain(flag);
    }
  });

  it('lists the development providers as JSON and marks the selected ones', async () => {
    const r = await cli(['providers', 'list', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {
      providers: { capability: string; name: string; selected: boolean; package: string }[];
      problems: unknown[];
    };
    expect(out.problems).toEqual([]);
    const selected = out.providers.filter((p) => p.selected).map((p) => `${p.capability}/${p.name}`);
    expect(selected.sort()).toEqual(['cache/memory', 'email/log', 'notification/log', 'payment/dummy', 'queue/memory', 'storage/memory']);
    const names = out.providers.map((p) => p.package);
    for (const pkg of [
      '@apigate/provider-memory-cache',
      '@apigate/provider-memory-queue',
      '@apigate/provider-memory-storage',
      '@apigate/provider-disk-storage',
      '@apigate/provider-log-email',
      '@apigate/provider-log-notification',
      '@apigate/provider-dummy-payment',
    ]) {
      expect(names).toContain(pkg);
    }
  });

  it('tests the development providers and exits 0; a failing provider exits 1', async () => {
    const ok = await cli(['providers', 'test', '--json'], env);
    expect(ok.code, ok.stderr).toBe(0);
    const report = JSON.parse(ok.stdout);
    expect(report.providers.cache).toMatchObject({ provider: 'memory', status: 'connected' });
    expect(report.providers.oauth).toEqual({ provider: null, status: 'disabled' });

    const only = await cli(['providers', 'test', '--cache', '--email'], env);
    expect(only.code).toBe(0);
    expect(only.stdout).toMatch(/cache\s+memory\s+connected/);
    expect(only.stdout).not.toMatch(/payment/);

    // Redis on a port where nothing listens: the check fails, the command says so and exits 1.
    const down = await cli(['providers', 'test', '--cache', '--json'], {
      ...env,
      CACHE_PROVIDER: 'redis',
      REDIS_URL: 'redis://127.0.0.1:1',
    });
    expect(down.code).toBe(1);
    expect(JSON.parse(down.stdout).providers.cache).toMatchObject({ provider: 'redis', status: 'error' });
  });

  it('stores settings, encrypts and masks secrets, and explains bad keys and values in one line', async () => {
    const secret = 'smtp-password-very-secret-123';
    let r = await cli(['settings', 'set', 'email.smtp.password', secret], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toContain(secret);
    expect(r.stdout).toContain('(secret, encrypted)');

    r = await cli(['settings', 'set', 'cache.provider', 'memory'], env);
    expect(r.code, r.stderr).toBe(0);

    r = await cli(['settings', 'list', '--json'], env);
    const rows = JSON.parse(r.stdout) as { key: string; value: string; secret: boolean }[];
    expect(rows.find((x) => x.key === 'email.smtp.password')).toMatchObject({ secret: true, value: 'smtp…-123' });
    expect(r.stdout).not.toContain(secret);

    r = await cli(['settings', 'get', 'email.smtp.password'], env);
    expect(r.stdout.trim()).toBe('smtp…-123');
    r = await cli(['settings', 'get', 'email.smtp.password', '--reveal'], env);
    expect(r.stdout.trim()).toBe(secret);

    r = await cli(['settings', 'set', 'cache.redis.urll', 'redis://x'], env);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(
      /^apigate: unknown setting "cache\.redis\.urll" \(did you mean cache\.redis\.url\b.*\?\); `apigate settings keys` lists them$/,
    );

    r = await cli(['settings', 'set', 'cache.provider', 'mongo'], env);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^apigate: cache\.provider: expected one of the installed cache providers: .*memory/);

    r = await cli(['settings', 'set', 'email.smtp.port', 'not-a-port'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^apigate: email\.smtp\.port: /);

    r = await cli(['settings', 'unset', 'cache.provider', '--json'], env);
    expect(JSON.parse(r.stdout)).toEqual({ key: 'cache.provider', removed: true });
  });

  it('refuses a wrong APIGATE_SECRET_KEY for stored secrets with one line', async () => {
    const dir = tempDir('wrongkey');
    const keyed = cleanEnv({ APIGATE_DATA_DIR: dir, APIGATE_SECRET_KEY: 'a'.repeat(40) });
    expect((await cli(['settings', 'set', 'email.smtp.password', 'pw-secret-123456789'], keyed)).code).toBe(0);
    const r = await cli(['settings', 'list'], { ...keyed, APIGATE_SECRET_KEY: 'b'.repeat(40) });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^apigate: APIGATE_SECRET_KEY does not decrypt/);
    expect(r.stderr).not.toContain('pw-secret');
  });

  it('looks up provider mappings both ways and lists them', async () => {
    const store = await openStore({ dataDir });
    await store.mappings.put({ provider: 'stripe', entityType: 'user', localId: 'usr_abc123', externalId: 'cus_xyz' });
    await store.mappings.put({ provider: 'stripe', entityType: 'plan', localId: 'plan_pro', externalId: 'price_1' });
    await store.close();

    let r = await cli(['provider-mappings', 'lookup', 'stripe', 'user', 'usr_abc123'], env);
    expect(r.stdout.trim()).toBe('cus_xyz');
    r = await cli(['provider-mappings', 'lookup', 'stripe', 'user', 'cus_xyz', '--external'], env);
    expect(r.stdout.trim()).toBe('usr_abc123');
    r = await cli(['provider-mappings', 'lookup', 'stripe', 'user', 'usr_missing'], env);
    expect(r.code).toBe(3);
    r = await cli(['provider-mappings', 'list', '--provider', 'stripe', '--entity', 'plan', '--json'], env);
    expect(JSON.parse(r.stdout).items).toEqual([expect.objectContaining({ localId: 'plan_pro', externalId: 'price_1' })]);
    r = await cli(['provider-mappings', 'list'], env);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--provider/);
  });
});

describe('apigate serve', () => {
  let served: Awaited<ReturnType<typeof serve>>;
  const serveEnv = cleanEnv({
    APIGATE_DATA_DIR: tempDir('serve'),
    PAYMENT_PROVIDER: 'dummy',
    EMAIL_PROVIDER: 'log',
    CACHE_PROVIDER: 'memory',
    STORAGE_PROVIDER: 'memory',
    QUEUE_PROVIDER: 'memory',
    NOTIFICATION_PROVIDER: 'log',
    APIGATE_ADMIN_TOKEN: 'admin-token-for-the-settings-page-0123',
  });
  beforeAll(async () => {
    served = await serve(BIN, serveEnv);
  });
  afterAll(async () => {
    await served?.stop();
  });

  it('answers /admin/health in the spec shape with the development configuration', async () => {
    const res = await fetch(`${served.url}/admin/health`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    expect(body.status).toBe('healthy');
    for (const [cap, provider] of Object.entries({
      payment: 'dummy',
      email: 'log',
      cache: 'memory',
      storage: 'memory',
      queue: 'memory',
      notification: 'log',
    })) {
      expect(body.providers[cap]).toMatchObject({ provider, status: 'connected' });
      expect(typeof body.providers[cap].latency_ms).toBe('number');
    }
    expect(body.providers.tls).toEqual({ provider: null, status: 'disabled' });
  });

  it('logs which provider serves each capability', () => {
    expect(served.logs()).toContain('cache served by memory');
    expect(served.logs()).toContain('payment served by dummy');
  });

  it("offers every installed provider's setting keys on the admin settings page (listed when first opened)", async () => {
    const cookies = new Map<string, string>();
    const keep = (res: Response) => {
      for (const sc of res.headers.getSetCookie()) {
        const [pair] = sc.split(';');
        const i = pair!.indexOf('=');
        cookies.set(pair!.slice(0, i), pair!.slice(i + 1));
      }
      return res;
    };
    const cookie = () => [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const login = keep(await fetch(`${served.url}/admin/ui/login`));
    const csrf = /name="_csrf" value="([^"]+)"/.exec(await login.text())?.[1];
    expect(csrf).toBeTruthy();
    const signedIn = keep(
      await fetch(`${served.url}/admin/ui/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { cookie: cookie(), 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ _csrf: csrf!, token: serveEnv.APIGATE_ADMIN_TOKEN! }),
      }),
    );
    expect(signedIn.status).toBe(303);
    const page = await (await fetch(`${served.url}/admin/ui/settings`, { headers: { cookie: cookie() } })).text();
    // Stripe is installed, not selected: its keys come from importing every provider on demand.
    expect(page).toContain('<option value="payment.stripe.api_key">');
    expect(page).toContain('<option value="delivery.attempts">');
  });

  it('stops gracefully on SIGTERM', async () => {
    expect(await served.stop()).toBe(0);
  });

  it('refuses to start with an uninstalled provider, in one line listing the installed ones', async () => {
    const r = await cli(['serve', '--port', '0'], { ...serveEnv, CACHE_PROVIDER: 'memcached' });
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toEqual([
      expect.stringMatching(/^apigate: CACHE_PROVIDER=memcached: no installed cache provider named "memcached" \(installed: .*memory.*\)$/),
    ]);
  });

  it('refuses to start with a bad provider config value, naming the variable and setting, not the value', async () => {
    const r = await cli(['serve', '--port', '0'], { ...serveEnv, CACHE_PROVIDER: 'redis', REDIS_DB: 'secret-looking-db' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^apigate: REDIS_DB \(setting cache\.redis\.db\): /);
    expect(r.stderr).not.toContain('secret-looking-db');
  });

  it('rejects a bad APIGATE_PORT in one line', async () => {
    const r = await cli(['serve'], { ...serveEnv, APIGATE_PORT: 'eighty' });
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe('apigate: APIGATE_PORT (setting server.port): expected a port number from 0 to 65535');
  });
});
