import { describe, expect, it } from 'vitest';
import { ConfigError, defineProvider, fields, resolveProviderConfig, selectProviders, settingsFromRecord, z } from '../src/index.js';

const def = defineProvider({
  capability: 'cache',
  name: 'fake',
  description: 'fake',
  config: z.object({
    url: z.string().url().default('redis://localhost:6379').describe('a redis:// URL'),
    password: z.string().optional(),
    db: fields.int({ min: 0 }).default(0),
    tls: fields.flag(false),
  }),
  env: { url: ['QUEUE_REDIS_URL', 'REDIS_URL'], password: 'REDIS_PASSWORD', db: 'REDIS_DB', tls: 'REDIS_TLS' },
  secrets: ['password'],
  create: () => {
    throw new Error('not used');
  },
});

describe('provider selection', () => {
  const none = settingsFromRecord({});
  it('takes the env var over the setting over the development default', () => {
    expect(selectProviders('cache', {}, none)).toMatchObject({ names: ['memory'], source: 'default' });
    const s = settingsFromRecord({ 'cache.provider': 'redis' });
    expect(selectProviders('cache', {}, s)).toMatchObject({ names: ['redis'], source: 'setting', origin: 'setting cache.provider' });
    expect(selectProviders('cache', { CACHE_PROVIDER: 'other' }, s)).toMatchObject({
      names: ['other'],
      source: 'env',
      origin: 'CACHE_PROVIDER',
    });
  });

  it('leaves oauth and tls disabled by default and enables them by flag', () => {
    expect(selectProviders('oauth', {}, none).names).toEqual([]);
    expect(selectProviders('tls', {}, none).names).toEqual([]);
    const env = { OAUTH_GOOGLE_ENABLED: 'true', OAUTH_GITHUB_ENABLED: '1', OAUTH_OIDC_ENABLED: 'false' };
    expect(selectProviders('oauth', env, none).names).toEqual(['github', 'google']);
    expect(selectProviders('tls', { TLS_ACME_ENABLED: 'true' }, none).names).toEqual(['acme']);
    expect(selectProviders('oauth', {}, settingsFromRecord({ 'oauth.oidc.enabled': 'yes' })).names).toEqual(['oidc']);
  });

  it('rejects a flag that is not a boolean, naming the variable', () => {
    expect(() => selectProviders('oauth', { OAUTH_GOOGLE_ENABLED: 'maybe' }, none)).toThrow(/OAUTH_GOOGLE_ENABLED .*true or false/);
  });

  it('refuses two enabled providers for a single-provider capability', () => {
    expect(() => selectProviders('tls', { TLS_ACME_ENABLED: 'true', TLS_OTHER_ENABLED: 'true' }, none)).toThrow(/only one tls provider/);
  });
});

describe('provider config', () => {
  it('reads env (first listed wins), then settings, then defaults', () => {
    const settings = settingsFromRecord({ 'cache.fake.db': '4', 'cache.fake.url': 'redis://setting:1' });
    const r = resolveProviderConfig(def, { REDIS_URL: 'redis://b:2', QUEUE_REDIS_URL: 'redis://a:1', REDIS_TLS: 'yes' }, settings);
    expect(r.config).toEqual({ url: 'redis://a:1', db: 4, tls: true });
    expect(r.sources.url).toEqual({ kind: 'env', name: 'QUEUE_REDIS_URL' });
    expect(r.sources.db).toEqual({ kind: 'setting', key: 'cache.fake.db' });
    expect(r.sources.tls).toEqual({ kind: 'env', name: 'REDIS_TLS' });
    expect(r.sources.password).toEqual({ kind: 'default' });
  });

  it('uses deployment defaults (by setting key) after env and settings, before the schema default', () => {
    const defaults = { 'cache.fake.db': '7', 'cache.fake.url': 'redis://derived:1' };
    const r = resolveProviderConfig(def, { REDIS_URL: 'redis://env:2' }, settingsFromRecord({}), defaults);
    expect(r.config).toEqual({ url: 'redis://env:2', db: 7, tls: false });
    expect(r.sources.db).toEqual({ kind: 'default' });
    const s = resolveProviderConfig(def, {}, settingsFromRecord({ 'cache.fake.db': '2' }), defaults);
    expect(s.config).toMatchObject({ url: 'redis://derived:1', db: 2 });
  });

  it('treats an empty env var as unset', () => {
    const r = resolveProviderConfig(def, { REDIS_URL: '' }, settingsFromRecord({ 'cache.fake.url': 'redis://s:1' }));
    expect(r.config.url).toBe('redis://s:1');
  });

  it('reports every bad field with env var, setting key and expectation, never the value', () => {
    let errors: ConfigError[] = [];
    try {
      resolveProviderConfig(def, { REDIS_URL: 'not a url', REDIS_DB: 'minus-one-secretish', REDIS_TLS: 'maybe' }, settingsFromRecord({}));
    } catch (e) {
      errors = e as ConfigError[];
    }
    expect(errors.map((e) => e.field).sort()).toEqual(['db', 'tls', 'url']);
    const url = errors.find((e) => e.field === 'url')!;
    expect(url.message).toBe('QUEUE_REDIS_URL (setting cache.fake.url): Invalid URL; expected a redis:// URL');
    for (const e of errors) {
      expect(e).toBeInstanceOf(ConfigError);
      expect(e.message).not.toContain('not a url');
      expect(e.message).not.toContain('minus-one-secretish');
      expect(e.message).not.toContain('maybe');
    }
  });

  it('keeps secret values so they can be masked', () => {
    const r = resolveProviderConfig(def, { REDIS_PASSWORD: 'hunter2-long-password' }, settingsFromRecord({}));
    expect(r.secretValues).toEqual(['hunter2-long-password']);
  });
});
