import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, cleanEnv, ok, type Served, serve, tempDir, waitFor } from './helpers.js';

interface Mail {
  from: string;
  to: string[];
  subject: string;
}

/** A plain SMTP server on loopback (no TLS, no AUTH) keeping what it receives. */
async function startSmtp(inbox: Mail[]) {
  const server = new SMTPServer({
    disabledCommands: ['STARTTLS', 'AUTH'],
    authOptional: true,
    logger: false,
    closeTimeout: 50,
    onData(stream, _session, cb) {
      simpleParser(stream).then((p) => {
        inbox.push({
          from: p.from?.value[0]?.address ?? '',
          to: (Array.isArray(p.to) ? p.to : p.to ? [p.to] : []).flatMap((a) => a.value.map((v) => v.address ?? '')),
          subject: p.subject ?? '',
        });
        cb();
      }, cb);
    },
  });
  server.listen(0, '127.0.0.1');
  await once(server.server, 'listening');
  return { port: (server.server.address() as AddressInfo).port, stop: () => new Promise<void>((r) => server.close(() => r())) };
}

/** The log lines of a served process as JSON (pino), skipping anything else. */
function logLines(s: Served): { msg?: string; from?: string; to?: string[] }[] {
  return s
    .logs()
    .split('\n')
    .flatMap((l) => {
      try {
        return [JSON.parse(l)];
      } catch {
        return [];
      }
    });
}

const logged = (s: Served) =>
  logLines(s)
    .filter((l) => l.msg === 'email logged, not sent')
    .map((l) => `${l.from} -> ${l.to?.join(',')}`);
const count = (s: Served, text: string) => logLines(s).filter((l) => l.msg?.includes(text)).length;

describe('apigate settings set reaches a running serve (issue 13)', () => {
  const inbox: Mail[] = [];
  let smtp: Awaited<ReturnType<typeof startSmtp>> | undefined;
  let served: Served | undefined;
  afterAll(async () => {
    await served?.stop();
    await smtp?.stop();
  });

  it('rebuilds the email provider on a changed setting and on a switch log -> smtp, without a restart; the old one is closed', async () => {
    smtp = await startSmtp(inbox);
    const env = cleanEnv({ APIGATE_DATA_DIR: tempDir('live-settings') });
    await ok(['plans', 'create', 'free', '--default'], env);
    served = await serve(BIN, env);
    const s = served;
    const signup = async (email: string) => {
      const r = await fetch(`${s.url}/portal/api/signup`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-requested-with': 'XMLHttpRequest' },
        body: JSON.stringify({ email, password: 'a-long-password-0123', name: 'Live' }),
      });
      expect(r.status, await r.text()).toBe(202);
    };

    // The development default: log email, from apigate@localhost.
    await signup('one@example.com');
    await waitFor('the first verification email logged', () => logged(s).includes('apigate@localhost -> one@example.com'));

    // Another process changes the provider's setting: the running serve rebuilds the provider.
    await ok(['settings', 'set', 'email.log.from', 'changed@example.com'], env);
    await waitFor('email/log rebuilt', () => count(s, 'email/log rebuilt with the new settings') === 1);
    await waitFor('the old log provider closed', () => count(s, 'email/log closed: replaced after a settings change') === 1);
    await signup('two@example.com');
    await waitFor('the second email logged with the new from', () => logged(s).includes('changed@example.com -> two@example.com'));

    // Switching to SMTP: until every required field is set the new settings fail and log email keeps serving.
    await ok(['settings', 'set', 'email.provider', 'smtp'], env);
    await waitFor(
      'the incomplete smtp settings refused',
      () => count(s, 'email: the new settings are not applied, log keeps serving') >= 1,
    );
    await ok(['settings', 'set', 'email.smtp.host', '127.0.0.1'], env);
    await ok(['settings', 'set', 'email.smtp.port', String(smtp.port)], env);
    await ok(['settings', 'set', 'email.smtp.tls', 'false'], env);
    await ok(['settings', 'set', 'email.smtp.from', 'smtp-sender@example.com'], env);
    await waitFor('email/log -> email/smtp', () => count(s, 'email/log -> email/smtp rebuilt') === 1);
    await waitFor('the second log provider closed', () => count(s, 'email/log closed: replaced after a settings change') === 2);
    await signup('three@example.com');
    await waitFor('the third email delivered over SMTP', () => inbox.some((m) => m.to.includes('three@example.com')));
    expect(inbox.map((m) => `${m.from} -> ${m.to.join(',')}`)).toEqual(['smtp-sender@example.com -> three@example.com']);
    expect(logged(s)).not.toContain('smtp-sender@example.com -> three@example.com');

    expect(await s.stop()).toBe(0);
    served = undefined;
  });
});
