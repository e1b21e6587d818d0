import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import {
  type CacheProvider,
  createKernel,
  createLogger,
  defineProvider,
  discoverPlugins,
  type Logger,
  maskingLogger,
  maskSecret,
  silentLogger,
  z,
} from '../src/index.js';

const PASSWORD = 'pw-provider-logs-6b1d93e7';
const URL_PASSWORD = 'url-pass-41c0aa';
const URL = `redis://apigate:${URL_PASSWORD}@cache.internal:6379/0`;

/** A stream whose lines the test reads (pino writes each line synchronously). */
function capture(): { stream: Writable; lines: () => Record<string, unknown>[]; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  const text = () => chunks.join('');
  const lines = () =>
    text()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { stream, lines, text };
}

/** A cache provider that logs its own secret config values every way a provider might. */
const leaky = defineProvider({
  capability: 'cache',
  name: 'leaky',
  description: 'logs its secrets',
  config: z.object({ password: z.string(), url: z.string() }),
  env: { password: 'LEAKY_PASSWORD', url: 'LEAKY_URL' },
  secrets: ['password'],
  urls: ['url'],
  create: (config, ctx) => {
    const { logger } = ctx;
    logger.info(`connecting to ${config.url} with password ${config.password}`);
    logger.info({ password: config.password, auth: config.password, target: { url: config.url, tried: [config.password] } }, 'fields');
    const err = new Error(`AUTH ${config.password} refused`, { cause: new Error(`upstream ${config.url} said no to ${config.password}`) });
    logger.error(err);
    logger.warn({ err, attempt: 2 }, 'connect failed');
    logger.child({ part: 'pool' }).info('pool uses %s', config.password);
    return { check: async () => ({ status: 'connected', latencyMs: 0 }), close: async () => {} } as unknown as CacheProvider;
  },
});

async function kernelLogs(logger: Logger): Promise<void> {
  const catalog = await discoverPlugins({ builtins: [leaky] });
  const kernel = await createKernel({
    catalog,
    only: ['cache'],
    env: { CACHE_PROVIDER: 'leaky', LEAKY_PASSWORD: PASSWORD, LEAKY_URL: URL },
    dataDir: '/tmp/apigate-kernel-test',
    logger,
  });
  await kernel.close();
}

describe('the logger the kernel gives a provider', () => {
  it('masks the provider secrets in messages, fields and errors when the app passes a plain pino', async () => {
    const out = capture();
    await kernelLogs(pino({ level: 'debug' }, out.stream));
    const text = out.text();
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toContain(URL_PASSWORD);

    const provider = out.lines().filter((l) => l.provider === 'leaky' && l.msg !== 'cache served by leaky');
    expect(provider).toHaveLength(5);
    const [connecting, fields, thrown, withErr, child] = provider as [
      Record<string, unknown>,
      Record<string, unknown>,
      Record<string, unknown>,
      Record<string, unknown>,
      Record<string, unknown>,
    ];
    expect(connecting.msg).toBe(`connecting to redis://apigate:****@cache.internal:6379/0 with password ${maskSecret(PASSWORD)}`);
    expect(fields).toMatchObject({
      password: '[Redacted]',
      auth: maskSecret(PASSWORD),
      target: { url: 'redis://apigate:****@cache.internal:6379/0', tried: [maskSecret(PASSWORD)] },
    });
    // An Error passed first: pino's own serializer still formats it (type, message, stack, cause).
    expect(thrown.msg).toBe(`AUTH ${maskSecret(PASSWORD)} refused`);
    const err = thrown.err as { type: string; message: string; stack: string };
    expect(err.type).toBe('Error');
    expect(err.message).toContain(`AUTH ${maskSecret(PASSWORD)} refused`);
    expect(err.message).toContain(`upstream redis://apigate:****@cache.internal:6379/0 said no to ${maskSecret(PASSWORD)}`);
    expect(err.stack).toContain('caused by: Error: upstream redis://apigate:****@');
    expect(withErr).toMatchObject({ msg: 'connect failed', attempt: 2, err: { message: thrown.err && err.message } });
    expect(child).toMatchObject({ part: 'pool', capability: 'cache', msg: `pool uses ${maskSecret(PASSWORD)}` });
  });

  it('masks them as well through createLogger, and a silent logger stays silent', async () => {
    const out = capture();
    await kernelLogs(createLogger({ level: 'debug', destination: out.stream }));
    expect(out.text()).not.toContain(PASSWORD);
    expect(out.text()).not.toContain(URL_PASSWORD);
    const thrown = out.lines().find((l) => l.provider === 'leaky' && l.level === 50) as {
      err: { message: string; cause: { message: string } };
    };
    expect(thrown.err.message).toBe(`AUTH ${maskSecret(PASSWORD)} refused`);
    expect(thrown.err.cause.message).toBe(`upstream redis://apigate:****@cache.internal:6379/0 said no to ${maskSecret(PASSWORD)}`);
    await expect(kernelLogs(silentLogger())).resolves.toBeUndefined();
  });
});

describe('maskingLogger', () => {
  const SECRET = 'tok-unregistered-77aa01';

  it('masks the secrets it is given, leaves the logged error itself untouched, and copies nothing for a level that is off', () => {
    const out = capture();
    const base = pino({ level: 'info' }, out.stream);
    const log = maskingLogger(base, [SECRET]);
    const cause = new Error(`inner ${SECRET}`);
    const err = Object.assign(new TypeError(`outer ${SECRET}`, { cause }), { code: 'E_X' });
    const members = new AggregateError([new Error(`member ${SECRET}`)], 'all failed');
    log.warn({ err, when: new Date(0), list: new Set([SECRET]) }, `saw ${SECRET}`);
    log.error({ err: members }, 'members');
    const noisy = {
      get value(): string {
        throw new Error('a debug line must not be copied while debug is off');
      },
    };
    log.debug(noisy, 'off');
    const [line, aggregate, ...rest] = out.lines() as [
      { msg: string; err: Record<string, unknown>; when: string; list: string[] },
      { err: Record<string, unknown> },
    ];
    expect(rest).toEqual([]);
    expect(out.text()).not.toContain(SECRET);
    expect(line.msg).toBe(`saw ${maskSecret(SECRET)}`);
    expect(line.err).toMatchObject({ type: 'TypeError', code: 'E_X', message: `outer ${maskSecret(SECRET)}: inner ${maskSecret(SECRET)}` });
    expect(aggregate.err).toMatchObject({ type: 'AggregateError', aggregateErrors: [{ message: `member ${maskSecret(SECRET)}` }] });
    expect(line.when).toBe(new Date(0).toISOString());
    expect(line.list).toEqual([maskSecret(SECRET)]);
    // The provider's own error objects are copied, not rewritten (it may still inspect or rethrow them).
    expect(err.message).toBe(`outer ${SECRET}`);
    expect(cause.message).toBe(`inner ${SECRET}`);
  });

  it('keeps masking in children and sets the level of the logger it wraps', () => {
    const out = capture();
    const base = pino({ level: 'info' }, out.stream);
    const log = maskingLogger(base, [SECRET]);
    const child = log.child({ job: `j-${SECRET}` });
    child.debug('hidden');
    child.level = 'debug';
    child.debug(`now ${SECRET}`);
    log.level = 'warn';
    expect(base.level).toBe('warn');
    log.info('hidden again');
    expect(out.lines()).toEqual([expect.objectContaining({ job: `j-${maskSecret(SECRET)}`, msg: `now ${maskSecret(SECRET)}` })]);
  });
});
