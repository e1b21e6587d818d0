import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import redisCache from '@apigate/provider-redis-cache';
import { createForTest } from '@apigate/provider-testkit';
import { verifyWebhookSignature, type WebhookNotificationPayload } from '@apigate/provider-webhook-notification';
import { simpleParser } from 'mailparser';
import selfsigned from 'selfsigned';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, cleanEnv, cli, type Result, serve, tempDir } from './helpers.js';

const USER = 'cli@apigate.test';
const PASSWORD = 'cli-smtp-password-0123';
const FROM = '"APIGate CLI" <noreply@apigate.test>';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

interface Mail {
  from: string;
  to: string[];
  subject: string;
  text: string;
  html: string;
  headers: Map<string, unknown>;
}

let tls: { key: string; cert: string };
let caFile: string;

/** A real SMTP server on `port` (0: any): STARTTLS with a self-signed certificate, AUTH required. */
async function startSmtp(port: number, inbox: Mail[]) {
  const server = new SMTPServer({
    key: tls.key,
    cert: tls.cert,
    authMethods: ['PLAIN', 'LOGIN'],
    logger: false,
    closeTimeout: 50,
    onAuth(auth, _s, cb) {
      if (auth.username === USER && auth.password === PASSWORD) return cb(null, { user: USER });
      cb(Object.assign(new Error('Authentication credentials invalid'), { responseCode: 535 }));
    },
    onData(stream, session, cb) {
      // Only mail sent over TLS counts: the provider must never fall back to plain text.
      if (!session.secure) return cb(Object.assign(new Error('TLS required'), { responseCode: 530 }));
      simpleParser(stream).then((p) => {
        inbox.push({
          from: p.from?.text ?? '',
          to: (Array.isArray(p.to) ? p.to : p.to ? [p.to] : []).flatMap((a) => a.value.map((v) => v.address ?? '')),
          subject: p.subject ?? '',
          text: p.text ?? '',
          html: typeof p.html === 'string' ? p.html : '',
          headers: p.headers,
        });
        cb();
      }, cb);
    },
  });
  server.listen(port, '127.0.0.1');
  await once(server.server, 'listening');
  return { port: (server.server.address() as AddressInfo).port, stop: () => new Promise<void>((r) => server.close(() => r())) };
}

/** Runs the CLI without waiting, so a test can act while it runs; `line(re)` resolves when stderr shows it. */
function start(args: string[], env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const watchers: { re: RegExp; resolve: () => void }[] = [];
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => {
    stderr += d;
    for (const w of [...watchers]) if (w.re.test(stderr)) w.resolve();
  });
  const done = new Promise<Result>((resolve) => child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr })));
  return {
    done,
    line: (re: RegExp) =>
      new Promise<void>((resolve, reject) => {
        if (re.test(stderr)) return resolve();
        watchers.push({ re, resolve });
        void done.then((r) => reject(new Error(`exited (${r.code}) before printing ${re}:\n${r.stdout}${r.stderr}`)));
      }),
  };
}

const inbox: Mail[] = [];
let smtp: Awaited<ReturnType<typeof startSmtp>>;
const prefix = `apigate-test-cli-${randomUUID()}`;

beforeAll(async () => {
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], {
    keySize: 2048,
    algorithm: 'sha256',
    extensions: [
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
        ],
      },
    ],
  });
  tls = { key: pems.private, cert: pems.cert };
  caFile = path.join(tempDir('smtp-ca'), 'ca.pem');
  writeFileSync(caFile, tls.cert);
  smtp = await startSmtp(0, inbox);
});

afterAll(async () => {
  await smtp?.stop();
  // The Redis queue's keys, through the Redis cache provider's prefix clear.
  const { provider } = await createForTest(redisCache, { url: REDIS_URL, keyPrefix: `${prefix}:` });
  await provider.clear();
  await provider.close();
});

const smtpEnv = () =>
  cleanEnv({
    APIGATE_DATA_DIR: tempDir('email'),
    EMAIL_PROVIDER: 'smtp',
    SMTP_HOST: '127.0.0.1',
    SMTP_PORT: String(smtp.port),
    SMTP_USERNAME: USER,
    SMTP_PASSWORD: PASSWORD,
    SMTP_FROM: FROM,
    SMTP_TLS: 'true',
    SMTP_TLS_CA_FILE: caFile,
  });

const arrived = (jobId: string) => inbox.filter((m) => m.headers.get('x-apigate-test') === jobId);

describe('apigate email and queue commands (EMAIL_PROVIDER=smtp)', () => {
  it('has --help on the new commands', async () => {
    const env = smtpEnv();
    for (const args of [
      ['email'],
      ['email', 'send-test'],
      ['notify'],
      ['notify', 'test'],
      ['queue'],
      ['queue', 'failed'],
      ['queue', 'retry'],
    ]) {
      const r = await cli([...args, '--help'], env);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stdout).toContain('Usage: apigate');
    }
  });

  it('providers test --email connects, upgrades to TLS and authenticates', async () => {
    const r = await cli(['providers', 'test', '--email'], smtpEnv());
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/email\s+smtp\s+connected/);
    expect(r.stdout).not.toContain(PASSWORD);
  });

  it('email send-test --wait delivers a message with the right parts', async () => {
    const r = await cli(['email', 'send-test', '--to', 'alice@example.com', '--subject', 'CLI check', '--wait', '--json'], smtpEnv());
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({
      kind: 'email',
      queue: 'email.send',
      provider: 'email/smtp',
      queueProvider: 'queue/memory',
      status: 'delivered',
      attempt: 1,
    });
    const [mail, ...more] = arrived(out.jobId);
    expect(more).toEqual([]);
    expect(mail).toMatchObject({ from: FROM, to: ['alice@example.com'], subject: 'CLI check' });
    expect(mail!.text).toContain('This is a test email from APIGate');
    expect(mail!.text).toContain('email/smtp');
    expect(mail!.html).toContain('<strong>test email</strong>');
    expect(mail!.headers.get('message-id')).toBe(out.messageId);
  });

  it('with the SMTP server down, send-test --wait keeps retrying and delivers once it is back on the same port', async () => {
    const env = smtpEnv();
    expect((await cli(['settings', 'set', 'delivery.backoff_ms', '100'], env)).code).toBe(0);
    const port = smtp.port;
    await smtp.stop();
    const run = start(['email', 'send-test', '--to', 'bob@example.com', '--wait', '--json'], env);
    await run.line(/attempt 1 of 10 failed: .*ECONNREFUSED.*; retrying/);
    smtp = await startSmtp(port, inbox);
    const r = await run.done;
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.status).toBe('delivered');
    expect(out.attempt).toBeGreaterThan(1);
    expect(arrived(out.jobId)).toHaveLength(1);
    expect(arrived(out.jobId)[0]!.to).toEqual(['bob@example.com']);
  });

  it('on the Redis queue: a message that used up its attempts is listed by queue failed, and queue retry hands it to apigate serve', async () => {
    const env = { ...smtpEnv(), QUEUE_PROVIDER: 'redis', QUEUE_REDIS_URL: REDIS_URL, SMTP_PORT: String(await closedPortOf()) };
    for (const [k, v] of [
      ['queue.redis.prefix', prefix],
      ['delivery.attempts', '2'],
      ['delivery.backoff_ms', '20'],
    ]) {
      expect((await cli(['settings', 'set', k!, v!], env)).code).toBe(0);
    }
    // Without --wait on a durable queue the command only queues.
    const queued = await cli(['email', 'send-test', '--to', 'carol@example.com', '--json'], env);
    expect(queued.code, queued.stderr).toBe(0);
    expect(JSON.parse(queued.stdout)).toMatchObject({ status: 'queued', queueProvider: 'queue/redis' });
    const queuedId = JSON.parse(queued.stdout).jobId as string;

    // With --wait and nothing listening on the SMTP port: both attempts fail, the job is in the failed set.
    const failed = await cli(['email', 'send-test', '--to', 'carol@example.com', '--wait'], env);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/attempt 1 of 2 failed: .*; retrying/);
    expect(failed.stderr).toMatch(
      /^apigate: email job send-test-\S+ failed on attempt 2 of 2: .*apigate queue retry email\.send send-test-/m,
    );
    expect(failed.stderr).not.toContain(PASSWORD);

    const list = await cli(['queue', 'failed', 'email.send', '--json'], env);
    expect(list.code, list.stderr).toBe(0);
    const items = JSON.parse(list.stdout).items as { id: string; attempt: number; maxAttempts: number; error: string }[];
    expect(items.map((i) => i.id).sort()).toEqual(expect.arrayContaining([queuedId]));
    expect(items).toHaveLength(2);
    expect(items.every((i) => i.attempt === 2 && i.maxAttempts === 2 && /ECONNREFUSED|connect/i.test(i.error))).toBe(true);
    const text = await cli(['queue', 'failed', 'email.send'], env);
    expect(text.stdout).toMatch(/ID\s+ATTEMPTS\s+FAILEDAT\s+ERROR/);
    expect((await cli(['queue', 'retry', 'email.send', 'no-such-job'], env)).code).toBe(3);

    // The server is up again; serve's workers send what `queue retry` put back.
    const up = {
      ...env,
      SMTP_PORT: String(smtp.port),
      NOTIFICATION_PROVIDER: 'log',
      PAYMENT_PROVIDER: 'dummy',
      CACHE_PROVIDER: 'memory',
      STORAGE_PROVIDER: 'memory',
    };
    const served = await serve(BIN, up);
    try {
      const retry = await cli(['queue', 'retry', 'email.send', '--json'], up);
      expect(retry.code, retry.stderr).toBe(0);
      expect(JSON.parse(retry.stdout)).toEqual({ queue: 'email.send', provider: 'redis', retried: 2 });
      await expect.poll(() => items.map((i) => arrived(i.id).length), { timeout: 30_000 }).toEqual([1, 1]);
      expect(JSON.parse((await cli(['queue', 'failed', 'email.send', '--json'], up)).stdout).items).toEqual([]);
    } finally {
      expect(await served.stop()).toBe(0);
    }
  });
});

describe('email send-test --wait while apigate serve runs on the same Redis queue', () => {
  it("reports the outcome of the server's worker: failed with its error, then delivered", async () => {
    const base = {
      ...smtpEnv(),
      QUEUE_PROVIDER: 'redis',
      QUEUE_REDIS_URL: REDIS_URL,
      NOTIFICATION_PROVIDER: 'log',
      PAYMENT_PROVIDER: 'dummy',
      CACHE_PROVIDER: 'memory',
      STORAGE_PROVIDER: 'memory',
    };
    for (const [k, v] of [
      ['queue.redis.prefix', prefix],
      ['delivery.attempts', '2'],
      ['delivery.backoff_ms', '20'],
    ]) {
      expect((await cli(['settings', 'set', k!, v!], base)).code).toBe(0);
    }

    // The server's SMTP port is closed: its worker fails the job; the CLI reports that, not a timeout.
    const down = { ...base, SMTP_PORT: String(await closedPortOf()) };
    const failingServer = await serve(BIN, down);
    try {
      const failed = await cli(['email', 'send-test', '--to', 'dave@example.com', '--wait', '--json', '--timeout', '60'], down);
      expect(failed.code, failed.stderr).toBe(1);
      expect(JSON.parse(failed.stdout)).toMatchObject({
        status: 'failed',
        deliveredBy: 'elsewhere',
        attempt: 2,
        maxAttempts: 2,
        error: expect.stringMatching(/ECONNREFUSED|connect/i),
      });
      expect(failed.stdout + failed.stderr).not.toContain(PASSWORD);
    } finally {
      expect(await failingServer.stop()).toBe(0);
    }

    const up = { ...base, SMTP_PORT: String(smtp.port) };
    const served = await serve(BIN, up);
    try {
      const sent = await cli(['email', 'send-test', '--to', 'erin@example.com', '--wait', '--timeout', '60'], up);
      expect(sent.code, sent.stderr).toBe(0);
      expect(sent.stdout).toMatch(
        /^delivered the test email to erin@example.com via email\/smtp by another worker \(a running apigate serve\) on attempt 1/m,
      );
      const json = await cli(['email', 'send-test', '--to', 'erin@example.com', '--wait', '--json', '--timeout', '60'], up);
      expect(json.code, json.stderr).toBe(0);
      const out = JSON.parse(json.stdout);
      expect(out).toMatchObject({ status: 'delivered', deliveredBy: 'elsewhere', attempt: 1, queueProvider: 'queue/redis' });
      expect(arrived(out.jobId)).toHaveLength(1);
    } finally {
      expect(await served.stop()).toBe(0);
    }
  });
});

describe('apigate notify test (NOTIFICATION_PROVIDER=webhook)', () => {
  it('delivers a signed test notification', async () => {
    const secret = 'cli-webhook-secret-0123456789';
    const got: WebhookNotificationPayload[] = [];
    const receiver = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        got.push(verifyWebhookSignature({ rawBody: Buffer.concat(chunks), headers: req.headers, secret }));
        res.end('ok');
      });
    });
    receiver.listen(0, '127.0.0.1');
    await once(receiver, 'listening');
    try {
      const env = cleanEnv({
        APIGATE_DATA_DIR: tempDir('notify'),
        NOTIFICATION_PROVIDER: 'webhook',
        NOTIFICATION_WEBHOOK_URL: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`,
        NOTIFICATION_WEBHOOK_SECRET: secret,
      });
      const r = await cli(['notify', 'test', '--severity', 'warning', '--title', 'Hello from the CLI'], env);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('delivered the test notification via notification/webhook on attempt 1');
      expect(got).toHaveLength(1);
      expect(got[0]).toMatchObject({ type: 'apigate.test', data: { title: 'Hello from the CLI', severity: 'warning' } });
      expect(got[0]!.id).toMatch(/^notify-test-/);
      const bad = await cli(['notify', 'test', '--severity', 'loud'], env);
      expect(bad.code).toBe(1);
      expect(bad.stderr.trim()).toBe('apigate: --severity: expected one of info, warning, error, critical, got "loud"');
    } finally {
      receiver.closeAllConnections();
      await new Promise<void>((r) => receiver.close(() => r()));
    }
  });
});

/** A loopback port nothing listens on. */
async function closedPortOf(): Promise<number> {
  const s = http.createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
