import { describe, expect, it } from 'vitest';
import type { DomainError } from '../src/index.js';
import { RouteTable } from '../src/proxy/routes.js';
import { DIALECTS, domainStore } from './helpers/domain.js';

const fail = (p: Promise<unknown>) =>
  p.then(
    () => expect.unreachable('should have failed'),
    (e: DomainError) => e,
  );

describe.each(DIALECTS)('%s', (dialect) => {
  describe('routes', () => {
    it('creates routes with normalised prefixes and methods, listed longest prefix first', async () => {
      const { d } = await domainStore({ dialect });
      const a = await d.routes.create({ pathPrefix: '/api/', upstreamUrl: 'http://127.0.0.1:3000/v1', methods: ['get', 'POST', 'get'] });
      expect(a).toMatchObject({
        pathPrefix: '/api',
        upstreamUrl: 'http://127.0.0.1:3000/v1',
        stripPrefix: false,
        methods: ['GET', 'POST'],
        timeoutMs: null,
        enabled: true,
      });
      expect(a.id).toMatch(/^rt_/);
      const b = await d.routes.create({ pathPrefix: '/api/v2', upstreamUrl: 'https://example.com', stripPrefix: true, timeoutMs: 5000 });
      const c = await d.routes.create({ pathPrefix: '/', upstreamUrl: 'http://127.0.0.1:4000', enabled: false });
      expect((await d.routes.list()).map((r) => r.id)).toEqual([b.id, a.id, c.id]);
      expect((await d.routes.list({ enabledOnly: true })).map((r) => r.id)).toEqual([b.id, a.id]);
      expect((await d.routes.resolve('/api/v2/')).id).toBe(b.id);
    });

    it('gives the proxy what its route table takes', async () => {
      const { d } = await domainStore({ dialect });
      await d.routes.create({ pathPrefix: '/weather', upstreamUrl: 'http://127.0.0.1:3000/v1', stripPrefix: true, timeoutMs: 2000 });
      const routes = (await d.routes.list({ enabledOnly: true })).map((r) => ({ ...r, timeoutMs: r.timeoutMs ?? undefined }));
      const match = new RouteTable(routes).match('/weather/today?x=1');
      expect(match).toMatchObject({
        prefix: '/weather',
        origin: 'http://127.0.0.1:3000',
        basePath: '/v1',
        stripPrefix: true,
        timeoutMs: 2000,
      });
    });

    it('refuses bad, reserved and duplicate prefixes and bad upstreams in one line naming the field', async () => {
      const { d } = await domainStore({ dialect });
      await d.routes.create({ pathPrefix: '/api', upstreamUrl: 'http://127.0.0.1:3000' });
      expect(await fail(d.routes.create({ pathPrefix: '/api/', upstreamUrl: 'http://x' }))).toMatchObject({
        code: 'ROUTE_PREFIX_TAKEN',
        kind: 'conflict',
        field: 'path_prefix',
      });
      expect((await fail(d.routes.create({ pathPrefix: 'api', upstreamUrl: 'http://x' }))).message).toBe(
        'route: path_prefix: expected a path starting with / (no query, fragment or spaces), such as /weather',
      );
      expect((await fail(d.routes.create({ pathPrefix: '/admin/x', upstreamUrl: 'http://x' }))).message).toMatch(
        /^route: path_prefix: is reserved for the gateway itself/,
      );
      expect((await fail(d.routes.create({ pathPrefix: '/a//b', upstreamUrl: 'http://x' }))).field).toBe('path_prefix');
      expect((await fail(d.routes.create({ pathPrefix: '/x', upstreamUrl: 'ftp://x' }))).field).toBe('upstream_url');
      expect((await fail(d.routes.create({ pathPrefix: '/x', upstreamUrl: 'http://x/?q=1' }))).field).toBe('upstream_url');
      expect((await fail(d.routes.create({ pathPrefix: '/x', upstreamUrl: 'http://x', methods: ['FETCH'] }))).message).toMatch(
        /^route: methods\.0: expected HTTP methods \(GET, HEAD/,
      );
      expect((await fail(d.routes.create({ pathPrefix: '/x', upstreamUrl: 'http://x', timeoutMs: 0 }))).field).toBe('timeout_ms');
    });

    it('refuses prefixes with dot segments, encoded dots or reserved paths, and upstream URLs with credentials', async () => {
      const { d } = await domainStore({ dialect });
      const prefix = async (pathPrefix: string) => (await fail(d.routes.create({ pathPrefix, upstreamUrl: 'http://x' }))).message;
      expect(await prefix('/a/../admin')).toBe('route: path_prefix: must not contain . or .. segments (plain or as %2e)');
      expect(await prefix('/a/./b')).toMatch(/must not contain \. or \.\. segments/);
      expect(await prefix('/v1/%2e%2E')).toMatch(/must not contain \. or \.\. segments/);
      expect(await prefix('/v1/%2ex')).toBe('route: path_prefix: must write letters, digits and -._~ plainly, not percent-encoded');
      expect(await prefix('/%61dmin')).toMatch(/not percent-encoded/);
      for (const reserved of ['/webhooks', '/webhooks/stripe', '/admin', '/portal/x', '/.well-known']) {
        expect(await prefix(reserved)).toMatch(
          /^route: path_prefix: is reserved for the gateway itself \(\/admin, \/portal, \/\.well-known, \/webhooks\)/,
        );
      }
      const creds = await fail(d.routes.create({ pathPrefix: '/x', upstreamUrl: 'http://user:s3cret@127.0.0.1:3000/v1' }));
      expect(creds).toMatchObject({ field: 'upstream_url', kind: 'invalid' });
      expect(creds.message).toBe(
        'route: upstream_url: must not contain a user name or password (user:pass@); put credentials in a header-injecting upstream instead',
      );
      expect(creds.message).not.toContain('s3cret');
      const r = await d.routes.create({ pathPrefix: '/x', upstreamUrl: 'http://127.0.0.1:3000' });
      expect((await fail(d.routes.update(r.id, { upstreamUrl: 'http://user@127.0.0.1:3000' }))).field).toBe('upstream_url');
      expect((await fail(d.routes.update(r.id, { pathPrefix: '/webhooks' }))).field).toBe('path_prefix');
      // Percent-encoding of anything else stays allowed.
      expect((await d.routes.create({ pathPrefix: '/caf%C3%A9', upstreamUrl: 'http://x' })).pathPrefix).toBe('/caf%C3%A9');
    });

    it('updates and removes routes', async () => {
      const { d } = await domainStore({ dialect });
      const r = await d.routes.create({ pathPrefix: '/api', upstreamUrl: 'http://127.0.0.1:3000' });
      const other = await d.routes.create({ pathPrefix: '/other', upstreamUrl: 'http://127.0.0.1:3000' });
      const up = await d.routes.update(r.id, { upstreamUrl: 'http://127.0.0.1:3001', enabled: false, methods: [], timeoutMs: 100 });
      expect(up).toMatchObject({ pathPrefix: '/api', upstreamUrl: 'http://127.0.0.1:3001', enabled: false, methods: [], timeoutMs: 100 });
      expect((await fail(d.routes.update(r.id, { pathPrefix: '/other' }))).code).toBe('ROUTE_PREFIX_TAKEN');
      await d.routes.update(r.id, { pathPrefix: '/api' }); // its own prefix is not a conflict
      await d.routes.delete(other.id);
      expect((await fail(d.routes.delete(other.id))).kind).toBe('not_found');
      expect((await d.routes.list()).map((x) => x.id)).toEqual([r.id]);
    });
  });
});
