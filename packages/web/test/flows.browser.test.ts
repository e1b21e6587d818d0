import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launch, shoot } from './browser.js';
import { ADMIN_TOKEN, eventually, type Site, startSite } from './harness.js';

// One browser for the file; each flow gets its own context (cookies), like two different people.
let site: Site;
let browser: Browser;
let customer: BrowserContext;
let page: Page;
let apiKey = '';
const EMAIL = 'ada@example.com';
const PASSWORD = 'correct horse battery';
const NEW_PASSWORD = 'battery staple horse';

beforeAll(async () => {
  [site, browser] = await Promise.all([startSite(), launch()]);
  customer = await browser.newContext({ baseURL: site.url, viewport: { width: 1280, height: 800 } });
  await customer.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: site.url });
  page = await customer.newPage();
});
afterAll(async () => {
  await browser?.close();
  await site?.close();
});

const callApi = (key: string, p = '/echo/hello') => fetch(`${site.url}${p}`, { headers: { 'X-API-Key': key } });

describe('customer portal in Chromium', () => {
  it('signs up, confirms the address from the emailed link and signs in', async () => {
    await page.goto('/portal');
    expect(new URL(page.url()).pathname).toBe('/portal/login');
    await shoot(page, 'portal-login');
    await page.getByRole('link', { name: 'Create an account' }).click();
    await page.getByLabel('Name').fill('Ada');
    await page.getByLabel('Email').fill(EMAIL);
    await page.getByLabel('Password').fill(PASSWORD);
    await shoot(page, 'portal-signup');
    await page.getByRole('button', { name: 'Create account' }).click();
    await expect.poll(() => page.locator('h1').textContent()).toBe('Check your email');

    // The log email provider keeps what it was handed: the link in it is the one a customer clicks.
    const mail = await eventually(
      () => site.mail.messages().find((m) => m.to.includes(EMAIL) && /Confirm/.test(m.subject)),
      'the confirmation email',
    );
    const link = /(https?:\/\/\S+token=[0-9A-Za-z]+)/.exec(mail.text ?? '')![1]!;
    await page.goto(link);
    expect(await page.locator('h1').textContent()).toBe('Address confirmed');
    await page.getByRole('link', { name: 'Sign in' }).click();
    await page.waitForURL((u) => u.pathname === '/portal/login');

    // Keyboard only: the email field has focus, Tab to the password, Enter submits.
    await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe('f-email');
    await page.keyboard.type(EMAIL);
    await page.keyboard.press('Tab');
    await page.keyboard.type(PASSWORD);
    await page.keyboard.press('Enter');
    await page.waitForURL((u) => u.pathname === '/portal');
    expect(await page.locator('h1').textContent()).toBe('Welcome, Ada');
    await shoot(page, 'portal-overview');
  });

  it('creates a named key shown once with a working copy button, and calls the API through the gateway with it', async () => {
    await page.getByRole('link', { name: 'API keys', exact: true }).click();
    await page.getByLabel('Name').fill('laptop');
    await page.getByRole('button', { name: 'Create key' }).click();
    apiKey = (await page.locator('#new-key').textContent())!.trim();
    expect(apiKey).toMatch(/^ak_[0-9A-Za-z]{32,}$/);
    await page.getByRole('button', { name: 'Copy' }).click();
    await expect.poll(() => page.locator('#copy-key-status').textContent()).toBe('Copied to the clipboard');
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(apiKey);
    await shoot(page, 'portal-keys');
    // Shown once: the list shows only the prefix afterwards.
    await page.goto('/portal/keys');
    expect(await page.content()).not.toContain(apiKey);
    expect(await page.locator('tr[data-key-id]').count()).toBe(1);

    const res = await callApi(apiKey);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ hello: 'world', path: '/hello' });
  });

  it("shows the call in this month's usage and in the per-day chart", async () => {
    const user = await site.store.domain.users.findByEmail(EMAIL);
    const month = new Date().toISOString().slice(0, 7);
    await eventually(
      async () => ((await site.store.domain.usage.forUser(user!.id, month)).totals.requests >= 1 ? true : undefined),
      'the metered call',
    );
    await page.goto('/portal/usage');
    expect(await page.locator('#month-requests').textContent()).toContain('1 of 1,000 requests');
    // uPlot drew the chart, and its data (the same the table shows) has today's call.
    await page.locator('#usage-days[data-drawn="true"] canvas').waitFor();
    const spec = JSON.parse((await page.locator('#usage-days-data').textContent())!);
    const today = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate()) / 1000;
    expect(spec.series[0].values[spec.x.indexOf(today)]).toBe(1);
    await page.getByRole('link', { name: 'Last 24 hours' }).click();
    await page.locator('#usage-key[data-drawn="true"] canvas').waitFor();
    await shoot(page, 'portal-usage');
  });

  it('upgrades through the dummy payment checkout and then shows the new plan', async () => {
    await page.getByRole('link', { name: 'Plan', exact: true }).click();
    expect(await page.locator('#current-plan').textContent()).toBe('Free');
    await shoot(page, 'portal-plan');
    await page.getByRole('button', { name: 'Upgrade to Pro' }).click();
    await page.waitForURL(/\/portal\/dummy-checkout\/cs_/);
    expect(await page.locator('#checkout-plan').textContent()).toBe('Pro');
    await shoot(page, 'dummy-checkout');
    await page.getByRole('button', { name: /^Pay/ }).click();
    await page.waitForURL((u) => u.pathname === '/portal/billing' && u.searchParams.get('checkout') === 'success');
    // The plan moves when the signed webhook is applied by the payment worker.
    await eventually(async () => {
      await page.reload();
      return (await page.locator('#current-plan').textContent()) === 'Pro' ? true : undefined;
    }, 'the plan to become Pro');
    expect(await page.locator('.flash.ok').first().textContent()).toContain('payment went through');
    await shoot(page, 'portal-plan-pro');
    await page.getByRole('link', { name: 'Account', exact: true }).click();
    await shoot(page, 'portal-account');
  });

  it('changes the display name and the password on the account page', async () => {
    await page.goto('/portal/account');
    await page.getByLabel('Display name').fill('Ada Lovelace');
    await page.getByRole('button', { name: 'Save name' }).click();
    expect(await page.locator('.flash.ok').textContent()).toContain('Your name was saved');
    expect((await site.store.domain.users.findByEmail(EMAIL))?.name).toBe('Ada Lovelace');

    // A wrong current password is refused on the field, nothing changes.
    await page.getByLabel('Current password').fill('not my password');
    await page.getByLabel('New password').fill(NEW_PASSWORD);
    await page.getByRole('button', { name: 'Change password' }).click();
    expect(await page.locator('#f-current_password-error').textContent()).toContain('the password is not right');
    await page.getByLabel('Current password').fill(PASSWORD);
    await page.getByLabel('New password').fill(NEW_PASSWORD);
    await page.getByRole('button', { name: 'Change password' }).click();
    expect(await page.locator('.flash.ok').textContent()).toContain('Your password was changed');
    await shoot(page, 'portal-account-changed');
    // Still signed in here (a fresh session), and the new password is the one that signs in.
    await page.goto('/portal');
    expect(await page.locator('h1').textContent()).toBe('Welcome, Ada Lovelace');
    const other = await (await browser.newContext({ baseURL: site.url })).newPage();
    await other.goto('/portal/login');
    await other.getByLabel('Email').fill(EMAIL);
    await other.getByLabel('Password').fill(NEW_PASSWORD);
    await other.getByRole('button', { name: 'Sign in' }).click();
    await other.waitForURL((u) => u.pathname === '/portal');
    await other.context().close();
  });
});

describe('admin dashboard in Chromium', () => {
  let admin: Page;
  beforeAll(async () => {
    const ctx = await browser.newContext({ baseURL: site.url, viewport: { width: 1280, height: 800 } });
    admin = await ctx.newPage();
  });

  it('signs in with the admin token and shows the traffic', async () => {
    await admin.goto('/admin');
    expect(new URL(admin.url()).pathname).toBe('/admin/ui/login');
    await admin.getByLabel('Admin token').fill('wrong-token-wrong-token');
    await admin.getByRole('button', { name: 'Sign in' }).click();
    expect(await admin.locator('.flash.error').textContent()).toContain('not valid');
    await admin.getByLabel('Admin token').fill(ADMIN_TOKEN);
    await admin.getByRole('button', { name: 'Sign in' }).click();
    await admin.waitForURL((u) => u.pathname === '/admin');
    expect(Number(await admin.locator('#hour-requests').textContent())).toBeGreaterThanOrEqual(1);
    await admin.locator('#traffic[data-drawn="true"] canvas').waitFor();
    expect(await admin.locator('#top-keys').textContent()).toContain(EMAIL);
    // The calls' added latency and their route, from the per-route histogram metering writes.
    expect(await admin.locator('#latency-p50').textContent()).toMatch(/^\d[\d.,]* ms$/);
    expect(await admin.locator('#latency-p99').textContent()).toMatch(/^\d[\d.,]* ms$/);
    await admin.locator('#latency[data-drawn="true"] canvas').waitFor();
    const echo = admin.locator('#top-routes tr[data-route="/echo"]');
    expect(Number((await echo.locator('td[data-label="Requests"]').textContent())?.replace(/,/g, ''))).toBeGreaterThanOrEqual(1);
    expect(await echo.locator('td[data-label="p99"]').textContent()).toMatch(/ ms$/);
    await shoot(admin, 'admin-overview');
  });

  it('tries a route from the routes page', async () => {
    await admin.getByRole('link', { name: 'Routes', exact: true }).click();
    await admin.getByLabel('Path', { exact: true }).fill('/echo/try');
    await admin.getByLabel('API key').fill(apiKey);
    await admin.getByRole('button', { name: 'Send' }).click();
    await expect.poll(() => admin.locator('#try-it-out').textContent()).toContain('HTTP 200');
    expect(await admin.locator('#try-it-out').textContent()).toContain('"path":"/try"');
    await shoot(admin, 'admin-routes');
  });

  it('suspends the customer, whose key then gets 403', async () => {
    await admin.getByRole('link', { name: 'Users', exact: true }).click();
    await admin.getByLabel('Search email or name').fill('ada');
    await admin.getByRole('button', { name: 'Search' }).click();
    await admin.getByRole('button', { name: `Suspend ${EMAIL}` }).click();
    expect(await admin.locator('.flash.ok').textContent()).toContain(`Suspended ${EMAIL}`);
    expect(await admin.locator(`tr[data-user="${EMAIL}"] .badge`).textContent()).toBe('suspended');
    await shoot(admin, 'admin-users');
    // The gateway sees the change within its poll interval.
    const status = await eventually(async () => {
      const s = (await callApi(apiKey)).status;
      return s === 403 ? s : undefined;
    }, 'the key to be refused');
    expect(status).toBe(403);
  });

  it('shows the other pages', async () => {
    for (const [name, label] of [
      ['admin-plans', 'Plans'],
      ['admin-keys', 'Keys'],
      ['admin-webhooks', 'Webhooks'],
      ['admin-payments', 'Payments'],
      ['admin-providers', 'Providers'],
      ['admin-settings', 'Settings'],
      ['admin-export', 'Export'],
    ] as const) {
      await admin.getByRole('link', { name: label, exact: true }).click();
      expect(await admin.locator('h1').count()).toBe(1);
      await shoot(admin, name);
    }
    // The checkout's webhook is in the payment inbox, applied.
    await admin.goto('/admin/ui/payments');
    expect(await admin.locator('#payment-events').textContent()).toContain('applied');
  });
});
