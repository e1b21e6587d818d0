import { openCheckout } from '@apigate/provider-testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, eventually, type Site, startSite } from './harness.js';

/** A tiny cookie jar: the cookies a browser would send back (name=value only). */
function jar() {
  const cookies = new Map<string, string>();
  const header = () => [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  const take = (res: Response) => {
    for (const sc of res.headers.getSetCookie()) {
      const [pair] = sc.split(';');
      const i = pair!.indexOf('=');
      const value = pair!.slice(i + 1);
      if (/max-age=0/i.test(sc) || value === '') cookies.delete(pair!.slice(0, i));
      else cookies.set(pair!.slice(0, i), value);
    }
  };
  return {
    header,
    take,
    get: (name: string) => cookies.get(name),
    /** Posts a form to `path` with the jar's cookies, without following a redirect, and keeps the cookies it sets. */
    async post(path: string, body: Record<string, string>): Promise<Response> {
      const res = await fetch(`${site.url}${path}`, {
        method: 'POST',
        redirect: 'manual',
        headers: { cookie: header(), 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(body),
      });
      take(res);
      return res;
    },
  };
}
type Jar = ReturnType<typeof jar>;

const csrfIn = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)?.[1];

/** A portal user who signed up and confirmed their email, with `password`. */
async function verifiedUser(email: string, password: string) {
  const { hashPassword } = await import('@apigate/gateway');
  return site.store.domain.users.create({ email, emailVerified: true, passwordHash: await hashPassword(password, { ln: 12, r: 8, p: 1 }) });
}

/** Opens the portal's sign-in page in `a` and posts its form; returns the answer (303 when signed in). */
async function portalSignIn(a: Jar, email: string, password: string): Promise<Response> {
  const login = await fetch(`${site.url}/portal/login`);
  a.take(login);
  return a.post('/portal/login', { _csrf: csrfIn(await login.text())!, email, password });
}

/** Signs `a` in to the admin UI with the admin token. */
async function adminSignIn(a: Jar): Promise<void> {
  const login = await fetch(`${site.url}/admin/ui/login`);
  a.take(login);
  await a.post('/admin/ui/login', { _csrf: csrfIn(await login.text())!, token: ADMIN_TOKEN });
}

let site: Site;
beforeAll(async () => {
  site = await startSite();
  // The keys are listed when the settings page first needs them, not when the pages are mounted.
  expect(site.settingKeyLoads.count).toBe(0);
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
      fetch(`${site.url}/portal/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(body),
      });
    expect((await post(a.header(), { email: 'x@example.com', password: 'whatever1' })).status).toBe(403);
    expect(
      (
        await post('apigate_csrf=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', {
          _csrf: token,
          email: 'x@example.com',
          password: 'whatever1',
        })
      ).status,
    ).toBe(403);
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
      fetch(`${site.url}/admin/ui/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { cookie: a.header(), 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ _csrf: token, token: t }),
      });
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
    const forged = await fetch(`${site.url}/admin/ui/users/${user.id}/suspend`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: a.header(), 'content-type': 'application/x-www-form-urlencoded' },
      body: '',
    });
    expect(forged.status).toBe(303);
    expect((await site.store.domain.users.get(user.id)).status).toBe('active');
    // Sign out revokes the session's token: the old cookie no longer opens the dashboard.
    const old = a.header();
    const out = await fetch(`${site.url}/admin/ui/logout`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: old, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ _csrf: csrfIn(html)! }),
    });
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

describe('admin pages over HTTP', () => {
  /** A signed-in admin: the session cookie and the page's CSRF token. */
  async function signedIn() {
    const a = jar();
    await adminSignIn(a);
    const csrf = csrfIn(await (await fetch(`${site.url}/admin`, { headers: { cookie: a.header() } })).text())!;
    const get = async (p: string) => {
      const res = await fetch(`${site.url}${p}`, { headers: { cookie: a.header() } });
      a.take(res);
      return res;
    };
    const post = (p: string, body: Record<string, string>) => a.post(p, { _csrf: csrf, ...body });
    return { get, post };
  }

  it('sets a secret setting, shows it masked only, and refuses unknown keys and bad values with their reason', async () => {
    const s = await signedIn();
    const loadsBefore = site.settingKeyLoads.count;
    const secret = 'whsec-dashboard-0123456789abcdef';
    expect((await s.post('/admin/ui/settings', { key: 'payment.dummy.webhook_secret', value: secret })).status).toBe(303);
    const page = await (await s.get('/admin/ui/settings')).text();
    expect(page).toContain('Set payment.dummy.webhook_secret = whse…cdef.');
    expect(page).not.toContain(secret);
    expect(site.store.settings.list().find((e) => e.key === 'payment.dummy.webhook_secret')).toMatchObject({ secret: true, value: secret });
    await s.post('/admin/ui/settings', { key: 'payment.dummy.nope', value: 'x' });
    expect(await (await s.get('/admin/ui/settings')).text()).toContain('unknown setting &quot;payment.dummy.nope&quot;');
    await s.post('/admin/ui/settings', { key: 'delivery.attempts', value: 'many' });
    expect(await (await s.get('/admin/ui/settings')).text()).toMatch(/delivery\.attempts: /);
    expect(site.store.settings.get('delivery.attempts')).toBeUndefined();
    // Listed once (here, or by an earlier visit), however often the page is used.
    expect(site.settingKeyLoads.count - loadsBefore).toBeLessThanOrEqual(1);
    expect(site.settingKeyLoads.count).toBe(1);
  });

  it('adds a webhook endpoint (secret shown once), and retries a failed delivery', async () => {
    const received: string[] = [];
    let fail = true;
    const { createServer } = await import('node:http');
    const receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        received.push(body);
        res.statusCode = fail ? 500 : 200;
        res.end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
    try {
      const url = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hook`;
      const s = await signedIn();
      const added = await s.post('/admin/ui/webhooks', { url, events: 'test' });
      expect(added.status).toBe(201);
      const secret = /id="webhook-secret">([^<]+)</.exec(await added.text())?.[1];
      expect(secret).toBeTruthy();
      expect(await (await s.get('/admin/ui/webhooks')).text()).not.toContain(secret);
      // A delivery that failed for good, then retried from the page once the receiver is fixed.
      const [endpoint] = await site.store.domain.webhooks.listEndpoints();
      const { deliveries } = await site.gateway.webhooks.emit('test', { n: 1 }, { endpoints: [endpoint!] });
      await site.gateway.webhooks.attempt(deliveries[0]!.id, { final: true }).catch(() => undefined);
      expect((await site.store.domain.webhooks.getDelivery(deliveries[0]!.id)).status).toBe('failed');
      fail = false;
      expect((await s.post(`/admin/ui/webhooks/deliveries/${deliveries[0]!.id}/retry`, {})).status).toBe(303);
      expect(await (await s.get('/admin/ui/webhooks')).text()).toContain('Delivered test: HTTP 200.');
      expect((await site.store.domain.webhooks.getDelivery(deliveries[0]!.id)).status).toBe('succeeded');
      expect(received.length).toBeGreaterThanOrEqual(2);
    } finally {
      await new Promise((r) => receiver.close(r));
    }
  });

  it("downloads the usage CSV and changes a user's plan", async () => {
    const s = await signedIn();
    const month = new Date().toISOString().slice(0, 7);
    const csv = await s.get(`/admin/ui/export.csv?month=${month}`);
    expect(csv.headers.get('content-disposition')).toBe(`attachment; filename="usage-${month}.csv"`);
    expect((await csv.text()).split(/\r?\n/)[0]).toBe(
      'month,user_id,email,plan,key_id,key_prefix,key_name,requests,errors,bytes_in,bytes_out',
    );
    const user = await site.store.domain.users.create({ email: 'plan@example.com' });
    const pro = await site.store.domain.plans.resolve('Pro');
    await s.post(`/admin/ui/users/${user.id}/plan`, { plan_id: pro.id });
    expect((await site.store.domain.users.get(user.id)).planId).toBe(pro.id);
    expect(await (await s.get('/admin/ui/users?q=plan@')).text()).toContain('plan@example.com is now on Pro.');
  });
});

describe('portal password reset over HTTP (no JavaScript)', () => {
  it('asks for a link, opens the emailed page, sets a new password and signs in with it', async () => {
    const email = 'reset@example.com';
    await verifiedUser(email, 'old password 1');
    const a = jar();
    const form = await fetch(`${site.url}/portal/forgot-password`);
    a.take(form);
    const { post } = a;
    const csrf = csrfIn(await form.text())!;
    const asked = await post('/portal/forgot-password', { _csrf: csrf, email });
    expect(asked.status).toBe(202);
    expect(await asked.text()).toContain('a link to choose a new password is on its way');
    const mail = await eventually(
      () => site.mail.messages().find((m) => m.to.includes(email) && /password/i.test(m.subject)),
      'the reset email',
    );
    const link = /(https?:\/\/\S+token=[0-9A-Za-z]+)/.exec(mail.text ?? '')![1]!;
    expect(new URL(link).pathname).toBe('/portal/reset-password');
    const page = await fetch(link, { headers: { cookie: a.header() } });
    const html = await page.text();
    const token = /name="token" value="([^"]+)"/.exec(html)![1]!;
    expect((await post('/portal/reset-password', { _csrf: csrf, token, password: 'short' })).status).toBe(400);
    const done = await post('/portal/reset-password', { _csrf: csrf, token, password: 'new password 22' });
    expect(done.status).toBe(200);
    expect(await done.text()).toContain('Your new password is set');
    expect((await post('/portal/login', { _csrf: csrf, email, password: 'old password 1' })).status).toBe(401);
    const ok = await post('/portal/login', { _csrf: csrf, email, password: 'new password 22' });
    expect(ok.status).toBe(303);
    expect(ok.headers.getSetCookie().some((c) => c.startsWith('apigate_session=') && /HttpOnly/.test(c))).toBe(true);
    const keys = await fetch(`${site.url}/portal/keys`, { headers: { cookie: a.header() } });
    expect(keys.status).toBe(200);
    expect(await keys.text()).toContain('No keys yet.');
  });

  it('deletes the account from the account page with the password; its key is then refused (401)', async () => {
    const email = 'leaving@example.com';
    const user = await verifiedUser(email, 'my password 1');
    const { key } = await site.store.domain.keys.create({ userId: user.id, name: 'old' });
    expect((await fetch(`${site.url}/echo/x`, { headers: { 'x-api-key': key } })).status).toBe(200);
    const a = jar();
    const { post } = a;
    expect((await portalSignIn(a, email, 'my password 1')).status).toBe(303);
    const page = await fetch(`${site.url}/portal/account`, { headers: { cookie: a.header() } });
    const csrf = csrfIn(await page.text())!;
    expect((await post('/portal/account/delete', { password: 'my password 1' })).headers.get('location')).toBe('/portal/account?note=csrf');
    const wrong = await post('/portal/account/delete', { _csrf: csrf, password: 'not it' });
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).toContain('the password is not right');
    const gone = await post('/portal/account/delete', { _csrf: csrf, password: 'my password 1' });
    expect(gone.status).toBe(303);
    expect(gone.headers.get('location')).toBe('/portal/login?note=account-deleted');
    expect(await site.store.domain.users.find(user.id)).toBeUndefined();
    // The gateway drops the deleted key from its cache within its poll interval.
    await eventually(
      async () => ((await fetch(`${site.url}/echo/x`, { headers: { 'x-api-key': key } })).status === 401 ? true : undefined),
      'the key to be refused',
    );
    expect((await fetch(`${site.url}/portal/account`, { headers: { cookie: a.header() }, redirect: 'manual' })).status).toBe(303);
  });
});

describe('portal billing page over HTTP', () => {
  it('shows the invoices the billing API lists: date, period, amount, status, newest first', async () => {
    const dummy = site.kernel.get('payment') as unknown as import('@apigate/provider-dummy-payment').DummyPayment;
    const email = 'invoices@example.com';
    const user = await verifiedUser(email, 'invoice pass 12');
    const pro = await site.store.domain.plans.resolve('Pro');
    const { customerId, sessionId } = await openCheckout(dummy, {
      userId: user.id,
      email,
      price: { planId: pro.id },
      successUrl: `${site.url}/portal`,
      cancelUrl: `${site.url}/portal`,
    });
    await site.store.mappings.put({ provider: 'dummy', entityType: 'user', localId: user.id, externalId: customerId });
    const paid = dummy.completeCheckout(sessionId);
    const failed = dummy.failPayment(paid.subscription.subscriptionId);

    const a = jar();
    expect((await portalSignIn(a, email, 'invoice pass 12')).status).toBe(303);
    const html = await (await fetch(`${site.url}/portal/billing`, { headers: { cookie: a.header() } })).text();
    const table = /<table id="invoices">[\s\S]*?<\/table>/.exec(html)?.[0];
    expect(table, 'the invoices table').toBeDefined();
    const rows = [...table!.matchAll(/<tr data-invoice-id="([^"]+)">([\s\S]*?)<\/tr>/g)].map((m) => ({
      id: m[1],
      cells: m[2]!.replace(/<[^>]+>/g, '|'),
    }));
    expect(rows.map((r) => r.id)).toEqual([failed.event.invoice!.id, expect.stringMatching(/^in_dummy_/)]);
    expect(rows[0]!.cells).toContain('open');
    expect(rows[1]!.cells).toContain('paid');
    expect(rows[1]!.cells).toContain('$19.00');
    const start = paid.subscription.currentPeriodEnd!.toISOString().slice(0, 10);
    expect(rows[1]!.cells).toContain(`– ${start}`);
  });
});

describe('admin payments page over HTTP', () => {
  it('lists a failed payment event and replays it from the page once the cause is fixed', async () => {
    const { PaymentInbox } = await import('@apigate/gateway');
    const dummy = site.kernel.get('payment') as unknown as import('@apigate/provider-dummy-payment').DummyPayment;
    const pro = await site.store.domain.plans.resolve('Pro');
    // A customer nobody mapped to a user: the checkout's event fails for want of one.
    const { customerId, priceId, sessionId } = await openCheckout(dummy, {
      userId: 'usr_unknown',
      email: 'lost@example.com',
      price: { planId: pro.id },
      successUrl: `${site.url}/portal`,
      cancelUrl: `${site.url}/portal`,
    });
    await site.store.mappings.put({ provider: 'dummy', entityType: 'plan', localId: pro.id, externalId: priceId });
    const change = dummy.completeCheckout(sessionId);
    expect(
      (
        await fetch(`${site.url}/webhooks/dummy`, {
          method: 'POST',
          headers: change.webhook.headers,
          body: new Uint8Array(change.webhook.rawBody),
        })
      ).status,
    ).toBe(200);
    const inbox = new PaymentInbox(site.store);
    await eventually(
      async () => ((await inbox.find('dummy', change.event.id))?.status === 'failed' ? true : undefined),
      'the event to fail',
    );

    const a = jar();
    await adminSignIn(a);
    const page = await (await fetch(`${site.url}/admin/ui/payments?status=failed`, { headers: { cookie: a.header() } })).text();
    expect(page).toContain(change.event.id);
    expect(page).toContain(`Replay ${change.event.id}`);

    const user = await site.store.domain.users.create({ email: 'lost@example.com' });
    await site.store.mappings.put({ provider: 'dummy', entityType: 'user', localId: user.id, externalId: customerId });
    const replay = await a.post('/admin/ui/payments/replay', { _csrf: csrfIn(page)!, provider: 'dummy', event_id: change.event.id });
    expect(replay.status).toBe(303);
    expect(await (await fetch(`${site.url}/admin/ui/payments`, { headers: { cookie: a.header() } })).text()).toContain('is queued again');
    await eventually(
      async () => ((await inbox.find('dummy', change.event.id))?.status === 'applied' ? true : undefined),
      'the replayed event to apply',
    );
    expect((await site.store.domain.users.get(user.id)).planId).toBe(pro.id);
  });
});
