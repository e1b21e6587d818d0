import { describe, expect, it } from 'vitest';
import {
  type CacheProvider,
  ConfigErrors,
  createKernel,
  defineProvider,
  discoverPlugins,
  type ProviderInstance,
  Tokens,
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
const simple = (capability: 'payment' | 'email' | 'storage' | 'queue' | 'notification' | 'oauth' | 'tls', name: string, extra: Partial<Parameters<typeof defineProvider>[0]> = {}) =>
  defineProvider({ capability, name, description: name, config: z.object({}), create: () => instance(`${capability}/${name}`) as never, ...extra } as never);

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
  it('builds the development defaults, registers one token per capability and reports health in the spec shape', async () => {
    const catalog = await discoverPlugins({ builtins: devSet });
    const kernel = await createKernel({ catalog, env: { OAUTH_GOOGLE_ENABLED: 'true' }, dataDir: '/tmp/apigate-kernel-test' });
    expect(kernel.active.map((a) => `${a.capability}/${a.name}`)).toEqual([
      'payment/dummy', 'email/log', 'cache/memory', 'storage/memory', 'queue/memory', 'notification/log', 'oauth/google',
    ]);
    expect(kernel.container.resolve(Tokens.cache)).toBe(kernel.get('cache'));
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
    const kernel = await createKernel({ catalog, env: { NOTIFICATION_PROVIDER: 'hang' }, dataDir: '/tmp/apigate-kernel-test', healthTimeoutMs: 100 });
    const report = await kernel.health(['notification', 'cache']);
    expect(report.status).toBe('unhealthy');
    expect(report.providers.notification).toMatchObject({ provider: 'hang', status: 'error', error: 'health check timed out after 100 ms' });
    expect(aborted).toBe(true);
    expect(Object.keys(report.providers)).toEqual(['notification', 'cache']);
    await kernel.close();
  });
});
