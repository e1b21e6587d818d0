import { describe, expect, it } from 'vitest';
import { DIALECTS } from './helpers/domain.js';
import { linkIn, PASSWORD, type PortalClient, type PortalHarness, portalHarness, tokenIn } from './helpers/portal.js';

const start = portalHarness();
const NEW_PASSWORD = 'a brand new passphrase';
const HOUR = 3_600_000;

/** Asks for a reset of `email` and returns the token of the `n`th reset email it has had. */
async function resetToken(p: PortalHarness, c: PortalClient, email: string, n = 1): Promise<string> {
  await c.call('POST', '/portal/api/password-reset', { email });
  return tokenIn(await p.email(email, /^Reset your password$/, n));
}

describe.each(DIALECTS)('%s', (dialect) => {
  describe('portal password reset', () => {
    it('answers alike for known and unknown addresses, resets by the emailed token, and ends every session', async () => {
      const p = await start({ dialect });
      const laptop = await p.customer('ada@example.com', 'Ada');
      const phone = p.client();
      expect((await phone.call('POST', '/portal/api/login', { email: 'ada@example.com', password: PASSWORD })).status).toBe(200);

      const anon = p.client();
      const known = await anon.call('POST', '/portal/api/password-reset', { email: 'ADA@example.com' });
      const unknown = await anon.call('POST', '/portal/api/password-reset', { email: 'nobody@example.com' });
      expect(known.status).toBe(202);
      expect(unknown.status).toBe(202);
      expect(known.body).toEqual({
        status: 'reset_requested',
        message: 'if ada@example.com has an account, a link to choose a new password is on its way',
      });
      expect(unknown.body.message).toBe(known.body.message.replace('ada@example.com', 'nobody@example.com'));

      const mail = await p.email('ada@example.com', /^Reset your password$/);
      expect(linkIn(mail)).toBe(`${p.url}/portal/reset-password?token=${tokenIn(mail)}`);
      expect(mail.text).toContain('expires in 1 hour');
      expect(p.mail.messages().filter((m) => m.to.includes('nobody@example.com'))).toEqual([]);

      const short = await anon.call('POST', '/portal/api/password-reset/confirm', { token: tokenIn(mail), password: 'short' });
      expect(short).toMatchObject({
        status: 400,
        body: { error: { field: 'password', message: 'password reset: password: at least 8 characters' } },
      });

      const done = await anon.call('POST', '/portal/api/password-reset/confirm', { token: tokenIn(mail), password: NEW_PASSWORD });
      expect(done).toMatchObject({ status: 200, body: { password_reset: true, sessions_revoked: 2 } });
      for (const c of [laptop, phone]) expect((await c.call('GET', '/portal/api/me')).status).toBe(401);
      expect(await p.store.db.select().from(p.store.t.portalSessions)).toEqual([]);

      expect((await anon.call('POST', '/portal/api/login', { email: 'ada@example.com', password: PASSWORD })).status).toBe(401);
      expect((await anon.call('POST', '/portal/api/login', { email: 'ada@example.com', password: NEW_PASSWORD })).status).toBe(200);
    });

    it('takes a token once: a second use fails and changes nothing', async () => {
      const p = await start({ dialect });
      await p.customer('ada@example.com');
      const c = p.client();
      const token = await resetToken(p, c, 'ada@example.com');
      expect((await c.call('POST', '/portal/api/password-reset/confirm', { token, password: NEW_PASSWORD })).status).toBe(200);
      const session = await c.call('POST', '/portal/api/login', { email: 'ada@example.com', password: NEW_PASSWORD });
      expect(session.status).toBe(200);

      const again = await c.call('POST', '/portal/api/password-reset/confirm', { token, password: 'the attacker password' });
      expect(again).toMatchObject({
        status: 400,
        body: {
          error: {
            code: 'TOKEN_USED',
            field: 'token',
            message: 'token: this link was already used, a newer one replaced it, or the password was changed since; ask for a new one',
          },
        },
      });
      expect((await c.call('GET', '/portal/api/me')).status).toBe(200); // the session made after the reset survives
      expect(
        (await p.client().call('POST', '/portal/api/login', { email: 'ada@example.com', password: 'the attacker password' })).status,
      ).toBe(401);
    });

    it('lets exactly one of two concurrent uses of a token through', async () => {
      const p = await start({ dialect });
      await p.customer('ada@example.com');
      const c = p.client();
      const token = await resetToken(p, c, 'ada@example.com');
      const answers = await Promise.all(
        ['first racing password', 'second racing password'].map((password) =>
          c.call('POST', '/portal/api/password-reset/confirm', { token, password }),
        ),
      );
      expect(answers.map((a) => a.status).sort()).toEqual([200, 400]);
      expect(answers.find((a) => a.status === 400)!.body.error.code).toBe('TOKEN_USED');
      const winner = answers[0]!.status === 200 ? 'first racing password' : 'second racing password';
      expect((await c.call('POST', '/portal/api/login', { email: 'ada@example.com', password: winner })).status).toBe(200);
    });

    it('refuses an expired reset token, and only the newest link works', async () => {
      const p = await start({ dialect });
      await p.customer('ada@example.com');
      const c = p.client();
      const first = await resetToken(p, c, 'ada@example.com');
      p.clock.now = new Date(p.clock.now.getTime() + HOUR);
      expect(await c.call('POST', '/portal/api/password-reset/confirm', { token: first, password: NEW_PASSWORD })).toMatchObject({
        status: 400,
        body: { error: { code: 'TOKEN_EXPIRED', field: 'token', message: 'token: this link has expired; ask for a new one' } },
      });

      const second = await resetToken(p, c, 'ada@example.com', 2);
      const third = await resetToken(p, c, 'ada@example.com', 3);
      expect((await c.call('POST', '/portal/api/password-reset/confirm', { token: second, password: NEW_PASSWORD })).body.error.code).toBe(
        'TOKEN_USED',
      );
      expect((await c.call('POST', '/portal/api/password-reset/confirm', { token: third, password: NEW_PASSWORD })).status).toBe(200);
      // Well-formed but never issued.
      expect(
        (await c.call('POST', '/portal/api/password-reset/confirm', { token: 'A'.repeat(43), password: NEW_PASSWORD })).body.error.code,
      ).toBe('TOKEN_INVALID');
    });

    it("drops a user's tokens a day after they expired when new ones are issued", async () => {
      const p = await start({ dialect });
      await p.customer('ada@example.com');
      const c = p.client();
      const rows = async () => (await p.store.db.select().from(p.store.t.portalTokens)).length;
      expect(await rows()).toBe(1); // the used verification token
      await c.call('POST', '/portal/api/password-reset', { email: 'ada@example.com' });
      expect(await rows()).toBe(2);
      p.clock.now = new Date(p.clock.now.getTime() + 49 * HOUR); // both expired more than a day ago
      await c.call('POST', '/portal/api/password-reset', { email: 'ada@example.com' });
      expect(await rows()).toBe(1);
    });

    it('confirms the address of an account that never verified it, and gives admin-made users their first password', async () => {
      const p = await start({ dialect });
      const c = p.client();
      await c.call('POST', '/portal/api/signup', { email: 'ada@example.com', password: PASSWORD });
      const token = await resetToken(p, c, 'ada@example.com');
      expect((await c.call('POST', '/portal/api/password-reset/confirm', { token, password: NEW_PASSWORD })).status).toBe(200);
      expect((await c.call('POST', '/portal/api/login', { email: 'ada@example.com', password: NEW_PASSWORD })).status).toBe(200);
      // A user an admin made has no password until they set one this way.
      await p.store.domain.users.create({ email: 'bob@example.com', name: 'Bob' });
      expect((await c.call('POST', '/portal/api/login', { email: 'bob@example.com', password: NEW_PASSWORD })).status).toBe(401);
      const bobs = await resetToken(p, c, 'bob@example.com');
      expect((await c.call('POST', '/portal/api/password-reset/confirm', { token: bobs, password: NEW_PASSWORD })).status).toBe(200);
      expect((await c.call('POST', '/portal/api/login', { email: 'bob@example.com', password: NEW_PASSWORD })).status).toBe(200);
    });
  });

  describe('portal email verification', () => {
    it('takes a verification link once and refuses it after 24 hours; a resend gives a working one', async () => {
      const p = await start({ dialect });
      const c = p.client();
      await c.call('POST', '/portal/api/signup', { email: 'ada@example.com', password: PASSWORD });
      const first = await p.email('ada@example.com', /^Confirm your email address$/, 1);
      expect(first.text).toContain('expires in 24 hours');

      p.clock.now = new Date(p.clock.now.getTime() + 24 * HOUR);
      const late = await fetch(linkIn(first));
      expect(late.status).toBe(400);
      expect(((await late.json()) as any).error).toMatchObject({ code: 'TOKEN_EXPIRED', field: 'token' });
      expect((await p.store.domain.users.findByEmail('ada@example.com'))!.emailVerified).toBe(false);

      const resend = await c.call('POST', '/portal/api/verify-email/resend', { email: 'ada@example.com' });
      expect(resend).toMatchObject({ status: 202, body: { status: 'verification_sent' } });
      expect((await c.call('POST', '/portal/api/verify-email/resend', { email: 'nobody@example.com' })).status).toBe(202);
      const second = await p.email('ada@example.com', /^Confirm your email address$/, 2);
      expect((await c.call('POST', '/portal/api/verify-email', { token: tokenIn(second) })).status).toBe(200);
      const reuse = await fetch(linkIn(second));
      expect(reuse.status).toBe(400);
      expect(((await reuse.json()) as any).error.code).toBe('TOKEN_USED');
      expect((await c.call('POST', '/portal/api/login', { email: 'ada@example.com', password: PASSWORD })).status).toBe(200);
    });

    it('does not verify an address the account no longer has', async () => {
      const p = await start({ dialect });
      const c = p.client();
      await c.call('POST', '/portal/api/signup', { email: 'ada@example.com', password: PASSWORD });
      const mail = await p.email('ada@example.com', /^Confirm your email address$/);
      const user = (await p.store.domain.users.findByEmail('ada@example.com'))!;
      await p.store.domain.users.update(user.id, { email: 'ada@elsewhere.example' });
      expect((await c.call('POST', '/portal/api/verify-email', { token: tokenIn(mail) })).body.error.code).toBe('TOKEN_INVALID');
      expect((await p.store.domain.users.get(user.id)).emailVerified).toBe(false);
    });
  });
});
