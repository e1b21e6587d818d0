import { describe, expect, it } from 'vitest';
import {
  type CacheProvider,
  ConfigErrors,
  createKernel,
  defineProvider,
  discoverPlugins,
  type EmailProvider,
  type ProviderInstance,
  z,
} from '../src/index.js';

const log: string[] = [];
const instance = (name: string, check?: ProviderInstance['check']): ProviderInstance & Record<string, unknown> => ({
  check: check ?? (async () => ({ status: 'connected', latencyMs: 1 })),
  close: async () => {
    log.push(`close ${name}`);
  },
  async get() {
    throw Object.assign(new Error('down'), { code: 'ECONNREFUSED' });
  },
});

const cacheDef = defineProvider({
  capability: 'cache',
  name: 'memory',
  description: 'test cache',
  config: z.object({ size: z.coerce.number().int().default(10), token: z.string().optional() }),
  env: { size: 'CACHE_SIZE', token: 'CACHE_TOKEN' },
  secrets: ['token'],
  create: () => instance('cache') as unknown as CacheProvider,
});
const simple = (
  capability: 'payment' | 'email' | 'storage' | 'queue' | 'notification' | 'oauth' | 'tls',
  name: string,
  extra: Partial<Parameters<typeof defineProvider>[0]> = {},
) =>
  defineProvider({
    capability,
    name,
    description: name,
    config: z.object({}),
    create: () => instance(`${capability}/${name}`) as never,
    ...extra,
  } as never);

const devSet = [
  cacheDef,
  simple('payment', 'dummy'),
  simple('email', 'log'),
  simple('storage', 'memory'),
  simple('queue', 'memory'),
  simple('notification', 'log'),
  simple('oauth', 'google'),
  simple('oauth', 'github'),
];

describe('createKernel', () => {
  it('builds the development defaults, one handle per capability, and reports health in the spec shape', async () => {
    const catalog = await discoverPlugins({ builtins: devSet });
    const kernel = await createKernel({ catalog, env: { OAUTH_GOOGLE_ENABLED: 'true' }, dataDir: '/tmp/apigate-kernel-test' });
    expect(kernel.active.map((a) => `${a.capability}/${a.name}`)).toEqual([
      'payment/dummy',
      'email/log',
      'cache/memory',
      'storage/memory',
      'queue/memory',
      'notification/log',
      'oauth/google',
    ]);
    expect(kernel.get('cache')).toBe(kernel.tryGet('cache'));
    expect([...kernel.get('oauth').keys()]).toEqual(['google']);
    expect(kernel.tryGet('tls')).toBeUndefined();
    const report = await kernel.health();
    expect(report.status).toBe('healthy');
    expect(report.providers.cache).toEqual({ provider: 'memory', status: 'connected', latency_ms: 1 });
    expect(report.providers.tls).toEqual({ provider: null, status: 'disabled' });

    const seen: string[] = [];
    kernel.events.on('provider.error', (e) => seen.push(`${e.capability}.${e.operation}:${e.retryable}`));
    await expect(kernel.get('cache').get('k')).rejects.toMatchObject({ name: 'ProviderError', retryable: true });
    expect(seen).toEqual(['cache.get:true']);
    await kernel.close();
  });

  it('collects every selection and config problem into one error, one line each', async () => {
    const catalog = await discoverPlugins({ builtins: devSet });
    const err = await createKernel({
      catalog,
      env: { EMAIL_PROVIDER: 'smtp', CACHE_SIZE: 'big', CACHE_TOKEN: 'tok-secret-value-123' },
      dataDir: '/tmp/apigate-kernel-test',
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigErrors);
    const lines = (err as Error).message.split('\n');
    expect(lines).toEqual([
      'EMAIL_PROVIDER=smtp: no installed email provider named "smtp" (installed: log)',
      expect.stringMatching(/^CACHE_SIZE \(setting cache\.memory\.size\): /),
    ]);
    expect((err as Error).message).not.toContain('tok-secret-value-123');
  });

  it('closes what it started when a later provider fails to start (nothing half-started), masking secrets', async () => {
    log.length = 0;
    const failing = defineProvider({
      capability: 'queue',
      name: 'broken',
      description: 'fails',
      config: z.object({ password: z.string().default('pw-very-secret-9999') }),
      secrets: ['password'],
      env: { password: 'BROKEN_PASSWORD' },
      create: (c) => {
        throw new Error(`auth failed for ${c.password}`);
      },
    });
    const catalog = await discoverPlugins({ builtins: [...devSet, failing] });
    const err = await createKernel({
      catalog,
      env: { QUEUE_PROVIDER: 'broken', BROKEN_PASSWORD: 'pw-very-secret-9999' },
      dataDir: '/tmp/apigate-kernel-test',
    }).catch((e: Error) => e);
    expect((err as Error).message).toBe('queue/broken failed to start: auth failed for pw-v…9999');
    expect(log).toEqual(['close storage/memory', 'close cache', 'close email/log', 'close payment/dummy']);
  });

  it('times out a hanging health check and aborts its signal', async () => {
    let aborted = false;
    const hanging = simple('notification', 'hang', {
      create: () =>
        instance('hang', (signal) => {
          signal.addEventListener('abort', () => {
            aborted = true;
          });
          return new Promise(() => {});
        }) as never,
    });
    const catalog = await discoverPlugins({ builtins: [...devSet, hanging] });
    const kernel = await createKernel({
      catalog,
      env: { NOTIFICATION_PROVIDER: 'hang' },
      dataDir: '/tmp/apigate-kernel-test',
      healthTimeoutMs: 100,
    });
    const report = await kernel.health(['notification', 'cache']);
    expect(report.status).toBe('unhealthy');
    expect(report.providers.notification).toMatchObject({
      provider: 'hang',
      status: 'error',
      error: 'health check timed out after 100 ms',
    });
    expect(aborted).toBe(true);
    expect(Object.keys(report.providers)).toEqual(['notification', 'cache']);
    await kernel.close();
  });
});

describe('kernel.selected', () => {
  it('answers the serving provider with its features typed by FeatureMap, undefined when disabled', async () => {
    const withFeatures = [
      ...devSet.filter((d) => d.capability !== 'payment' && d.capability !== 'queue'),
      simple('payment', 'dummy', { features: { meteredBilling: true, webhookPath: '/webhooks/dummy' } } as never),
      simple('queue', 'memory', { features: { durable: false } } as never),
    ];
    const catalog = await discoverPlugins({ builtins: withFeatures });
    const kernel = await createKernel({ catalog, env: {}, dataDir: '/tmp/apigate-kernel-test' });
    const payment = kernel.selected('payment');
    expect(payment?.name).toBe('dummy');
    // Typed: a misspelt feature does not compile, a declared one is boolean | undefined.
    const metered: boolean | undefined = payment?.features.meteredBilling;
    expect(metered).toBe(true);
    expect(payment?.features.webhookPath).toBe('/webhooks/dummy');
    expect(kernel.selected('queue')?.features.durable).toBe(false);
    expect(kernel.selected('email')?.features).toEqual({});
    expect(kernel.selected('tls')).toBeUndefined();
    // features(): the same declarations without the description (asked per request).
    expect(kernel.features('queue')?.durable).toBe(false);
    expect(kernel.features('email')).toEqual({});
    expect(kernel.features('tls')).toBeUndefined();
    await kernel.close();
  });
});

/** A settings reader the test changes between reconfigures (the store's snapshot after reload()). */
function mutableSettings(initial: Record<string, string> = {}) {
  const values = new Map(Object.entries(initial));
  return { values, reader: { get: (k: string) => values.get(k), keys: () => [...values.keys()] } };
}

describe('kernel.reconfigure', () => {
  const sent: string[] = [];
  const closed: string[] = [];
  let release: (() => void) | undefined;
  const mailer = (name: string) =>
    defineProvider({
      capability: 'email',
      name,
      description: name,
      config: z.object({ from: z.string().default('noreply@example.com'), fail: z.string().optional() }),
      env: { from: `${name.toUpperCase()}_FROM` },
      create: (c) => {
        if (c.fail) throw new Error(`cannot reach the ${name} server`);
        return {
          check: async () => ({ status: 'connected', latencyMs: 1 }),
          close: async () => {
            closed.push(`${name} ${c.from}`);
          },
          async send(msg: { to: string }) {
            if (msg.to === 'slow@example.com') await new Promise<void>((r) => (release = r));
            sent.push(`${name} from ${c.from} to ${msg.to}`);
            return { id: String(sent.length) };
          },
        } as unknown as EmailProvider;
      },
    });
  const set = [...devSet.filter((d) => d.capability !== 'email'), mailer('log'), mailer('smtp'), simple('queue', 'other')];

  it('rebuilds a provider whose settings changed: callers holding the handle reach the new one, the old one is closed', async () => {
    sent.length = 0;
    closed.length = 0;
    const s = mutableSettings({ 'email.log.from': 'a@example.com' });
    const kernel = await createKernel({
      catalog: await discoverPlugins({ builtins: set }),
      env: {},
      settings: s.reader,
      dataDir: '/tmp/apigate-kernel-test',
    });
    const email = kernel.get('email'); // held, like the delivery workers hold it
    await email.send({ to: 'x@example.com', subject: 's', text: 't' } as never);
    expect(await kernel.reconfigure()).toEqual({ rebuilt: [], failed: [], restart: [] }); // nothing changed: nothing rebuilt

    s.values.set('email.log.from', 'b@example.com');
    expect(await kernel.reconfigure()).toEqual({ rebuilt: ['email/log'], failed: [], restart: [] });
    await email.send({ to: 'y@example.com', subject: 's', text: 't' } as never);
    await expect.poll(() => closed).toEqual(['log a@example.com']);

    s.values.set('email.provider', 'smtp');
    s.values.set('email.smtp.from', 'c@example.com');
    expect((await kernel.reconfigure()).rebuilt).toEqual(['email/log -> email/smtp']);
    await email.send({ to: 'z@example.com', subject: 's', text: 't' } as never);
    expect(sent).toEqual([
      'log from a@example.com to x@example.com',
      'log from b@example.com to y@example.com',
      'smtp from c@example.com to z@example.com',
    ]);
    expect(kernel.selected('email')?.name).toBe('smtp');
    expect(kernel.selections.find((x) => x.capability === 'email')?.names).toEqual(['smtp']);
    expect(kernel.active.filter((a) => a.capability === 'email').map((a) => a.name)).toEqual(['smtp']);
    await expect.poll(() => closed).toEqual(['log a@example.com', 'log b@example.com']);
    await kernel.close();
    expect(closed).toContain('smtp c@example.com');
  });

  it('lets the calls a replaced provider started finish before closing it', async () => {
    sent.length = 0;
    closed.length = 0;
    const s = mutableSettings();
    const kernel = await createKernel({
      catalog: await discoverPlugins({ builtins: set }),
      env: {},
      settings: s.reader,
      dataDir: '/tmp/apigate-kernel-test',
    });
    const slow = kernel.get('email').send({ to: 'slow@example.com', subject: 's', text: 't' } as never);
    s.values.set('email.log.from', 'new@example.com');
    await kernel.reconfigure();
    await new Promise((r) => setTimeout(r, 50));
    expect(closed).toEqual([]); // still sending
    release?.();
    await slow;
    await expect.poll(() => closed).toEqual(['log noreply@example.com']);
    expect(sent).toEqual(['log from noreply@example.com to slow@example.com']);
    await kernel.close();
  });

  it('keeps the old provider when the new settings fail, and names what applies only at the next start', async () => {
    sent.length = 0;
    closed.length = 0;
    const s = mutableSettings();
    const kernel = await createKernel({
      catalog: await discoverPlugins({ builtins: set }),
      env: { LOG_FROM: 'env@example.com' },
      settings: s.reader,
      dataDir: '/tmp/apigate-kernel-test',
    });
    s.values.set('email.log.from', 'shadowed@example.com'); // the env var wins: nothing changes
    s.values.set('email.log.fail', 'yes');
    const failed = await kernel.reconfigure();
    expect(failed.rebuilt).toEqual([]);
    expect(failed.failed).toEqual([
      { capability: 'email', message: expect.stringContaining('email/log failed to start: cannot reach the log server') },
    ]);
    s.values.delete('email.log.fail');
    s.values.set('email.provider', 'nope');
    expect((await kernel.reconfigure()).failed).toEqual([{ capability: 'email', message: expect.stringContaining('nope') }]);
    s.values.delete('email.provider');
    s.values.set('cache.memory.size', 'big');
    expect((await kernel.reconfigure()).failed).toEqual([
      { capability: 'cache', message: expect.stringMatching(/^CACHE_SIZE \(setting cache\.memory\.size\)/) },
    ]);
    s.values.delete('cache.memory.size');
    s.values.set('queue.provider', 'other');
    expect((await kernel.reconfigure()).restart).toEqual([{ capability: 'queue', reason: 'queue settings apply at the next start' }]);
    await kernel.get('email').send({ to: 'still@example.com', subject: 's', text: 't' } as never);
    expect(sent).toEqual(['log from env@example.com to still@example.com']);
    expect(closed).toEqual([]); // the failed new ones were never started or were closed; the old one serves on
    await kernel.close();
  });
});
