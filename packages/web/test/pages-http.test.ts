import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, type Site, startSite } from './harness.js';

/** A tiny cookie jar: the cookies a browser would send back (name=value only). */
function jar() {
  const cookies = new Map<string, string>();
  return {
    header: () => [...cookies].map(([k, v]) => `${k}=${v}`).join('; '),
    take(res: Response) {
      for (const sc of res.headers.getSetCookie()) {
        const [pair] = sc.split(';');
        const i = pair!.indexOf('=');
        const value = pair!.slice(i + 1);
        if (/max-age=0/i.test(sc) || value === '') cookies.delete(pair!.slice(0, i));
        else cookies.set(pair!.slice(0, i), value);
      }
    },
    get: (name: string) => cookies.get(name),
  };
}

const csrfIn = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)?.[1];

let site: Site;
beforeAll(async () => {
  site = await startSite();
});
afterAll(async () => {
  await site?.close();
});

describe('pages over HTTP (no browser)', () => {
  it('serves the assets under hashed names with a year of caching, and 404s unknown ones', async () => {
    const html = await (await fetch(`${site.url}/portal/login`)).text();
    const css = /href="(\/portal\/assets\/app\.[0-9a-f]{12}\.css)"/.exec(html)?.[1];
    const js = /src="(\/portal\/assets\/app\.[0-9a-f]{12}\.js)"/.exec(html)?.[1];
    expect(css && js).toBeTruthy();
    const res = await fetch(`${site.url}${js}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(res.headers.get('content-type')).toContain('text/javascript');
    const usage = await (await fetch(`${site.url}/portal/usage`, { redirect: 'manual' })).status;
    expect(usage).toBe(303);
    expect((await fetch(`${site.url}/portal/assets/app.000000000000.js`)).status).toBe(404);
  });

  it('refuses a form post without the CSRF token, and one with a token from another browser', async () => {
    const a = jar();
    const page = await fetch(`${site.url}/portal/login`);
    a.take(page);
    const token = csrfIn(await page.text())!;
    expect(token).toBeTruthy();
    const post = (cookie: string, body: Record<string, string>) =>
      fetch(`${site.url}/portal/login`, { method: 'POST', redirect: 'manual', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(body) });
    expect((await post(a.header(), { email: 'x@example.com', password: 'whatever1' })).status).toBe(403);
    expect((await post('apigate_csrf=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', { _csrf: token, email: 'x@example.com', password: 'whatever1' })).status).toBe(403);
    // With the matching pair the API answers: wrong credentials (401), shown on the page.
    const wrong = await post(a.header(), { _csrf: token, email: 'x@example.com', password: 'whatever1' });
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).toContain('the email address or the password is not right');
  });

  it('keeps /admin/health and the admin JSON API working next to the dashboard', async () => {
    expect((await fetch(`${site.url}/admin/health`)).status).toBe(200);
    const api = await fetch(`${site.url}/admin/plans`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(api.status).toBe(200);
    expect(((await api.json()) as { data: { name: string }[] }).data.map((p: { name: string }) => p.name)).toEqual(['Free', 'Pro']);
    expect((await fetch(`${site.url}/admin/plans`)).status).toBe(401);
    // The dashboard without a session goes to the sign-in page.
    const dash = await fetch(`${site.url}/admin/ui/users`, { redirect: 'manual' });
    expect(dash.status).toBe(303);
    expect(dash.headers.get('location')).toBe('/admin/ui/login');
  });

  it('admin sign-in: a wrong token is refused; the right one gives an httpOnly, SameSite=Strict session that sign-out revokes', async () => {
    const a = jar();
    const login = await fetch(`${site.url}/admin/ui/login`);
    a.take(login);
    const token = csrfIn(await login.text())!;
    const post = (t: string) =>
      fetch(`${site.url}/admin/ui/login`, { method: 'POST', redirect: 'manual', headers: { cookie: a.header(), 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ _csrf: token, token: t }) });
    expect((await post('not-the-admin-token-at-all')).status).toBe(401);
    const ok = await post(ADMIN_TOKEN);
    expect(ok.status).toBe(303);
    const cookie = ok.headers.getSetCookie().find((c) => c.startsWith('apigate_admin='))!;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).toMatch(/Path=\/admin/);
    a.take(ok);
    const overview = await fetch(`${site.url}/admin`, { headers: { cookie: a.header() } });
    expect(overview.status).toBe(200);
    const html = await overview.text();
    expect(html).toContain('Requests per minute');
    // A POST without the session's CSRF token changes nothing.
    const user = await site.store.domain.users.create({ email: 'csrf@example.com' });
    const forged = await fetch(`${site.url}/admin/ui/users/${user.id}/suspend`, { method: 'POST', redirect: 'manual', headers: { cookie: a.header(), 'content-type': 'application/x-www-form-urlencoded' }, body: '' });
    expect(forged.status).toBe(303);
    expect((await site.store.domain.users.get(user.id)).status).toBe('active');
    // Sign out revokes the session's token: the old cookie no longer opens the dashboard.
    const old = a.header();
    const out = await fetch(`${site.url}/admin/ui/logout`, { method: 'POST', redirect: 'manual', headers: { cookie: old, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ _csrf: csrfIn(html)! }) });
    expect(out.status).toBe(303);
    expect((await fetch(`${site.url}/admin`, { redirect: 'manual', headers: { cookie: old } })).status).toBe(303);
  });

  it('sends the browser that opens the emailed confirmation link to the page, and scripts to the JSON API', async () => {
    const html = await fetch(`${site.url}/portal/api/verify-email?token=abc`, { redirect: 'manual', headers: { accept: 'text/html' } });
    expect(html.status).toBe(303);
    expect(html.headers.get('location')).toBe('/portal/verify-email?token=abc');
    const json = await fetch(`${site.url}/portal/api/verify-email?token=abc`, { headers: { accept: 'application/json' } });
    expect(json.status).toBe(400);
  });
});
