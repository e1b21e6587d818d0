import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError, type EmailMessage, type EmailProvider, ProviderError } from '@apigate/kernel';
import { assertValidManifest, createForTest, describeEmailProvider, startSilentServer, testInstances } from '@apigate/provider-testkit';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import pkg from '../package.json' with { type: 'json' };
import provider from '../src/index.js';
import { closedPort, type Inbox, PASSWORD, selfSignedCert, startInbox, USER } from './smtp-server.js';

const FROM = '"APIGate" <noreply@apigate.test>';

let cert: { key: string; cert: string };
let caFile: string;
let starttls: Inbox;
let implicit: Inbox;
const instances = testInstances(provider);

beforeAll(async () => {
  cert = await selfSignedCert();
  caFile = path.join(tmpdir(), `apigate-smtp-ca-${process.pid}.pem`);
  writeFileSync(caFile, cert.cert);
  starttls = await startInbox(cert);
  implicit = await startInbox(cert, { secure: true });
});

afterAll(async () => {
  await instances.closeAll();
  await Promise.all([starttls?.close(), implicit?.close()]);
});

/** Config as env vars would give it: STARTTLS on the test server, its certificate trusted through a CA file. */
const settings = (over: Record<string, string> = {}) => ({
  host: '127.0.0.1',
  port: String(starttls.port),
  username: USER,
  password: PASSWORD,
  from: FROM,
  tls: 'true',
  tlsCaFile: caFile,
  ...over,
});

const smtp = (over: Record<string, string> = {}): Promise<EmailProvider> => instances.make(settings(over));

const message = (over: Partial<EmailMessage> = {}): EmailMessage => ({
  to: 'alice@example.com',
  subject: `smtp test ${Math.random().toString(36).slice(2)}`,
  text: 'Hello over SMTP.',
  ...over,
});

/** The error `p` rejects with (fails the test if it resolves). */
async function rejectionOf(p: Promise<unknown>, what: string): Promise<Error> {
  const outcome = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(outcome, `${what} should reject`).toBeInstanceOf(Error);
  return outcome as Error;
}

async function providerErrorOf(p: Promise<unknown>, what: string): Promise<ProviderError> {
  const err = await rejectionOf(p, what);
  expect(err).toBeInstanceOf(ProviderError);
  return err as ProviderError;
}

describe('provider-smtp', () => {
  it('has a valid manifest', () => {
    assertValidManifest(pkg, provider);
  });

  describeEmailProvider(provider, {
    name: 'conformance (STARTTLS + AUTH PLAIN against smtp-server)',
    config: settings,
    inbox: () => starttls.messages,
    defaultFrom: FROM,
    // 550, 451, 421, nothing listening, no greeting, a failing check: the suite's own stub server, in plain text without auth.
    smtpServer: {
      config: ({ host, port }) => ({
        host,
        port,
        tls: false,
        tlsCaFile: undefined,
        username: undefined,
        password: undefined,
        timeoutMs: 1000,
      }),
      timeoutMs: 1000,
    },
  });

  it('delivers every part of a message, as mailparser reads it', async () => {
    const p = await smtp();
    const msg = message({
      from: 'Billing <billing@apigate.test>',
      replyTo: 'support@apigate.test',
      text: 'Your invoice is attached.',
      html: '<h1>Invoice</h1><p>Attached.</p>',
      headers: { 'X-Apigate-Invoice': 'inv_42' },
      attachments: [{ filename: 'invoice.pdf', content: Uint8Array.from([37, 80, 68, 70, 0, 255]), contentType: 'application/pdf' }],
    });
    const { messageId } = await p.send(msg);
    const got = await vi.waitFor(() => {
      const m = starttls.messages.find((x) => x.subject === msg.subject);
      if (!m) throw new Error('not arrived yet');
      return m;
    });
    expect(got.from).toBe('"Billing" <billing@apigate.test>');
    expect(got.replyTo).toBe('support@apigate.test');
    expect(got.text?.trim()).toBe('Your invoice is attached.');
    expect(got.html).toBe('<h1>Invoice</h1><p>Attached.</p>');
    expect(got.headers['x-apigate-invoice']).toBe('inv_42');
    expect(got.messageId).toBe(messageId);
    expect(got.attachments).toHaveLength(1);
    expect(got.attachments[0]).toMatchObject({ filename: 'invoice.pdf', contentType: 'application/pdf' });
    expect([...got.attachments[0]!.content]).toEqual([37, 80, 68, 70, 0, 255]);
  });

  it('sends over implicit TLS to a second server', async () => {
    const p = await smtp({ port: String(implicit.port), implicitTls: 'true' });
    const health = await p.check(AbortSignal.timeout(15_000));
    expect(health).toMatchObject({ status: 'connected' });
    expect(health.detail).toContain('implicit TLS');
    const msg = message();
    await p.send(msg);
    await vi.waitFor(() => expect(implicit.messages.map((m) => m.subject)).toContain(msg.subject));
  });

  it('authenticates with PLAIN, or LOGIN when that is all the server offers', async () => {
    const loginOnly = await startInbox(cert, { authMethods: ['LOGIN'] });
    try {
      const viaPlain = await smtp();
      await viaPlain.send(message());
      expect(starttls.authMethods).toContain('PLAIN');
      const viaLogin = await smtp({ port: String(loginOnly.port) });
      await viaLogin.send(message());
      expect(loginOnly.authMethods).toEqual(['LOGIN']);
      await viaLogin.close();
    } finally {
      await loginOnly.close();
    }
  });

  it('shares a few pooled connections across many messages', async () => {
    const inbox = await startInbox(cert);
    try {
      const p = await smtp({ port: String(inbox.port), poolSize: '2' });
      const msgs = Array.from({ length: 8 }, () => message());
      await expect(p.sendBulk(msgs)).resolves.toEqual({ sent: 8, failed: [] });
      expect(inbox.messages).toHaveLength(8);
      expect(inbox.connections).toBeLessThanOrEqual(2);
      await p.close();
    } finally {
      await inbox.close();
    }
  });

  describe('failures', () => {
    it('a wrong password: health error without the secret, and a final send error', async () => {
      const wrong = 'wrong-password-0123456789';
      const p = await smtp({ password: wrong });
      const health = await p.check(AbortSignal.timeout(15_000));
      expect(health.status).toBe('error');
      expect(health.error).toContain('535');
      expect(health.error).not.toContain(wrong);
      const err = await providerErrorOf(p.send(message()), 'send with a wrong password');
      expect(err.retryable).toBe(false);
      expect(err.code).toBe('EAUTH');
      expect(err.message).not.toContain(wrong);
    });

    it('a server that is down: retryable send error and a health error', async () => {
      const p = await smtp({ port: String(await closedPort()) });
      const err = await providerErrorOf(p.send(message()), 'send to a closed port');
      expect(err.retryable).toBe(true);
      expect(err.message).toContain('127.0.0.1');
      expect((await p.check(AbortSignal.timeout(15_000))).status).toBe('error');
    });

    it('a 4xx reply is retryable, a 5xx reply is not', async () => {
      const p = await smtp();
      const busy = await providerErrorOf(p.send(message({ to: 'busy@example.com' })), 'send to a busy mailbox');
      expect(busy.message).toContain('451');
      expect(busy.retryable).toBe(true);
      const unknown = await providerErrorOf(p.send(message({ to: 'unknown@example.com' })), 'send to an unknown user');
      expect(unknown.message).toContain('550');
      expect(unknown.retryable).toBe(false);
    });

    it('refuses a self-signed certificate unless it is trusted or checks are turned off', async () => {
      const { tlsCaFile: _ca, ...untrusted } = settings();
      const strict = await instances.make(untrusted);
      const health = await strict.check(AbortSignal.timeout(15_000));
      expect(health.status).toBe('error');
      expect(health.error).toMatch(/self[- ]signed/i);
      expect((await providerErrorOf(strict.send(message()), 'send to an untrusted server')).retryable).toBe(false);

      const lax = await instances.make({ ...untrusted, tlsRejectUnauthorized: 'false' });
      expect((await lax.check(AbortSignal.timeout(15_000))).status).toBe('connected');
    });

    it('with TLS on, will not fall back to plain text when STARTTLS is not offered', async () => {
      const plainOnly = await startInbox(cert, { disabledCommands: ['STARTTLS'], allowInsecureAuth: true });
      try {
        const p = await smtp({ port: String(plainOnly.port) });
        const err = await providerErrorOf(p.send(message()), 'send without STARTTLS');
        expect(err.retryable).toBe(false);
        expect(plainOnly.messages).toHaveLength(0);
        expect(plainOnly.authFailures).toBe(0);
        await p.close();

        const { tlsCaFile: _ca, ...noCa } = settings({ port: String(plainOnly.port), tls: 'false' });
        const plain = await instances.make(noCa);
        await plain.send(message());
        expect(plainOnly.messages).toHaveLength(1);
        await plain.close();
      } finally {
        await plainOnly.close();
      }
    });

    it('check() gives up when the signal aborts, even if the server never greets', async () => {
      const silent = await startSilentServer();
      try {
        const p = await smtp({ port: String(silent.port) });
        const health = await p.check(silent.signal);
        expect(health.status).toBe('error');
        expect(health.error).toContain('aborted');
      } finally {
        await silent.close();
      }
    });

    it('rejects sends after close(), and close() twice is fine', async () => {
      const p = await smtp();
      await p.close();
      await p.close();
      expect((await providerErrorOf(p.send(message()), 'send after close')).retryable).toBe(false);
    });
  });

  describe('configuration', () => {
    it('names the env var of an unreadable CA file', async () => {
      const err = await rejectionOf(createForTest(provider, settings({ tlsCaFile: '/nonexistent/ca.pem' })), 'a missing CA file');
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.message).toContain('SMTP_TLS_CA_FILE');
    });

    it('rejects contradictory or half-given settings', () => {
      expect(() => provider.config.parse(settings({ tls: 'false', implicitTls: 'true' }))).toThrow(/SMTP_TLS is false/);
      const { password: _p, ...noPassword } = settings();
      expect(() => provider.config.parse(noPassword)).toThrow(/SMTP_USERNAME/);
    });

    it('defaults to port 587 with STARTTLS', () => {
      const { port: _port, tls: _tls, ...rest } = settings();
      expect(provider.config.parse(rest)).toMatchObject({ port: 587, tls: true, implicitTls: false, tlsRejectUnauthorized: true });
    });
  });
});
