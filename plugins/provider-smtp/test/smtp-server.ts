import type { AddressInfo } from 'node:net';
import type { ReceivedEmail } from '@apigate/provider-testkit';
import { type AddressObject, simpleParser } from 'mailparser';
import selfsigned from 'selfsigned';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';

export const USER = 'apigate@example.com';
export const PASSWORD = 'correct-horse-battery-staple';

/** A self-signed certificate for localhost / 127.0.0.1, made fresh for each test run. */
export async function selfSignedCert(): Promise<{ key: string; cert: string }> {
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], {
    keySize: 2048,
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
        ],
      },
    ],
  });
  return { key: pems.private, cert: pems.cert };
}

export interface Inbox {
  port: number;
  /** Everything accepted so far, parsed by mailparser, in the testkit's shape. */
  messages: ReceivedEmail[];
  /** Connections opened so far (to see the pool reuse them). */
  connections: number;
  /** Failed AUTH attempts so far. */
  authFailures: number;
  /** The AUTH mechanism of each successful login (PLAIN, LOGIN). */
  authMethods: string[];
  close(): Promise<void>;
}

const addressList = (a: AddressObject | AddressObject[] | undefined): string[] =>
  (Array.isArray(a) ? a : a ? [a] : []).flatMap((o) => o.value.map((v) => v.address ?? '').filter(Boolean));

/** The value of each header as written, unfolded (mailparser structures some of them). */
const headerValues = (lines: readonly { key: string; line: string }[]): Record<string, string> =>
  Object.fromEntries(
    lines.map(({ key, line }) => [
      key,
      line
        .slice(line.indexOf(':') + 1)
        .replace(/\r?\n[ \t]+/g, ' ')
        .trim(),
    ]),
  );

/**
 * A real SMTP server (smtp-server) on a free port: AUTH PLAIN/LOGIN required, STARTTLS or implicit
 * TLS with the given certificate. RCPT to `busy@…` gets 451 (transient), `unknown@…` 550 (permanent).
 */
export async function startInbox(tls: { key: string; cert: string }, opts: Partial<SMTPServerOptions> = {}): Promise<Inbox> {
  const inbox: Inbox = { port: 0, messages: [], connections: 0, authFailures: 0, authMethods: [], close: async () => {} };
  const server = new SMTPServer({
    key: tls.key,
    cert: tls.cert,
    authMethods: ['PLAIN', 'LOGIN'],
    logger: false,
    onConnect(_session, cb) {
      inbox.connections++;
      cb();
    },
    onAuth(auth, _session, cb) {
      if (auth.username === USER && auth.password === PASSWORD) {
        inbox.authMethods.push(auth.method);
        return cb(null, { user: auth.username });
      }
      inbox.authFailures++;
      cb(Object.assign(new Error('Authentication credentials invalid'), { responseCode: 535 }));
    },
    onRcptTo(address, _session, cb) {
      if (address.address.startsWith('busy@')) return cb(Object.assign(new Error('Mailbox busy, try again later'), { responseCode: 451 }));
      if (address.address.startsWith('unknown@')) return cb(Object.assign(new Error('No such user here'), { responseCode: 550 }));
      cb();
    },
    onData(stream, session, cb) {
      simpleParser(stream).then(
        (parsed) => {
          const to = addressList(parsed.to);
          const cc = addressList(parsed.cc);
          const visible = new Set([...to, ...cc].map((a) => a.toLowerCase()));
          inbox.messages.push({
            from: parsed.from?.text ?? '',
            to,
            cc,
            bcc: session.envelope.rcptTo.map((r) => r.address).filter((a) => !visible.has(a.toLowerCase())),
            ...(parsed.replyTo ? { replyTo: parsed.replyTo.text } : {}),
            subject: parsed.subject ?? '',
            ...(parsed.text !== undefined ? { text: parsed.text } : {}),
            ...(typeof parsed.html === 'string' ? { html: parsed.html } : {}),
            headers: headerValues(parsed.headerLines),
            attachments: parsed.attachments.map((a) => ({ filename: a.filename ?? '', contentType: a.contentType, content: a.content })),
            ...(parsed.messageId ? { messageId: parsed.messageId } : {}),
          });
          cb();
        },
        (err: Error) => cb(err),
      );
    },
    ...opts,
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  inbox.port = (server.server.address() as AddressInfo).port;
  inbox.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return inbox;
}

/** A port nothing listens on: bound once, then released. */
export async function closedPort(): Promise<number> {
  const { createServer } = await import('node:net');
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}
