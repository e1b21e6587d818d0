import { createHash } from 'node:crypto';
import { once } from 'node:events';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach } from './helpers/cleanup.js';
import { startGateway } from './helpers/gateway.js';
import { listen, readAll } from './helpers/http.js';

const { defer } = cleanupAfterEach();

async function pair(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const up = await listen(handler);
  defer(up.close);
  const gw = await startGateway([{ id: 'r', pathPrefix: '/', upstreamUrl: up.url }]);
  defer(gw.close);
  return { up, gw };
}

/** A deferred whose resolution is an event the test waits on. */
function signal<T = void>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Deterministic bytes: `size` of them in 64 KiB chunks. */
function* pattern(size: number): Generator<Buffer> {
  const chunk = Buffer.alloc(64 * 1024);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 31) & 0xff;
  for (let sent = 0; sent < size; sent += chunk.length) yield chunk.subarray(0, Math.min(chunk.length, size - sent));
}

describe('Forwarder streaming', () => {
  it('streams the response: the client reads the first chunk before the upstream writes the rest', async () => {
    const clientGotFirst = signal();
    const { gw } = await pair((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first|');
      void clientGotFirst.promise.then(() => res.end('rest'));
    });
    const req = http.get(`${gw.url}/stream`, { agent: false });
    const [res] = (await once(req, 'response')) as [IncomingMessage];
    let text = '';
    for await (const chunk of res) {
      text += chunk.toString();
      if (text === 'first|') clientGotFirst.resolve();
    }
    expect(text).toBe('first|rest');
    expect(await gw.result(1)).toMatchObject({ outcome: 'ok', bytesOut: 10 });
  });

  it('streams the request: the upstream reads the first chunk before the client sends the rest', async () => {
    const upstreamGotFirst = signal();
    const { gw } = await pair(async (req, res) => {
      let n = 0;
      for await (const chunk of req) {
        n += (chunk as Buffer).length;
        upstreamGotFirst.resolve();
      }
      res.end(String(n));
    });
    const req = http.request(`${gw.url}/upload`, { method: 'POST', agent: false }); // chunked: no length
    req.write('a'.repeat(1000));
    await upstreamGotFirst.promise;
    req.end('b'.repeat(500));
    const [res] = (await once(req, 'response')) as [IncomingMessage];
    expect((await readAll(res)).toString()).toBe('1500');
    expect(await gw.result(1)).toMatchObject({ outcome: 'ok', bytesIn: 1500, bytesOut: 4 });
  });

  it('relays 32 MiB each way intact, with byte counts', async () => {
    const size = 32 * 1024 * 1024;
    const expected = createHash('sha256');
    for (const c of pattern(size)) expected.update(c);
    const digest = expected.digest('hex');

    const { gw } = await pair(async (req, res) => {
      const h = createHash('sha256');
      let n = 0;
      for await (const c of req) {
        h.update(c as Buffer);
        n += (c as Buffer).length;
      }
      res.writeHead(200, { 'x-received': String(n), 'x-received-sha256': h.digest('hex') });
      for (const c of pattern(size)) if (!res.write(c)) await once(res, 'drain');
      res.end();
    });

    const req = http.request(`${gw.url}/big`, { method: 'PUT', agent: false, headers: { 'content-length': String(size) } });
    for (const c of pattern(size)) if (!req.write(c)) await once(req, 'drain');
    req.end();
    const [res] = (await once(req, 'response')) as [IncomingMessage];
    const h = createHash('sha256');
    let n = 0;
    for await (const c of res) {
      h.update(c as Buffer);
      n += (c as Buffer).length;
    }
    expect(res.headers['x-received']).toBe(String(size));
    expect(res.headers['x-received-sha256']).toBe(digest);
    expect(n).toBe(size);
    expect(h.digest('hex')).toBe(digest);
    expect(await gw.result(1)).toMatchObject({ status: 200, outcome: 'ok', bytesIn: size, bytesOut: size });
  });

  it('cancels the upstream request when the client goes away mid-response', async () => {
    const upstreamClosed = signal();
    const { gw } = await pair((_req, res) => {
      res.once('close', () => upstreamClosed.resolve());
      res.writeHead(200);
      res.write('first chunk'); // and never ends on its own
    });
    const req = http.get(`${gw.url}/forever`, { agent: false });
    const [res] = (await once(req, 'response')) as [IncomingMessage];
    await once(res, 'data');
    req.destroy();
    await upstreamClosed.promise;
    expect(await gw.result(1)).toMatchObject({ status: 499, outcome: 'aborted' });
  });

  it('cancels the upstream request when the client goes away before the answer', async () => {
    const upstreamSawRequest = signal();
    const upstreamClosed = signal();
    const { gw } = await pair((_req, res) => {
      res.once('close', () => upstreamClosed.resolve());
      upstreamSawRequest.resolve();
    });
    const req = http.get(`${gw.url}/slow`, { agent: false });
    req.on('error', () => {});
    await upstreamSawRequest.promise;
    req.destroy();
    await upstreamClosed.promise;
    expect(await gw.result(1)).toMatchObject({ status: 499, outcome: 'aborted' });
  });

  it('cancels the upstream request when the client goes away mid-upload', async () => {
    const upstreamGotFirst = signal();
    const upstreamClosed = signal();
    const { gw } = await pair((req, res) => {
      res.once('close', () => upstreamClosed.resolve());
      req.once('data', () => upstreamGotFirst.resolve());
      req.on('error', () => {});
    });
    const req = http.request(`${gw.url}/upload`, { method: 'POST', agent: false, headers: { 'content-length': '100000' } });
    req.on('error', () => {});
    req.write(Buffer.alloc(1000));
    await upstreamGotFirst.promise;
    req.destroy();
    await upstreamClosed.promise;
    expect(await gw.result(1)).toMatchObject({ status: 499, outcome: 'aborted' });
  });
});
