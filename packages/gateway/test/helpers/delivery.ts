import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type WebhookNotificationPayload, verifyWebhookSignature } from '@apigate/provider-webhook-notification';
import { type AddressObject, simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import type { DeliveryOutcome, DeliveryWorkers } from '../../src/delivery/index.js';

export interface ReceivedMail {
  from: string;
  to: string[];
  subject: string;
  text?: string;
  html?: string;
  headers: Record<string, string>;
  attachments: { filename: string; contentType: string; content: Buffer }[];
}

const addresses = (a: AddressObject | AddressObject[] | undefined): string[] =>
  (Array.isArray(a) ? a : a ? [a] : []).flatMap((o) => o.value.map((v) => v.address ?? '').filter(Boolean));

/**
 * A real SMTP server (smtp-server, plain SMTP, no AUTH) on `port` (0: a free one). Every message
 * is parsed with mailparser into `messages`. RCPT to `unknown@…` gets 550 (permanent). `stop()`
 * closes the port and drops open connections at once (421), as a server going down would.
 */
export async function startSmtp(port = 0, messages: ReceivedMail[] = []) {
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    closeTimeout: 50,
    onRcptTo(address, _session, cb) {
      if (address.address.startsWith('unknown@')) return cb(Object.assign(new Error('No such user here'), { responseCode: 550 }));
      cb();
    },
    onData(stream, _session, cb) {
      simpleParser(stream).then(
        (p) => {
          messages.push({
            from: p.from?.text ?? '',
            to: addresses(p.to),
            subject: p.subject ?? '',
            ...(p.text !== undefined ? { text: p.text } : {}),
            ...(typeof p.html === 'string' ? { html: p.html } : {}),
            headers: Object.fromEntries(p.headerLines.map(({ key, line }) => [key, line.slice(line.indexOf(':') + 1).trim()])),
            attachments: p.attachments.map((a) => ({ filename: a.filename ?? '', contentType: a.contentType, content: a.content })),
          });
          cb();
        },
        (err: Error) => cb(err),
      );
    },
  });
  server.listen(port, '127.0.0.1');
  await once(server.server, 'listening');
  return {
    port: (server.server.address() as AddressInfo).port,
    messages,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export interface WebhookReceiver {
  port: number;
  url: string;
  /** Verified deliveries, in arrival order. */
  deliveries: WebhookNotificationPayload[];
  /** Requests answered so far (including refused ones). */
  requests: number;
  /** The status every request gets from now on (200 by default). */
  answer: number;
  stop(): Promise<void>;
}

/**
 * A webhook receiver on `port` (0: a free one) that checks each delivery with the provider's
 * own verifier (signature over timestamp and body) and keeps the verified payloads.
 */
export async function startReceiver(secret: string, port = 0, keep: WebhookNotificationPayload[] = []): Promise<WebhookReceiver> {
  const r: WebhookReceiver = { port, url: '', deliveries: keep, requests: 0, answer: 200, stop: async () => {} };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      r.requests++;
      if (r.answer !== 200) {
        res.writeHead(r.answer, { 'content-type': 'application/json' }).end('{"error":"refused on purpose"}');
        return;
      }
      try {
        r.deliveries.push(verifyWebhookSignature({ rawBody: Buffer.concat(chunks), headers: req.headers, secret }));
        res.writeHead(200).end('ok');
      } catch (err) {
        res.writeHead(400).end((err as Error).message);
      }
    });
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  r.port = (server.address() as AddressInfo).port;
  r.url = `http://127.0.0.1:${r.port}/hook`;
  r.stop = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return r;
}

/** Every outcome the workers report, with a promise for the first one matching a predicate. */
export function recordOutcomes(workers: DeliveryWorkers) {
  const seen: DeliveryOutcome[] = [];
  const waiters: { pred: (o: DeliveryOutcome[]) => boolean; resolve: () => void }[] = [];
  workers.outcomes.on('outcome', (o) => {
    seen.push(o);
    for (const w of [...waiters]) {
      if (w.pred(seen)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  });
  return {
    seen,
    /** Resolves once `pred(all outcomes so far)` holds (the test's timeout bounds the wait). */
    until: (pred: (o: DeliveryOutcome[]) => boolean) =>
      new Promise<void>((resolve) => {
        if (pred(seen)) resolve();
        else waiters.push({ pred, resolve });
      }),
  };
}

/** How many times each id occurs. */
export function countBy<T>(items: readonly T[], key: (t: T) => string): Map<string, number> {
  const m = new Map<string, number>();
  for (const i of items) m.set(key(i), (m.get(key(i)) ?? 0) + 1);
  return m;
}
