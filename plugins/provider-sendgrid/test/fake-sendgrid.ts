import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ReceivedEmail } from '@apigate/provider-testkit';

/** A key with full access, and one that may only read (no mail.send scope). */
export const FULL_KEY = 'SG.fullaccess-test-key.0123456789abcdefghijklmnop';
export const READ_ONLY_KEY = 'SG.readonly-test-key.0123456789abcdefghijklmnop';

interface Address {
  email: string;
  name?: string;
}

/** The v3 /mail/send body, as far as the provider uses it. */
export interface MailSendBody {
  personalizations: { to: Address[]; cc?: Address[]; bcc?: Address[]; subject?: string }[];
  from: Address;
  reply_to?: Address;
  subject?: string;
  content?: { type: string; value: string }[];
  headers?: Record<string, string>;
  attachments?: { content: string; filename: string; type?: string; disposition?: string }[];
}

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body?: MailSendBody;
}

export interface FakeSendGrid {
  url: string;
  /** Every request, in arrival order. */
  requests: RecordedRequest[];
  /** Accepted sends with the X-Message-Id they were given. */
  accepted: { body: MailSendBody; messageId: string }[];
  /** Requests are held unanswered while true (to test timeouts and aborts); `onHeld` fires for each. */
  hold: boolean;
  onHeld?: () => void;
  close(): Promise<void>;
}

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
};
const errors = (...list: { message: string; field?: string | null; help?: string | null }[]) => ({
  errors: list.map((e) => ({ field: null, help: null, ...e })),
});

/**
 * Answers like SendGrid's v3 API for what the provider uses: POST /v3/mail/send (202 + X-Message-Id,
 * or 400 with { errors: [{ message, field }] }) and GET /v3/scopes, with Bearer auth (401 on a bad
 * key, 403 when the key lacks mail.send). Recipients pick failures: `ratelimited@…` gets 429 with
 * X-RateLimit-* headers, `servererror@…` 500; a sender `unverified@…` gets SendGrid's 400 for an
 * unverified sender identity.
 */
export async function startFakeSendGrid(): Promise<FakeSendGrid> {
  const fake: FakeSendGrid = { url: '', requests: [], accepted: [], hold: false, close: async () => {} };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const record: RecordedRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers };
      if (raw) record.body = JSON.parse(raw) as MailSendBody;
      fake.requests.push(record);
      if (fake.hold) return fake.onHeld?.();

      const key = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      if (key !== FULL_KEY && key !== READ_ONLY_KEY) {
        return json(res, 401, errors({ message: 'The provided authorization grant is invalid, expired, or revoked' }));
      }
      if (req.method === 'GET' && req.url === '/v3/scopes') {
        return json(res, 200, { scopes: key === FULL_KEY ? ['mail.send', 'scopes.read', 'alerts.read'] : ['scopes.read', 'alerts.read'] });
      }
      if (req.method !== 'POST' || req.url !== '/v3/mail/send') return json(res, 404, errors({ message: 'resource not found' }));
      if (key === READ_ONLY_KEY) return json(res, 403, errors({ message: 'access forbidden' }));

      const body = record.body!;
      const recipients = body.personalizations.flatMap((p) => [...p.to, ...(p.cc ?? []), ...(p.bcc ?? [])]).map((a) => a.email);
      if (!body.from?.email)
        return json(res, 400, errors({ message: 'The from object must be provided for every email send.', field: 'from' }));
      if (body.from.email.startsWith('unverified@')) {
        return json(
          res,
          400,
          errors({
            message: 'The from address does not match a verified Sender Identity. Mail cannot be sent until this error is resolved.',
            field: 'from',
            help: 'https://sendgrid.com/docs/for-developers/sending-email/sender-identity/',
          }),
        );
      }
      if (!body.content?.length)
        return json(
          res,
          400,
          errors({ message: 'Unless a valid template_id is provided, the content parameter is required.', field: 'content' }),
        );
      if (recipients.some((r) => r.startsWith('ratelimited@'))) {
        const reset = Math.floor(Date.now() / 1000) + 30;
        return json(res, 429, errors({ message: 'too many requests' }), {
          'x-ratelimit-limit': '600',
          'x-ratelimit-remaining': '0',
          'x-ratelimit-reset': String(reset),
        });
      }
      if (recipients.some((r) => r.startsWith('servererror@'))) return json(res, 500, errors({ message: 'internal error' }));

      const messageId = randomBytes(16).toString('base64url');
      fake.accepted.push({ body, messageId });
      res.writeHead(202, { 'x-message-id': messageId }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  fake.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return fake;
}

const display = (a: Address): string => (a.name ? `"${a.name}" <${a.email}>` : a.email);

/** The accepted sends in the testkit's shape, for describeEmailProvider's inbox. */
export function inboxOf(fake: FakeSendGrid): ReceivedEmail[] {
  return fake.accepted.map(({ body, messageId }) => {
    const p = body.personalizations[0]!;
    return {
      from: display(body.from),
      to: p.to.map((a) => a.email),
      cc: (p.cc ?? []).map((a) => a.email),
      bcc: (p.bcc ?? []).map((a) => a.email),
      ...(body.reply_to ? { replyTo: display(body.reply_to) } : {}),
      subject: p.subject ?? body.subject ?? '',
      ...(body.content?.some((c) => c.type === 'text/plain') ? { text: body.content.find((c) => c.type === 'text/plain')!.value } : {}),
      ...(body.content?.some((c) => c.type === 'text/html') ? { html: body.content.find((c) => c.type === 'text/html')!.value } : {}),
      headers: body.headers ?? {},
      attachments: (body.attachments ?? []).map((a) => ({
        filename: a.filename,
        ...(a.type ? { contentType: a.type } : {}),
        content: Buffer.from(a.content, 'base64'),
      })),
      messageId,
    };
  });
}
