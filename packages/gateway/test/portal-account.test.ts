import { describe, expect, it } from 'vitest';
import { PASSWORD, portalHarness, tokenIn } from './helpers/portal.js';

const start = portalHarness();

// Account settings of the signed-in customer: /portal/api/account.
describe('portal account settings', () => {
  it('changes the display name; the email stays as it is', async () => {
    const p = await start();
    const ada = await p.customer('ada@example.com', 'Ada');
    expect((await ada.call('GET', '/portal/api/account')).body).toMatchObject({
      email: 'ada@example.com',
      name: 'Ada',
      has_password: true,
    });
    const r = await ada.call('PATCH', '/portal/api/account', { name: '  Ada Lovelace ' });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ name: 'Ada Lovelace', email: 'ada@example.com' });
    expect((await ada.call('GET', '/portal/api/me')).body.name).toBe('Ada Lovelace');
    // Only the name: an email change would need its own verification.
    const email = await ada.call('PATCH', '/portal/api/account', { name: 'x', email: 'eve@example.com' });
    expect(email.status).toBe(400);
    expect((await p.store.domain.users.findByEmail('ada@example.com'))?.name).toBe('Ada Lovelace');
    expect((await ada.call('PATCH', '/portal/api/account', { name: 'x'.repeat(201) })).body.error).toMatchObject({
      code: 'INVALID_INPUT',
      field: 'name',
    });
    // Session and CSRF header required, like every other write.
    expect((await p.client().call('PATCH', '/portal/api/account', { name: 'Eve' })).status).toBe(401);
    expect((await ada.call('PATCH', '/portal/api/account', { name: 'Eve' }, { csrf: false })).status).toBe(403);
  });

  it('changes the password with the current one, ends every other session and keeps this one signed in', async () => {
    const p = await start();
    const laptop = await p.customer('ada@example.com', 'Ada');
    const phone = p.client();
    expect((await phone.call('POST', '/portal/api/login', { email: 'ada@example.com', password: PASSWORD })).status).toBe(200);

    const wrong = await laptop.call('POST', '/portal/api/account/password', {
      current_password: 'not my password',
      new_password: 'a new password 1',
    });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error).toMatchObject({ code: 'INVALID_CREDENTIALS', field: 'current_password' });
    expect(
      (await laptop.call('POST', '/portal/api/account/password', { current_password: PASSWORD, new_password: 'short' })).body.error,
    ).toMatchObject({
      code: 'INVALID_INPUT',
      field: 'new_password',
    });

    const ok = await laptop.call('POST', '/portal/api/account/password', { current_password: PASSWORD, new_password: 'a new password 1' });
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({ password_changed: true, other_sessions_ended: 1 });
    expect((await phone.call('GET', '/portal/api/me')).status).toBe(401); // the other browser is signed out
    expect((await laptop.call('GET', '/portal/api/me')).status).toBe(200); // this one got a fresh session
    const fresh = p.client();
    expect((await fresh.call('POST', '/portal/api/login', { email: 'ada@example.com', password: PASSWORD })).status).toBe(401);
    expect((await fresh.call('POST', '/portal/api/login', { email: 'ada@example.com', password: 'a new password 1' })).status).toBe(200);
  });

  it('voids a reset link emailed before the change: it cannot set the password back', async () => {
    const p = await start();
    const ada = await p.customer('ada@example.com', 'Ada');
    expect((await p.client().call('POST', '/portal/api/password-reset', { email: 'ada@example.com' })).status).toBe(202);
    const token = tokenIn(await p.email('ada@example.com', /^Reset your password$/));
    const changed = await ada.call('POST', '/portal/api/account/password', {
      current_password: PASSWORD,
      new_password: 'a new password 1',
    });
    expect(changed.status).toBe(200);

    const late = await p.client().call('POST', '/portal/api/password-reset/confirm', { token, password: 'an old link password' });
    expect(late).toMatchObject({ status: 400, body: { error: { code: 'TOKEN_USED', field: 'token' } } });
    const anon = p.client();
    expect((await anon.call('POST', '/portal/api/login', { email: 'ada@example.com', password: 'an old link password' })).status).toBe(401);
    expect((await anon.call('POST', '/portal/api/login', { email: 'ada@example.com', password: 'a new password 1' })).status).toBe(200);
    // A link asked for after the change works as usual.
    expect((await anon.call('POST', '/portal/api/password-reset', { email: 'ada@example.com' })).status).toBe(202);
    const next = tokenIn(await p.email('ada@example.com', /^Reset your password$/, 2));
    expect((await anon.call('POST', '/portal/api/password-reset/confirm', { token: next, password: 'a third password' })).status).toBe(200);
  });

  it('deletes the account with the password: its keys stop working, a paid plan must be canceled first', async () => {
    const p = await start();
    const d = p.store.domain;
    const ada = await p.customer('ada@example.com', 'Ada');
    const key = await ada.call('POST', '/portal/api/keys', { name: 'laptop' });
    expect(key.status).toBe(201);
    const user = (await d.users.findByEmail('ada@example.com'))!;

    expect((await ada.call('POST', '/portal/api/account/delete', { password: 'wrong password' })).status).toBe(401);
    const sub = await d.subscriptions.create({
      userId: user.id,
      planId: user.planId,
      provider: 'dummy',
      externalSubscriptionId: 'sub_1',
      status: 'active',
    });
    const paid = await ada.call('POST', '/portal/api/account/delete', { password: PASSWORD });
    expect(paid.status).toBe(409);
    expect(paid.body.error.code).toBe('SUBSCRIPTION_ACTIVE');
    expect(await d.users.find(user.id)).toBeDefined();
    await d.subscriptions.update(sub.id, { status: 'canceled' });

    const gone = await ada.call('POST', '/portal/api/account/delete', { password: PASSWORD });
    expect(gone.status).toBe(200);
    expect(gone.body).toEqual({ id: user.id, deleted: true });
    expect(await d.users.find(user.id)).toBeUndefined();
    expect(await d.keys.find(key.body.id)).toBeUndefined();
    expect(await d.keys.check(key.body.key)).toEqual({ ok: false, reason: 'unknown' });
    expect((await ada.call('GET', '/portal/api/me')).status).toBe(401);
    expect((await p.client().call('POST', '/portal/api/login', { email: 'ada@example.com', password: PASSWORD })).status).toBe(401);
  });

  it('confirms with the email address when the account has no password (made through a sign-in provider)', async () => {
    const p = await start();
    const ada = await p.customer('ada@example.com', 'Ada');
    const user = (await p.store.domain.users.findByEmail('ada@example.com'))!;
    await p.store.domain.users.setPasswordHash(user.id, null);
    expect((await ada.call('GET', '/portal/api/account')).body.has_password).toBe(false);
    expect(
      (await ada.call('POST', '/portal/api/account/password', { current_password: 'anything', new_password: 'a new password 1' })).body
        .error.code,
    ).toBe('NO_PASSWORD');
    expect((await ada.call('POST', '/portal/api/account/delete', { email: 'eve@example.com' })).body.error).toMatchObject({
      code: 'CONFIRMATION_REQUIRED',
      field: 'email',
    });
    expect((await ada.call('DELETE', '/portal/api/account', { email: 'Ada@Example.com' })).status).toBe(200);
    expect(await p.store.domain.users.find(user.id)).toBeUndefined();
  });
});
