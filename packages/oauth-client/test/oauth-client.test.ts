import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { discoveryUrl, endpointUrl, explain, getJson, joinUrl, profileFromClaims } from '../src/index.js';

// The providers' tests run all of this against real servers; these pin the small rules.

describe('profileFromClaims', () => {
  it('maps the standard claims', () => {
    expect(
      profileFromClaims('oidc', {
        sub: 'u1',
        email: 'a@example.com',
        email_verified: true,
        name: ' Ann ',
        picture: 'https://img.example.com/a.png',
      }),
    ).toEqual({
      provider: 'oidc',
      subject: 'u1',
      email: 'a@example.com',
      emailVerified: true,
      name: 'Ann',
      avatarUrl: 'https://img.example.com/a.png',
    });
  });

  it('accepts "true" as verified, nothing else; no email is never verified', () => {
    expect(profileFromClaims('x', { sub: 'u', email: 'a@example.com', email_verified: 'true' }).emailVerified).toBe(true);
    expect(profileFromClaims('x', { sub: 'u', email: 'a@example.com', email_verified: 'yes' }).emailVerified).toBe(false);
    expect(profileFromClaims('x', { sub: 'u', email: 'a@example.com' }).emailVerified).toBe(false);
    expect(profileFromClaims('x', { sub: 'u', email_verified: true })).toEqual({ provider: 'x', subject: 'u', emailVerified: false });
  });

  it('builds a name from given and family name, else preferred_username; drops a non-http picture', () => {
    expect(profileFromClaims('x', { sub: 'u', given_name: 'Bob', family_name: 'Builder' }).name).toBe('Bob Builder');
    expect(profileFromClaims('x', { sub: 'u', preferred_username: 'bob' }).name).toBe('bob');
    expect(profileFromClaims('x', { sub: 'u', picture: 'javascript:alert(1)' }).avatarUrl).toBeUndefined();
  });

  it('refuses claims without a subject', () => {
    expect(() => profileFromClaims('x', { email: 'a@example.com' })).toThrow(/sub/);
  });
});

describe('urls', () => {
  it('puts discovery after the issuer path, with or without a trailing slash', () => {
    expect(discoveryUrl('https://idp.example.com')).toBe('https://idp.example.com/.well-known/openid-configuration');
    expect(discoveryUrl('https://idp.example.com/')).toBe('https://idp.example.com/.well-known/openid-configuration');
    expect(discoveryUrl('https://kc.example.com/realms/acme')).toBe('https://kc.example.com/realms/acme/.well-known/openid-configuration');
    expect(joinUrl('https://ghe.example.com/api/v3/', '/user')).toBe('https://ghe.example.com/api/v3/user');
  });

  it('accepts https, and plain http only to this machine', () => {
    const schema = endpointUrl('an issuer');
    expect(schema.safeParse('https://idp.example.com/realms/acme/').success).toBe(true);
    expect(schema.safeParse('http://127.0.0.1:8080').success).toBe(true);
    expect(schema.safeParse('http://localhost:8080').success).toBe(true);
    expect(schema.safeParse('http://idp.example.com').success).toBe(false);
    expect(schema.safeParse('not a url').success).toBe(false);
  });
});

describe('errors', () => {
  it('names the network reason under "fetch failed" and calls refused connections retryable', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const err = await fetch(`http://127.0.0.1:${port}/`).catch((e: Error) => e);
    expect(explain(err, { where: 'the identity provider', timeoutMs: 1000 })).toEqual({
      message: 'cannot reach the identity provider (ECONNREFUSED)',
      retryable: true,
    });
  });

  it('reads an API error body and marks rate-limit answers retryable', async () => {
    const server = createServer((req, res) => {
      const limited = req.url === '/limited';
      res
        .writeHead(limited ? 403 : 401, { 'content-type': 'application/json', 'x-ratelimit-remaining': limited ? '0' : '10' })
        .end(JSON.stringify({ message: limited ? 'API rate limit exceeded' : 'Bad credentials' }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const opts = {
      signal: AbortSignal.timeout(5000),
      where: 'api',
      timeoutMs: 5000,
      retryableAnswer: (r: Response) => r.headers.get('x-ratelimit-remaining') === '0',
    };
    try {
      const failureOf = (path: string) => getJson(`${base}${path}`, opts).catch((e: { failure: unknown }) => e.failure);
      await expect(failureOf('/user')).resolves.toEqual({ message: 'api answered HTTP 401 (Bad credentials)', status: 401 });
      await expect(failureOf('/limited')).resolves.toEqual({
        message: 'api answered HTTP 403 (API rate limit exceeded)',
        status: 403,
        retryable: true,
      });
    } finally {
      server.close();
    }
  });
});
