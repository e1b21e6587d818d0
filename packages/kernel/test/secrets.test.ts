// Issue 9 items 2 and 3: credentials inside URLs, and secrets carried by an error's cause chain.
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  createLogger,
  defineProvider,
  describeError,
  hasUrlCredentials,
  instrument,
  isUrlField,
  knownSettingKeys,
  maskConfigValue,
  maskUrlCredentials,
  redact,
  registerSecrets,
  resolveProviderConfig,
  serializeError,
  settingsFromRecord,
  urlCredentials,
  z,
} from '../src/index.js';

const token = () => randomBytes(12).toString('hex');

describe('URL credentials', () => {
  it('masks the password of user:password@ and known secret query parameters, and nothing else', () => {
    expect(maskUrlCredentials('redis://user:pa55word@cache.internal:6379/2')).toBe('redis://user:****@cache.internal:6379/2');
    expect(maskUrlCredentials('redis://:pa55word@cache.internal:6379')).toBe('redis://:****@cache.internal:6379');
    expect(maskUrlCredentials('https://hooks.example.com/in?token=abc123&channel=ops')).toBe(
      'https://hooks.example.com/in?token=****&channel=ops',
    );
    expect(maskUrlCredentials('https://s3.local/b/k?X-Amz-Signature=f00d&X-Amz-Credential=AKIA%2F1&a=1')).toBe(
      'https://s3.local/b/k?X-Amz-Signature=****&X-Amz-Credential=****&a=1',
    );
    expect(maskUrlCredentials('postgres://app:pw@db:5432/apigate?sslmode=require&password=other')).toBe(
      'postgres://app:****@db:5432/apigate?sslmode=require&password=****',
    );
    expect(maskUrlCredentials('https://api.example.com/v1?page=2')).toBe('https://api.example.com/v1?page=2');
    expect(maskUrlCredentials('connect to smtp://mail:2525 failed')).toBe('connect to smtp://mail:2525 failed');
  });

  it('extracts the credentials of a URL (raw and decoded) and tells whether it carries any', () => {
    expect(urlCredentials('redis://u:p%40ss@h:1?key=k3y')).toEqual(['p%40ss', 'p@ss', 'k3y']);
    expect(hasUrlCredentials('redis://h:6379')).toBe(false);
    expect(hasUrlCredentials('https://h/x?sig=abc')).toBe(true);
    expect(urlCredentials('not a url password=x')).toEqual([]);
  });

  it('shows a secret field masked as a whole, any other value with its URL credentials masked', () => {
    const slack = `https://hooks.slack.com/services/T000/B000/${token()}`;
    expect(maskConfigValue(slack, true)).not.toContain(slack.slice(-20));
    expect(maskConfigValue('redis://u:hunter22@h:6379', false)).toBe('redis://u:****@h:6379');
  });

  it('adds the credentials inside URL-valued fields to the resolved secrets, and knows URL fields by schema', () => {
    const def = defineProvider({
      capability: 'cache',
      name: 'urlish',
      description: 'fixture',
      config: z.object({
        url: z.string().default('redis://localhost:6379'),
        endpoint: z.url().optional(),
        hook: z.string().optional(),
        name: z.string().optional(),
      }),
      env: { url: 'URLISH_URL' },
      urls: ['hook'],
      create: () => {
        throw new Error('not used');
      },
    });
    const pw = `pw-${token()}`;
    const r = resolveProviderConfig(
      def,
      { URLISH_URL: `redis://app:${pw}@cache:6379` },
      settingsFromRecord({ 'cache.urlish.endpoint': 'https://s3.local?token=t0ken' }),
    );
    expect(r.secretValues).toEqual(expect.arrayContaining([pw, 't0ken']));
    expect([isUrlField(def, 'url'), isUrlField(def, 'endpoint'), isUrlField(def, 'hook'), isUrlField(def, 'name')]).toEqual([
      true,
      true,
      true,
      false,
    ]);
    expect(knownSettingKeys([def]).get('cache.urlish.endpoint')).toMatchObject({ secret: false, url: true });
  });
});

describe('error chains', () => {
  /** A provider failure whose cause, nested cause and AggregateError member each quote the secret webhook URL. */
  function leakyError(url: string) {
    const member = new Error(`connect ECONNREFUSED while posting to ${url}`);
    const aggregate = new AggregateError([member, new Error('second address refused')], '');
    const nested = new Error(`socket closed for ${url}`, { cause: aggregate });
    return new Error('upstream said no', { cause: new Error(`POST ${url} failed`, { cause: nested }) });
  }

  it('describeError follows causes and AggregateError members and masks the given secrets in every part', () => {
    const url = `https://hooks.example.com/services/${token()}`;
    const line = describeError(leakyError(url), [url]);
    expect(line).not.toContain(url);
    expect(line).toContain('upstream said no');
    expect(line).toContain('(cause: POST');
    expect(line).toContain('socket closed for');
    expect(line).toContain('second address refused');
  });

  it('masks secrets the kernel registered, wherever the error is described, serialized or logged', async () => {
    const url = `https://hooks.example.com/services/${token()}`;
    registerSecrets([url]);
    const err = leakyError(url);
    expect(describeError(err)).not.toContain(url);
    expect(JSON.stringify(serializeError(err))).not.toContain(url);
    expect(redact(`failed: ${url}`)).not.toContain(url);

    // Through instrument, as a provider failure: the ProviderError's own text and its whole chain.
    const { proxy } = instrument(
      {
        async notify() {
          throw leakyError(url);
        },
      },
      { capability: 'notification', provider: 'leaky', secrets: [], emit: () => undefined },
    );
    const pe = await proxy.notify().catch((e: unknown) => e);
    expect(describeError(pe)).not.toContain(url);
    expect(describeError(pe)).toContain('notification/leaky notify');

    const out = new PassThrough();
    let logged = '';
    out.on('data', (d) => (logged += d));
    const logger = createLogger({ destination: out, level: 'debug' });
    logger.error({ err: pe }, 'notify failed');
    logger.warn(pe as Error);
    logger.error({ error: err, detail: `while posting to ${url}` }, `giving up on ${url}`);
    logger.child({ provider: 'leaky' }).info({ nested: { where: url }, at: new Date(0), ids: ['a'] }, 'child');
    await new Promise((r) => setImmediate(r));
    const lines = logged.split('\n').filter(Boolean);
    expect(lines).toHaveLength(4);
    expect(JSON.parse(lines[3]!)).toMatchObject({ at: '1970-01-01T00:00:00.000Z', ids: ['a'], provider: 'leaky' });
    expect(logged).not.toContain(url);
    expect(logged).toContain('second address refused');
  });

  it('masks a password from a URL field even when an error quotes it without the URL', () => {
    const pw = `pw-${token()}`;
    registerSecrets(urlCredentials(`redis://default:${pw}@127.0.0.1:6390`));
    expect(describeError(new Error('ERR AUTH failed', { cause: new Error(`WRONGPASS ${pw}`) }))).not.toContain(pw);
  });
});
