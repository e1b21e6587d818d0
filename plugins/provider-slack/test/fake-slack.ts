import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SlackPost {
  path: string;
  headers: IncomingHttpHeaders;
  /** The JSON payload as posted. */
  body: Record<string, any>;
}

export interface FakeSlack {
  origin: string;
  /** Webhook URLs that answer like Slack does in each case. */
  urls: { ok: string; gone: string; revoked: string; rateLimited: string; broken: string; held: string };
  /** Successful posts only, as Slack would have shown them. */
  posts: SlackPost[];
  /** Every request, any method or outcome. */
  requests: { method: string; path: string }[];
  /** Called when a request to the `held` URL arrives (it is never answered). */
  onHeld?: () => void;
  close(): Promise<void>;
}

/**
 * Stands in for hooks.slack.com: POST to a webhook path answers as Slack does: 200 `ok`,
 * 404 `no_service`, 403 `invalid_token`, 429 `rate_limited` with Retry-After, 500. Other methods
 * get 405 (nothing is posted). Payloads without text or blocks get 400 `no_text`.
 */
export async function startFakeSlack(): Promise<FakeSlack> {
  const base = '/services/T0APIGATE/B0TEST';
  const fake: FakeSlack = {
    origin: '',
    urls: { ok: '', gone: '', revoked: '', rateLimited: '', broken: '', held: '' },
    posts: [],
    requests: [],
    close: async () => {},
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '';
      fake.requests.push({ method: req.method ?? '', path });
      const text = (status: number, body: string, headers: Record<string, string> = {}) =>
        res.writeHead(status, { 'content-type': 'text/html', ...headers }).end(body);
      if (req.method !== 'POST') return text(405, '');
      const secret = path.slice(base.length + 1);
      if (!path.startsWith(`${base}/`)) return text(404, 'no_service');
      if (secret === 'held') return fake.onHeld?.();
      if (secret === 'gone') return text(404, 'no_service');
      if (secret === 'revoked') return text(403, 'invalid_token');
      if (secret === 'ratelimited') return text(429, 'rate_limited', { 'retry-after': '30' });
      if (secret === 'broken') return text(500, 'internal_error');
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, any>;
      if (!body.text && !body.blocks) return text(400, 'no_text');
      fake.posts.push({ path, headers: req.headers, body });
      text(200, 'ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const url = (secret: string) => `${fake.origin}${base}/${secret}`;
  fake.urls = {
    ok: url('x0Secret0Token0ok'),
    gone: url('gone'),
    revoked: url('revoked'),
    rateLimited: url('ratelimited'),
    broken: url('broken'),
    held: url('held'),
  };
  fake.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return fake;
}
