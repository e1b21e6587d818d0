import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { Forwarder } from '../src/proxy/forward.js';
import { compileRoute, RouteTable, upstreamPath } from '../src/proxy/routes.js';
import { cleanupAfterEach } from './helpers/cleanup.js';
import { IDENTITY, startGateway } from './helpers/gateway.js';
import { call, closedPort, listen, readAll } from './helpers/http.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  body: string;
  remotePort: number;
}

const { defer } = cleanupAfterEach();

/** An upstream that records what it received and answers with `reply`. */
async function upstream(reply: (req: IncomingMessage, res: ServerResponse, seen: Seen) => void = (_q, res) => res.end('ok')) {
  const seen: Seen[] = [];
  const srv = await listen(async (req, res) => {
    const body = (await readAll(req)).toString();
    const s = {
      method: req.method!,
      url: req.url!,
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      body,
      remotePort: req.socket.remotePort!,
    };
    seen.push(s);
    reply(req, res, s);
  });
  defer(srv.close);
  return { ...srv, seen };
}

async function gateway(...args: Parameters<typeof startGateway>) {
  const gw = await startGateway(...args);
  defer(gw.close);
  return gw;
}

describe('routes', () => {
  it('matches the longest prefix on segment boundaries', () => {
    const table = new RouteTable([
      { id: 'root', pathPrefix: '/', upstreamUrl: 'http://a' },
      { id: 'api', pathPrefix: '/api', upstreamUrl: 'http://b' },
      { id: 'v2', pathPrefix: '/api/v2/', upstreamUrl: 'http://c' },
    ]);
    expect(table.match('/api/v2/x?q=1')?.id).toBe('v2');
    expect(table.match('/api/v2')?.id).toBe('v2');
    expect(table.match('/api?x')?.id).toBe('api');
    expect(table.match('/apix')?.id).toBe('root');
    expect(new RouteTable([{ id: 'api', pathPrefix: '/api', upstreamUrl: 'http://b' }]).match('/apix')).toBeUndefined();
  });

  it('strips the prefix and prepends the upstream path', () => {
    const r = compileRoute({ id: 'w', pathPrefix: '/weather/', upstreamUrl: 'http://up:81/v1/', stripPrefix: true });
    expect(r.origin).toBe('http://up:81');
    expect(upstreamPath(r, '/weather/today?city=Oslo')).toBe('/v1/today?city=Oslo');
    expect(upstreamPath(r, '/weather?city=Oslo')).toBe('/v1/?city=Oslo');
    const keep = compileRoute({ id: 'k', pathPrefix: '/weather', upstreamUrl: 'http://up' });
    expect(upstreamPath(keep, '/weather/today')).toBe('/weather/today');
  });

  it('rejects a route it cannot forward with one line naming the route', () => {
    expect(() => compileRoute({ id: 'bad', pathPrefix: '/x', upstreamUrl: 'ftp://up' })).toThrow(
      'route bad: upstream URL must be http or https, got ftp:',
    );
    expect(() => compileRoute({ id: 'bad', pathPrefix: 'x', upstreamUrl: 'http://up' })).toThrow('must start with "/"');
    expect(() => compileRoute({ id: 'bad', pathPrefix: '/x', upstreamUrl: 'not a url' })).toThrow('is not a valid URL');
  });
});

describe('Forwarder', () => {
  it('forwards method, path, query and body, with hop-by-hop headers stripped and identity injected', async () => {
    const up = await upstream((_req, res) => {
      res.setHeader('Set-Cookie', ['a=1', 'b=2']);
      res.setHeader('X-Upstream', 'yes');
      res.setHeader('Connection', 'X-Up-Hop');
      res.setHeader('X-Up-Hop', 'must not pass');
      res.setHeader('Keep-Alive', 'timeout=99');
      res.setHeader('Proxy-Authenticate', 'Basic realm="up"');
      res.setHeader('Trailer', 'X-Checksum');
      res.statusCode = 201;
      res.write('created');
      res.addTrailers({ 'X-Checksum': 'abc' });
      res.end();
    });
    const gw = await gateway([{ id: 'r1', pathPrefix: '/api', upstreamUrl: `${up.url}/base`, stripPrefix: true }]);

    const answer = await call(`${gw.url}/api/items?limit=5`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        connection: 'keep-alive, X-Client-Hop',
        'x-client-hop': 'must not pass',
        'keep-alive': 'timeout=30',
        te: 'trailers',
        upgrade: 'websocket',
        'proxy-authorization': 'Basic c2VjcmV0',
        'x-user-id': 'forged-user',
        'X-Plan-ID': 'forged-plan',
        'x-key-id': 'forged-key',
        'x-forwarded-for': '203.0.113.7',
        'x-forwarded-proto': 'https',
        'x-forwarded-host': 'evil.example',
        'x-custom': 'kept',
      },
      body: '{"n":1}',
    });

    expect(answer.status).toBe(201);
    expect(answer.body.toString()).toBe('created');
    expect(answer.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    expect(answer.headers['x-upstream']).toBe('yes');
    expect(answer.headers['x-up-hop']).toBeUndefined();
    expect(answer.headers['proxy-authenticate']).toBeUndefined();
    expect(answer.headers.trailer).toBeUndefined();
    expect(answer.headers['keep-alive']).not.toBe('timeout=99');

    const seen = up.seen[0]!;
    expect(seen.method).toBe('POST');
    expect(seen.url).toBe('/base/items?limit=5');
    expect(seen.body).toBe('{"n":1}');
    expect(seen.headers['content-type']).toBe('application/json');
    expect(seen.headers['x-custom']).toBe('kept');
    expect(seen.headers.host).toBe(`127.0.0.1:${up.port}`);
    for (const gone of ['x-client-hop', 'te', 'upgrade', 'proxy-authorization']) expect(seen.headers[gone]).toBeUndefined();
    expect(seen.headers['keep-alive']).not.toBe('timeout=30');
    // Exactly one copy each, and the gateway's value.
    const count = (name: string) => seen.rawHeaders.filter((h, i) => i % 2 === 0 && h.toLowerCase() === name).length;
    for (const name of ['x-user-id', 'x-plan-id', 'x-key-id', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host'])
      expect(count(name)).toBe(1);
    expect(seen.headers['x-user-id']).toBe(IDENTITY.userId);
    expect(seen.headers['x-plan-id']).toBe(IDENTITY.planId);
    expect(seen.headers['x-key-id']).toBe(IDENTITY.keyId);
    expect(seen.headers['x-forwarded-for']).toBe('203.0.113.7, 127.0.0.1');
    expect(seen.headers['x-forwarded-proto']).toBe('http');
    expect(seen.headers['x-forwarded-host']).toBe(new URL(gw.url).host);

    const result = await gw.result(1);
    expect(result).toMatchObject({ status: 201, outcome: 'ok', bytesIn: 7, bytesOut: 7 });
    expect(result.latencyMs).toBeGreaterThan(0);
    // The gateway's own share: part of the latency, never all of it (the upstream's wait is left out).
    expect(result.overheadMs).toBeGreaterThan(0);
    expect(result.overheadMs).toBeLessThan(result.latencyMs);
  });

  it('keeps forwarded proto and host from a trusted proxy in front', async () => {
    const up = await upstream();
    const gw = await gateway([{ id: 'r', pathPrefix: '/', upstreamUrl: up.url }], { forwarder: { trustProxy: true } });
    await call(`${gw.url}/`, { headers: { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'api.example.com' } });
    expect(up.seen[0]!.headers['x-forwarded-proto']).toBe('https');
    expect(up.seen[0]!.headers['x-forwarded-host']).toBe('api.example.com');
  });

  it('lets headers the gateway set win over the upstream copies', async () => {
    const up = await upstream((_q, res) => {
      res.setHeader('X-RateLimit-Limit', '999');
      res.end('ok');
    });
    const gw = await gateway([{ id: 'r', pathPrefix: '/', upstreamUrl: up.url }], {
      before: (res) => res.setHeader('X-RateLimit-Limit', '10'),
    });
    const answer = await call(`${gw.url}/x`);
    expect(answer.headers['x-ratelimit-limit']).toBe('10');
  });

  it('puts the headers of the forward options on the upstream answer (winning over its copies) and on the gateway own 502', async () => {
    const up = await upstream((_q, res) => {
      res.setHeader('X-RateLimit-Limit', '999');
      res.setHeader('X-Other', 'kept');
      res.end('ok');
    });
    const headers = { 'x-ratelimit-limit': '10', 'x-ratelimit-remaining': '9' };
    const gw = await gateway([{ id: 'r', pathPrefix: '/', upstreamUrl: up.url }], { forward: { headers } });
    const answer = await call(`${gw.url}/x`);
    expect(answer.headers).toMatchObject({ 'x-ratelimit-limit': '10', 'x-ratelimit-remaining': '9', 'x-other': 'kept' });
    expect(answer.body.toString()).toBe('ok');

    const down = await gateway([{ id: 'r', pathPrefix: '/', upstreamUrl: `http://127.0.0.1:${await closedPort()}` }], {
      forward: { headers },
    });
    const failed = await call(`${down.url}/x`);
    expect(failed.status).toBe(502);
    expect(failed.headers).toMatchObject({ 'x-ratelimit-limit': '10', 'x-ratelimit-remaining': '9' });
  });

  it('reuses keep-alive connections to the upstream', async () => {
    const up = await upstream();
    const gw = await gateway([{ id: 'r', pathPrefix: '/', upstreamUrl: up.url }]);
    await call(`${gw.url}/one`);
    await call(`${gw.url}/two`);
    expect(up.seen).toHaveLength(2);
    expect(up.seen[1]!.remotePort).toBe(up.seen[0]!.remotePort);
    expect(Object.keys(gw.forwarder.stats())).toEqual([up.url]);
  });

  it('passes HEAD and 204 answers through without a body', async () => {
    const up = await upstream((req, res) => {
      if (req.method === 'HEAD') {
        res.writeHead(200, { 'content-length': '1234', 'content-type': 'text/plain' });
        return res.end();
      }
      res.writeHead(204).end();
    });
    const gw = await gateway([{ id: 'r', pathPrefix: '/', upstreamUrl: up.url }]);
    const head = await call(`${gw.url}/file`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe('1234');
    expect(head.body.length).toBe(0);
    const empty = await call(`${gw.url}/thing`, { method: 'DELETE' });
    expect(empty.status).toBe(204);
    expect(empty.body.length).toBe(0);
  });

  it('answers 405 with Allow for a method the route does not accept, without calling the upstream', async () => {
    const up = await upstream();
    const gw = await gateway([{ id: 'ro', pathPrefix: '/', upstreamUrl: up.url, methods: ['get', 'HEAD'] }]);
    const answer = await call(`${gw.url}/x`, { method: 'DELETE' });
    expect(answer.status).toBe(405);
    expect(answer.headers.allow).toBe('GET, HEAD');
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(answer.body.toString())).toEqual({
      error: { code: 'METHOD_NOT_ALLOWED', message: 'DELETE is not allowed on this route' },
    });
    expect(up.seen).toHaveLength(0);
    expect((await gw.result(1)).outcome).toBe('method_not_allowed');
    expect((await call(`${gw.url}/x`)).status).toBe(200);
  });

  it('answers 504 JSON when the upstream does not answer within the route timeout', async () => {
    const held: ServerResponse[] = [];
    const up = await listen((_req, res) => {
      held.push(res); // never answers
    });
    defer(up.close);
    const gw = await gateway([{ id: 'slow', pathPrefix: '/', upstreamUrl: up.url, timeoutMs: 300 }]);
    const answer = await call(`${gw.url}/slow`);
    expect(answer.status).toBe(504);
    expect(JSON.parse(answer.body.toString())).toEqual({
      error: { code: 'UPSTREAM_TIMEOUT', message: 'the upstream did not answer within 300 ms' },
    });
    expect(await gw.result(1)).toMatchObject({ status: 504, outcome: 'timeout' });
    expect(held).toHaveLength(1);
  });

  it('answers 502 JSON when the upstream refuses the connection', async () => {
    const port = await closedPort();
    const gw = await gateway([{ id: 'down', pathPrefix: '/', upstreamUrl: `http://127.0.0.1:${port}` }]);
    const answer = await call(`${gw.url}/x`, { method: 'POST', body: 'payload' });
    expect(answer.status).toBe(502);
    expect(JSON.parse(answer.body.toString())).toEqual({
      error: { code: 'UPSTREAM_UNAVAILABLE', message: 'the upstream refused the connection' },
    });
    expect(await gw.result(1)).toMatchObject({ status: 502, outcome: 'unavailable' });
  });

  it('answers 502 JSON when the upstream drops the connection before answering', async () => {
    const up = await listen((req) => {
      req.socket.destroy();
    });
    defer(up.close);
    const gw = await gateway([{ id: 'rude', pathPrefix: '/', upstreamUrl: up.url }]);
    const answer = await call(`${gw.url}/x`, { method: 'PUT', body: 'x' });
    expect(answer.status).toBe(502);
    expect(JSON.parse(answer.body.toString()).error.code).toBe('UPSTREAM_UNAVAILABLE');
  });

  it('cuts the client connection when the upstream fails mid-body', async () => {
    const up = await listen((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial');
      setImmediate(() => res.socket?.destroy());
    });
    defer(up.close);
    const gw = await gateway([{ id: 'r', pathPrefix: '/', upstreamUrl: up.url }]);
    await expect(call(`${gw.url}/x`)).rejects.toThrow(/aborted|socket hang up|ECONNRESET/);
    // The client saw 200, then a cut body: metered as the upstream failure it was (502), not a success.
    expect(await gw.result(1)).toMatchObject({ status: 502, outcome: 'upstream_error', bytesOut: 7 });
  });

  it('answers 503 once closed instead of opening new pools', async () => {
    const up = await upstream();
    const gw = await gateway([{ id: 'r', pathPrefix: '/', upstreamUrl: up.url }]);
    await gw.forwarder.close();
    await gw.forwarder.close();
    const answer = await call(`${gw.url}/x`);
    expect(answer.status).toBe(503);
    expect(up.seen).toHaveLength(0);
  });

  it('sends no identity headers when none are given, and still strips client copies', async () => {
    const up = await upstream();
    const srv = await listen((req, res) => {
      const route = compileRoute({ id: 'anon', pathPrefix: '/', upstreamUrl: up.url });
      void gwForwarder.forward(req, res, route);
    });
    const gwForwarder = new Forwarder();
    defer(async () => {
      await srv.close();
      await gwForwarder.close();
    });
    await call(`${srv.url}/`, { headers: { 'x-user-id': 'forged' } });
    expect(up.seen[0]!.headers['x-user-id']).toBeUndefined();
  });
});
