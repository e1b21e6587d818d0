import type { EmailFeatures, EmailMessage, EmailProvider } from '@apigate/kernel';
import { describe, expect, it, vi } from 'vitest';
import { ARRIVAL_TIMEOUT_MS, expectFinalRejection, instancePerTest, lifecycleTests, token } from './expectations.js';
import { describeFailingServer, expectRetryable } from './failing-server.js';
import { closedSmtpPort, type SmtpStub, startSmtpStub } from './smtp-stub.js';
import { type DefinitionOf, describeSuite, resolveSuite, type SuiteSetup, type TestConfig } from './suite.js';

export interface ReceivedAttachment {
  filename: string;
  contentType?: string;
  content: Uint8Array;
}

/**
 * A message as the receiving side saw it, as plain data. Each provider's test turns what its
 * backend received into this shape: the log provider's captured messages, an SMTP server's mail
 * parsed with mailparser, a fake SendGrid API's request bodies.
 */
export interface ReceivedEmail {
  /** Sender address; `Name <addr>` is accepted. */
  from: string;
  to: string[];
  cc: string[];
  /** Recipients hidden from the headers, where the inbox can tell (SMTP envelope minus to/cc, API request, log). */
  bcc?: string[];
  replyTo?: string;
  subject: string;
  text?: string;
  html?: string;
  /** Header names in any case; the suite compares them lower-cased. */
  headers: Record<string, string>;
  attachments: ReceivedAttachment[];
  /** The id the backend recorded, when it has one; compared with the id `send` returned. */
  messageId?: string;
}

export interface EmailSuiteContext {
  /** The instance made by `create` for the current test. */
  provider(): EmailProvider;
}

export interface EmailSuiteOptions {
  name?: string;
  /** Timeout of each test in ms (default 30 s). */
  timeout?: number;
  /** Called before each test; the suite closes the instance after it. */
  create: () => EmailProvider | Promise<EmailProvider>;
  /** The provider's declared features (`definition.features`). */
  features?: EmailFeatures;
  /**
   * Everything the receiving side has seen so far (may include other tests' mail: the suite
   * finds its own by a unique subject). Without it the suite checks only what `send` returns.
   */
  inbox?: (provider: EmailProvider) => ReceivedEmail[] | Promise<ReceivedEmail[]>;
  /** The address the provider sends from when a message has no `from`; checked against the inbox. */
  defaultFrom?: string;
  additionalTests?: (ctx: EmailSuiteContext) => void;
  /** For SMTP providers: runs the server-failure tests against a stub SMTP server the suite controls. */
  smtpServer?: EmailSmtpServerOptions;
}

export interface EmailSmtpServerOptions {
  /** An instance sending to `host:port` in plain text (no TLS, no auth), with its timeout set to `timeoutMs`. */
  create: (server: { host: string; port: number }) => EmailProvider | Promise<EmailProvider>;
  /** The timeout `create` configures; a server that never greets must fail the send within it (+10 s). Default 2000. */
  timeoutMs?: number;
}

/** What `describeEmailProvider(definition, setup)` takes besides the setup every suite takes. */
export interface EmailSuiteSetup extends SuiteSetup, Pick<EmailSuiteOptions, 'inbox' | 'defaultFrom' | 'additionalTests'> {
  /**
   * For SMTP providers: the config fields that point an instance at `host:port` in plain text (no
   * TLS, no auth) with its timeout set to `timeoutMs`, merged over the suite's `config` and
   * `secrets` (`undefined` leaves a field out, e.g. a username). The suite then runs its
   * server-failure tests against a stub SMTP server it controls.
   */
  smtpServer?: { config: (server: { host: string; port: number }) => TestConfig; timeoutMs?: number };
}

const TEST_TIMEOUT = 30_000;

/** Lower-cased bare address: `"A" <a@x.org>` and `A@X.org` compare equal. */
export function bareAddress(value: string | undefined): string {
  const m = /<([^<>]+)>\s*$/.exec(value ?? '');
  return (m ? m[1]! : (value ?? '')).trim().toLowerCase();
}

const addresses = (list: string[] | undefined): string[] => (list ?? []).map(bareAddress).sort();
/** Transports rewrite line ends and may add a final newline; content is what counts. */
const body = (s: string | undefined): string => (s ?? '').replace(/\r\n/g, '\n').trimEnd();
const lowerKeys = (h: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), String(v).trim()]));
const stripAngles = (id: string): string => id.trim().replace(/^<|>$/g, '');

const BINARY = Uint8Array.from({ length: 256 }, (_v, i) => i);

/**
 * Conformance suite for email providers: what `send` and `sendBulk` accept, return and reject,
 * and, given an `inbox`, what actually arrived, field by field. Each test gets a new instance of
 * `definition`, made by `createForTest` from the setup's `config` and `secrets`.
 */
export function describeEmailProvider(definition: DefinitionOf<'email'>, setup?: EmailSuiteSetup): void;
/** @deprecated The 1.0 form: pass the definition and its config instead, `describeEmailProvider(definition, { config })`. */
export function describeEmailProvider(opts: EmailSuiteOptions): void;
export function describeEmailProvider(first: DefinitionOf<'email'> | EmailSuiteOptions, setup?: EmailSuiteSetup): void {
  const suite = resolveSuite('email', 'email provider conformance', first, setup, (make, s) => ({
    smtpServer: s.smtpServer && { create: (server) => make(s.smtpServer!.config(server)), timeoutMs: s.smtpServer.timeoutMs },
  }));
  const opts = suite.opts;
  describeSuite(suite, TEST_TIMEOUT, () => {
    const provider = instancePerTest('email', opts.create);

    const inbox = opts.inbox;
    /** Waits until exactly one message with this subject has arrived, and returns it. */
    const arrived = async (subject: string): Promise<ReceivedEmail> => {
      const found = await vi.waitFor(
        async () => {
          const hits = (await inbox!(provider())).filter((m) => m.subject === subject);
          if (hits.length === 0) throw new Error(`no message with subject "${subject}" has arrived`);
          return hits;
        },
        { timeout: ARRIVAL_TIMEOUT_MS, interval: 50 },
      );
      expect(found, `messages with subject "${subject}"`).toHaveLength(1);
      return found[0]!;
    };
    const subjects = async (): Promise<string[]> => (await inbox!(provider())).map((m) => m.subject);

    /** Sends, checks the returned id, and (with an inbox) returns what arrived. */
    const sendAndReceive = async (msg: EmailMessage): Promise<ReceivedEmail | undefined> => {
      const { messageId } = await provider().send(msg);
      expect(typeof messageId).toBe('string');
      expect(messageId.trim()).not.toBe('');
      if (!inbox) return undefined;
      const got = await arrived(msg.subject);
      if (got.messageId) expect(stripAngles(got.messageId)).toBe(stripAngles(messageId));
      return got;
    };

    const base = (label: string): EmailMessage & { to: string[] } => ({
      from: 'sender@example.com',
      to: ['alice@example.com'],
      subject: `conformance ${label} ${token()}`,
      text: `Plain text for ${label}.`,
    });

    describe('send', () => {
      it('sends to a single recipient and returns a message id', async () => {
        const msg = { ...base('single'), to: 'alice@example.com' };
        const got = await sendAndReceive(msg);
        if (got) {
          expect(bareAddress(got.from)).toBe('sender@example.com');
          expect(addresses(got.to)).toEqual(['alice@example.com']);
          expect(addresses(got.cc)).toEqual([]);
          expect(got.subject).toBe(msg.subject);
          expect(body(got.text)).toBe(msg.text);
        }
      });

      it('returns a different message id for each message', async () => {
        const a = await provider().send(base('id-a'));
        const b = await provider().send(base('id-b'));
        expect(a.messageId).not.toBe(b.messageId);
      });

      it('sends to several recipients in one message', async () => {
        const msg = { ...base('many'), to: ['alice@example.com', 'bob@example.com', 'carol@example.org'] };
        const got = await sendAndReceive(msg);
        if (got) expect(addresses(got.to)).toEqual(addresses(msg.to));
      });

      it('sends cc visibly and bcc hidden', async () => {
        const msg = { ...base('cc-bcc'), cc: ['cc1@example.com', 'cc2@example.com'], bcc: ['hidden@example.com'] };
        const got = await sendAndReceive(msg);
        if (got) {
          expect(addresses(got.to)).toEqual(['alice@example.com']);
          expect(addresses(got.cc)).toEqual(addresses(msg.cc));
          expect(addresses([...got.to, ...got.cc])).not.toContain('hidden@example.com');
          expect(Object.keys(lowerKeys(got.headers))).not.toContain('bcc');
          if (got.bcc) expect(addresses(got.bcc)).toEqual(['hidden@example.com']);
        }
      });

      it('sends text only', async () => {
        const msg = { ...base('text-only'), text: 'Line one.\nLine two, ünïcödé ✓.' };
        const got = await sendAndReceive(msg);
        if (got) {
          expect(body(got.text)).toBe(msg.text);
          expect(got.html || undefined).toBeUndefined();
        }
      });

      it('sends html only', async () => {
        const { text: _none, ...rest } = base('html-only');
        const msg: EmailMessage = { ...rest, html: '<p>Hello <strong>HTML</strong> ✓</p>' };
        const got = await sendAndReceive(msg);
        // No assertion on `text` here: MIME parsers derive a text version from the html.
        if (got) expect(body(got.html)).toBe(msg.html);
      });

      it('sends text and html together', async () => {
        const msg = { ...base('both'), text: 'Text version.', html: '<p>HTML version.</p>' };
        const got = await sendAndReceive(msg);
        if (got) {
          expect(body(got.text)).toBe(msg.text);
          expect(body(got.html)).toBe(msg.html);
        }
      });

      it('sets reply-to', async () => {
        const msg = { ...base('reply-to'), replyTo: 'replies@example.com' };
        const got = await sendAndReceive(msg);
        if (got) expect(bareAddress(got.replyTo)).toBe('replies@example.com');
      });

      it('accepts a from with a display name', async () => {
        const msg = { ...base('display-name'), from: '"APIGate Conformance" <named@example.com>' };
        const got = await sendAndReceive(msg);
        if (got) expect(bareAddress(got.from)).toBe('named@example.com');
      });

      it('uses the configured from address when the message has none', async () => {
        const { from: _none, ...msg } = base('default-from');
        const got = await sendAndReceive(msg);
        if (got) {
          expect(bareAddress(got.from)).toMatch(/.+@.+/);
          if (opts.defaultFrom) expect(bareAddress(got.from)).toBe(bareAddress(opts.defaultFrom));
        }
      });

      it('passes custom headers through', async () => {
        const t = token();
        const msg = { ...base('headers'), headers: { 'X-Apigate-Test': 'conformance', 'X-Apigate-Token': t } };
        const got = await sendAndReceive(msg);
        if (got) {
          const h = lowerKeys(got.headers);
          expect(h['x-apigate-test']).toBe('conformance');
          expect(h['x-apigate-token']).toBe(t);
        }
      });

      it('sends a unicode subject intact', async () => {
        const msg = {
          ...base('unicode'),
          subject: `Grüße aus Köln, 你好, ✓ — a subject long enough to be folded by MIME encoders ${token()}`,
        };
        const got = await sendAndReceive(msg);
        if (got) expect(got.subject).toBe(msg.subject);
      });

      if (opts.features?.attachments) {
        it('sends attachments byte for byte', async () => {
          const msg: EmailMessage = {
            ...base('attachments'),
            attachments: [
              { filename: 'data.bin', content: BINARY, contentType: 'application/octet-stream' },
              { filename: 'notes.txt', content: new TextEncoder().encode('Notes: ünïcödé ✓\n'), contentType: 'text/plain' },
            ],
          };
          const got = await sendAndReceive(msg);
          if (got) {
            expect(got.attachments.map((a) => a.filename).sort()).toEqual(['data.bin', 'notes.txt']);
            for (const sent of msg.attachments!) {
              const a = got.attachments.find((x) => x.filename === sent.filename)!;
              expect(Buffer.from(a.content).equals(Buffer.from(sent.content)), `${sent.filename} content`).toBe(true);
              if (a.contentType) expect(a.contentType.split(';')[0]!.trim().toLowerCase()).toBe(sent.contentType);
            }
          }
        });
      } else {
        it('rejects attachments it cannot send instead of dropping them', async () => {
          const msg = { ...base('no-attachments'), attachments: [{ filename: 'a.bin', content: BINARY }] };
          await expectFinalRejection(provider().send(msg), 'a message with attachments');
        });
      }
    });

    describe('invalid input', () => {
      const invalid: [string, (m: EmailMessage) => EmailMessage][] = [
        ['no recipient', (m) => ({ ...m, to: [] })],
        ['an empty subject', (m) => ({ ...m, subject: '' })],
        ['a malformed to address', (m) => ({ ...m, to: 'not-an-address' })],
        ['a malformed cc address', (m) => ({ ...m, cc: ['also not an address'] })],
        ['a malformed from address', (m) => ({ ...m, from: 'nobody' })],
        // A line break in a header value would let a caller inject headers (a hidden Bcc, say).
        ['a header value with a line break', (m) => ({ ...m, headers: { 'X-Apigate-Test': 'a\r\nBcc: victim@example.com' } })],
      ];
      for (const [what, make] of invalid) {
        it(`rejects a message with ${what}, without retry`, async () => {
          await expectFinalRejection(() => provider().send(make(base('invalid'))), `a message with ${what}`);
        });
      }

      if (inbox) {
        it('delivers nothing for a rejected message', async () => {
          const bad = { ...base('rejected'), to: 'not-an-address' };
          await expectFinalRejection(() => provider().send(bad), 'a malformed address');
          // A later good message arriving shows the inbox is live; the rejected one must not be in it.
          await sendAndReceive(base('after-rejected'));
          expect(await subjects()).not.toContain(bad.subject);
        });
      }
    });

    describe('sendBulk', () => {
      it('sends every message and counts them', async () => {
        const msgs = [base('bulk-1'), base('bulk-2'), base('bulk-3')];
        await expect(provider().sendBulk(msgs)).resolves.toEqual({ sent: 3, failed: [] });
        if (inbox) for (const m of msgs) await arrived(m.subject);
      });

      it('reports the one bad message by index and sends the others', async () => {
        const msgs = [base('bulk-ok-a'), { ...base('bulk-bad'), to: 'not-an-address' }, base('bulk-ok-b')];
        const result = await provider().sendBulk(msgs);
        expect(result.sent).toBe(2);
        expect(result.failed).toHaveLength(1);
        expect(result.failed[0]!.index).toBe(1);
        expect(typeof result.failed[0]!.error).toBe('string');
        expect(result.failed[0]!.error.trim()).not.toBe('');
        if (inbox) {
          await arrived(msgs[0]!.subject);
          await arrived(msgs[2]!.subject);
          expect(await subjects()).not.toContain(msgs[1]!.subject);
        }
      });

      it('accepts an empty list', async () => {
        await expect(provider().sendBulk([])).resolves.toEqual({ sent: 0, failed: [] });
      });
    });

    describe('lifecycle', () => {
      lifecycleTests(provider);
    });

    if (opts.smtpServer) smtpFailureTests(opts.smtpServer);

    opts.additionalTests?.({ provider });
  });
}

/**
 * What an SMTP provider must do when the server refuses or is gone: reject (never report a refused
 * message as sent), final for a permanent 5xx, retryable for a temporary 4xx, a server that is down
 * or never greets; and `check()` must not say connected while the server is down.
 */
function smtpFailureTests(opts: EmailSmtpServerOptions): void {
  const timeoutMs = opts.timeoutMs ?? 2000;
  const server = { start: startSmtpStub, address: (stub: SmtpStub) => ({ host: stub.host, port: stub.port }), create: opts.create };
  describeFailingServer('when the SMTP server fails', server, ({ server: stub, make, failure }) => {
    const message = (label: string): EmailMessage => ({
      from: 'sender@example.com',
      to: ['alice@example.com'],
      subject: `conformance ${label} ${token()}`,
      text: 'Body.',
    });
    const down = async () => ({ host: '127.0.0.1', port: await closedSmtpPort() });
    const sendFailure = async (p: EmailProvider, what: string) => failure(p.send(message(what)), what);

    it('sends through the stub server (the failure tests start from here)', async () => {
      await (await make()).send(message('stub'));
      expect(stub().accepted).toBe(1);
    });

    it('rejects as final when the server refuses the recipient (550)', async () => {
      stub().setMode('reject-recipient');
      expectRetryable(await sendFailure(await make(), 'the server refused the recipient'), false, 'a 550');
    });

    it('rejects as retryable when the server fails the message temporarily (451)', async () => {
      stub().setMode('temporary-failure');
      expectRetryable(await sendFailure(await make(), 'the server answered 451'), true, 'a 451');
    });

    it('rejects as retryable when the server is unavailable (421)', async () => {
      stub().setMode('unavailable');
      expectRetryable(await sendFailure(await make(), 'the server answered 421'), true, 'a 421');
    });

    it('rejects as retryable when nothing listens', async () => {
      expectRetryable(await sendFailure(await make(await down()), 'nothing listens'), true, 'a refused connection');
    });

    it(
      'rejects as retryable when the server never greets, within its timeout',
      async () => {
        stub().setMode('silent');
        const started = Date.now();
        expectRetryable(await sendFailure(await make(), 'the server never greeted'), true, 'no greeting');
        expect(Date.now() - started, 'time until send gave up').toBeLessThan(timeoutMs + 10_000);
      },
      timeoutMs + 20_000,
    );

    it('reports a refused message in sendBulk instead of counting it sent', async () => {
      stub().setMode('reject-recipient');
      const result = await (await make()).sendBulk([message('bulk-a'), message('bulk-b')]);
      expect(result.sent).toBe(0);
      expect(result.failed.map((f) => f.index)).toEqual([0, 1]);
    });

    it('check() is not connected while nothing listens', async () => {
      const health = await (await make(await down())).check(AbortSignal.timeout(10_000));
      expect(health.status, 'check() of an SMTP server that is down').not.toBe('connected');
    });
  });
}
