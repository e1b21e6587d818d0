import { Writable } from 'node:stream';
import { ConfigError, createLogger, type EmailProvider, resolveProviderConfig, settingsFromRecord } from '@apigate/kernel';
import { assertValidManifest, createForTest, describeEmailProvider } from '@apigate/provider-testkit';
import { describe, expect, it } from 'vitest';
import pkg from '../package.json' with { type: 'json' };
import provider, { type LogEmail } from '../src/index.js';

const asLog = (p: EmailProvider) => p as unknown as LogEmail;

describe('provider-log-email', () => {
  it('has a valid manifest', () => {
    assertValidManifest(pkg, provider);
  });

  describeEmailProvider(provider, {
    name: 'conformance',
    config: { from: 'default-sender@example.com' },
    inbox: (p) => asLog(p).messages(),
    defaultFrom: 'default-sender@example.com',
  });

  /** A provider whose pino output (JSON lines) is collected in `lines`. */
  function withCapturedLogs(level: string) {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
        done();
      },
    });
    const email = provider.create(provider.config.parse({}), {
      capability: 'email',
      provider: 'log',
      logger: createLogger({ level, destination: sink }),
      dataDir: '/nonexistent',
      emit: () => {},
    }) as LogEmail;
    return { email, lines };
  }

  it('logs recipients, subject and size at info, never attachment bytes', async () => {
    const { email, lines } = withCapturedLogs('info');
    const secretBytes = new TextEncoder().encode('ATTACHMENT-BYTES-MUST-NOT-BE-LOGGED');
    await email.send({
      to: ['a@example.com', 'b@example.com'],
      subject: 'Welcome',
      text: 'BODY-ONLY-AT-DEBUG',
      attachments: [{ filename: 'x.txt', content: secretBytes, contentType: 'text/plain' }],
    });
    expect(lines).toHaveLength(1);
    const line = lines[0]!;
    expect(line).toMatchObject({ level: 30, to: ['a@example.com', 'b@example.com'], subject: 'Welcome', from: 'apigate@localhost' });
    expect(line.size).toBe('BODY-ONLY-AT-DEBUG'.length + secretBytes.byteLength);
    expect(line.attachments).toEqual([{ filename: 'x.txt', contentType: 'text/plain', size: secretBytes.byteLength }]);
    const raw = JSON.stringify(lines);
    expect(raw).not.toContain('ATTACHMENT-BYTES');
    expect(raw).not.toContain(Buffer.from(secretBytes).toString('base64'));
    expect(raw).not.toContain('BODY-ONLY-AT-DEBUG');
  });

  it('logs the full body at debug', async () => {
    const { email, lines } = withCapturedLogs('debug');
    const { messageId } = await email.send({ to: 'a@example.com', subject: 'Hi', text: 'the text', html: '<p>the html</p>' });
    const debug = lines.find((l) => l.level === 20);
    expect(debug).toMatchObject({ messageId, text: 'the text', html: '<p>the html</p>' });
  });

  it('generates RFC 5322 message ids on the sender domain', async () => {
    const { provider: email } = await createForTest(provider, { from: 'noreply@mail.example.org' });
    const { messageId } = await email.send({ to: 'a@example.com', subject: 'Id', text: 'x' });
    expect(messageId).toMatch(/^<[0-9a-f-]{36}@mail\.example\.org>$/);
  });

  it('keeps only the last N messages', async () => {
    const { provider: email } = await createForTest(provider, { keepLast: '2' });
    for (const subject of ['one', 'two', 'three']) await email.send({ to: 'a@example.com', subject, text: subject });
    expect(
      asLog(email)
        .messages()
        .map((m) => m.subject),
    ).toEqual(['two', 'three']);
    asLog(email).clear();
    expect(asLog(email).messages()).toEqual([]);
  });

  it('keeps nothing with keepLast 0 but still sends', async () => {
    const { provider: email } = await createForTest(provider, { keepLast: '0' });
    await expect(email.send({ to: 'a@example.com', subject: 's', text: 't' })).resolves.toHaveProperty('messageId');
    expect(asLog(email).messages()).toEqual([]);
  });

  it('reads keepLast from EMAIL_LOG_KEEP_LAST and from from its setting', () => {
    const { config, sources } = resolveProviderConfig(
      provider,
      { EMAIL_LOG_KEEP_LAST: '7' },
      settingsFromRecord({ 'email.log.from': 'ops@example.com' }),
    );
    expect(config).toEqual({ keepLast: 7, from: 'ops@example.com' });
    expect(sources.from).toEqual({ kind: 'setting', key: 'email.log.from' });
  });

  it('refuses a from setting that is not an address, naming the setting', () => {
    let thrown: unknown;
    try {
      resolveProviderConfig(provider, {}, settingsFromRecord({ 'email.log.from': 'not an address' }));
    } catch (e) {
      thrown = e;
    }
    expect(Array.isArray(thrown)).toBe(true);
    const [err] = thrown as ConfigError[];
    expect(err).toBeInstanceOf(ConfigError);
    expect(err!.message).toBe(
      'setting email.log.from: not an email address; expected the address to send from when a message has none, e.g. apigate@localhost',
    );
  });
});
