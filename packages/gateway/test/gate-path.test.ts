import http, { type IncomingMessage } from 'node:http';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { normalizeTarget } from '../src/proxy/path.js';
import { cleanupAfterEach } from './helpers/cleanup.js';
import { customer, startGate } from './helpers/gate.js';
import { listen } from './helpers/http.js';

const { defer, use } = cleanupAfterEach();

/**
 * An upstream that resolves dot segments the way express, nginx and most frameworks do (WHATWG URL
 * parsing: `..`, `%2e%2e` and `\` all count), and serves a public and a private tree.
 */
async function normalisingUpstream() {
  const seen: string[] = [];
  const up = await listen((req, res) => {
    seen.push(req.url!);
    const path = new URL(req.url!, 'http://upstream').pathname;
    const body = path.startsWith('/private/') ? 'TOP SECRET' : path.startsWith('/public/') ? `public ${path}` : 'other';
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(body);
  });
  return { ...up, seen };
}

/** A request with the path sent exactly as written (node's URL parsing would resolve the dots first). */
async function raw(base: string, path: string, key: string): Promise<{ status: number; body: string }> {
  const u = new URL(base);
  const req = http.request({ host: u.hostname, port: u.port, path, headers: { 'x-api-key': key }, agent: false });
  req.end();
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  let body = '';
  for await (const c of res) body += c;
  return { status: res.statusCode!, body };
}

describe('request paths are normalised before routing', () => {
  it('never lets /v1/../private (in any spelling) reach the private tree of a normalising upstream', async () => {
    const upstream = await use(normalisingUpstream());
    const gate = await startGate({ gateway: { pollIntervalMs: 50 } });
    defer(() => gate.stop());
    const { key } = await customer(gate.store, `${upstream.url}/public`);
    await gate.store.domain.routes.create({ pathPrefix: '/v1', upstreamUrl: `${upstream.url}/public`, stripPrefix: true });
    await gate.gateway.catalog.settled();

    const ok = await raw(gate.url, '/v1/docs/a?x=1', key);
    expect(ok).toEqual({ status: 200, body: 'public /public/docs/a' });
    // Dot segments that stay under the prefix are resolved here, so the upstream gets a clean path.
    expect(await raw(gate.url, '/v1/docs/./b/../c', key)).toEqual({ status: 200, body: 'public /public/docs/c' });
    expect(await raw(gate.url, '/v1//docs//d', key)).toEqual({ status: 200, body: 'public /public/docs/d' });

    const attacks = [
      '/v1/../private/secret',
      '/v1/%2e%2e/private/secret',
      '/v1/%2E%2e/private/secret',
      '/v1/.%2e/private/secret',
      '/v1/..',
      '/v1/docs/../../private/secret',
      '/v1//../private/secret',
      '/v1/..%2fprivate/secret',
      '/v1/..%2Fprivate%2Fsecret',
      '/v1/%2e%2e%5cprivate%5csecret',
      '/v1\\..\\private\\secret',
      '/v1/..\\private/secret',
      '/../private/secret',
      '/v1/../admin/users',
      '//admin/users',
    ];
    for (const path of attacks) {
      const res = await raw(gate.url, path, key);
      expect(res.status, path).toBe(400);
      expect(JSON.parse(res.body).error.code, path).toBe('PATH_INVALID');
    }
    expect(upstream.seen).toEqual(['/public/docs/a?x=1', '/public/docs/c', '/public/docs/d']);
  });

  it('normalises targets by RFC 3986 rules, keeping encoded slashes inside their segment', () => {
    expect(normalizeTarget('/a/b?x=/../y')).toEqual({ ok: true, target: '/a/b?x=/../y', path: '/a/b' });
    expect(normalizeTarget('/a/./b/../c/')).toEqual({ ok: true, target: '/a/c/', path: '/a/c/', lexical: '/a/./b/../c/' });
    expect(normalizeTarget('/a/b/..')).toMatchObject({ ok: true, path: '/a/' });
    expect(normalizeTarget('/a/%2E/b')).toMatchObject({ ok: true, path: '/a/b', lexical: '/a/./b' });
    expect(normalizeTarget('/a%2Fb/c')).toEqual({ ok: true, target: '/a%2Fb/c', path: '/a%2Fb/c' });
    expect(normalizeTarget('/..')).toEqual({ ok: false, reason: 'the path climbs above the root' });
    expect(normalizeTarget('/a/%zz')).toEqual({ ok: false, reason: 'the path has malformed percent-encoding' });
    expect(normalizeTarget('http://evil/x')).toMatchObject({ ok: false });
  });
});
