import { and, eq, isNull, lt, or } from 'drizzle-orm';
import { newId, randomBase62, sha256Hex } from '../domain/ids.js';
import { affectedRows, type StoreDb, type Tx } from '../store/dialect.js';

export type TokenPurpose = 'verify_email' | 'reset_password';

/** Random characters in session and emailed tokens: 43 base62 characters, 256 bits. */
const TOKEN_LENGTH = 43;
const DAY_MS = 86_400_000;

export interface PortalSession {
  id: string;
  userId: string;
  expiresAt: Date;
}

export interface IssuedToken {
  id: string;
  /** The secret to put in the link: returned once, only its hash is stored. */
  token: string;
  expiresAt: Date;
}

export type TokenCheck = { ok: true; id: string; userId: string; email: string } | { ok: false; reason: 'unknown' | 'used' | 'expired' };

/**
 * Portal sessions and emailed tokens. Secrets are random 256-bit strings; rows keep their
 * SHA-256 only (a fast hash is enough for that much entropy, and lookups go by it).
 */
export class PortalStore {
  constructor(
    private readonly s: StoreDb,
    private readonly now: () => Date,
  ) {}

  private get db() {
    return this.s.db;
  }

  private get t() {
    return this.s.t;
  }

  /** A new session for `userId`; `token` goes in the cookie. Drops the user's expired sessions on the way. */
  async createSession(userId: string, ttlMs: number): Promise<{ token: string; session: PortalSession }> {
    const { portalSessions } = this.t;
    const token = randomBase62(TOKEN_LENGTH);
    const now = this.now();
    const session = { id: newId('ses'), userId, expiresAt: new Date(now.getTime() + ttlMs) };
    await this.s.tx(async (tx) => {
      await tx.delete(portalSessions).where(and(eq(portalSessions.userId, userId), lt(portalSessions.expiresAt, now)));
      await tx.insert(portalSessions).values({ ...session, hash: sha256Hex(token), createdAt: now });
    });
    return { token, session };
  }

  /** The live session a cookie token belongs to, or undefined (unknown or expired). */
  async findSession(token: string): Promise<PortalSession | undefined> {
    const { portalSessions } = this.t;
    const [row] = await this.db
      .select({ id: portalSessions.id, userId: portalSessions.userId, expiresAt: portalSessions.expiresAt })
      .from(portalSessions)
      .where(eq(portalSessions.hash, sha256Hex(token)));
    return row && row.expiresAt > this.now() ? row : undefined;
  }

  async deleteSession(token: string): Promise<boolean> {
    const { portalSessions } = this.t;
    return affectedRows(await this.db.delete(portalSessions).where(eq(portalSessions.hash, sha256Hex(token)))) > 0;
  }

  /** Logs the user out everywhere; returns how many sessions went. */
  async deleteUserSessions(userId: string, tx: Tx = this.db): Promise<number> {
    const { portalSessions } = this.t;
    return affectedRows(await tx.delete(portalSessions).where(eq(portalSessions.userId, userId)));
  }

  /**
   * A single-use token for `purpose`, valid for `ttlMs`. Earlier unused tokens of the same
   * purpose for the user stop working, so only the newest link in the inbox does.
   */
  async issueToken(userId: string, purpose: TokenPurpose, email: string, ttlMs: number): Promise<IssuedToken> {
    const { portalTokens } = this.t;
    const token = randomBase62(TOKEN_LENGTH);
    const now = this.now();
    const issued = { id: newId('ptk'), token, expiresAt: new Date(now.getTime() + ttlMs) };
    await this.s.tx(async (tx) => {
      await this.voidTokens(tx, userId, purpose);
      // The user's tokens dead for a day go (a reused link then reads "invalid" rather than "used").
      await tx
        .delete(portalTokens)
        .where(and(eq(portalTokens.userId, userId), lt(portalTokens.expiresAt, new Date(now.getTime() - DAY_MS))));
      await tx
        .insert(portalTokens)
        .values({ id: issued.id, userId, purpose, hash: sha256Hex(token), email, createdAt: now, expiresAt: issued.expiresAt });
    });
    return issued;
  }

  /** What `consumeToken` would say, without using the token up. */
  async checkToken(token: string, purpose: TokenPurpose): Promise<TokenCheck> {
    return this.#check(this.db, token, purpose);
  }

  /**
   * Uses the token up, once: a second use (or a concurrent one) gets `used`. `then` runs in the
   * same transaction, so its writes happen only together with the consumption.
   */
  async consumeToken(
    token: string,
    purpose: TokenPurpose,
    then?: (tx: Tx, check: Extract<TokenCheck, { ok: true }>) => Promise<void>,
  ): Promise<TokenCheck> {
    const { portalTokens } = this.t;
    return this.s.tx(async (tx): Promise<TokenCheck> => {
      const check = await this.#check(tx, token, purpose);
      if (!check.ok) return check;
      // The one update that sets used_at wins; a second instance consuming the same token at once finds it used.
      const res = await tx
        .update(portalTokens)
        .set({ usedAt: this.now() })
        .where(and(eq(portalTokens.id, check.id), isNull(portalTokens.usedAt)))
        .returning({ id: portalTokens.id });
      if (res.length === 0) return { ok: false, reason: 'used' };
      await then?.(tx, check);
      return check;
    });
  }

  /** Makes every unused token of `purpose` for the user void. */
  async voidTokens(tx: Tx, userId: string, purpose: TokenPurpose): Promise<void> {
    const { portalTokens } = this.t;
    await tx
      .update(portalTokens)
      .set({ usedAt: this.now() })
      .where(and(eq(portalTokens.userId, userId), eq(portalTokens.purpose, purpose), isNull(portalTokens.usedAt)));
  }

  /** Stores a new password hash (inside a token's transaction). */
  async setPasswordHash(tx: Tx, userId: string, hash: string): Promise<void> {
    const { users } = this.t;
    await tx.update(users).set({ passwordHash: hash, updatedAt: this.now() }).where(eq(users.id, userId));
  }

  /**
   * A password change made while signed in: the new hash, every session ended and any emailed
   * reset link voided (a link sent before the change must not undo it), all or none. Returns how
   * many sessions ended.
   */
  async changePassword(userId: string, hash: string): Promise<number> {
    return this.s.tx(async (tx) => {
      await this.setPasswordHash(tx, userId, hash);
      await this.voidTokens(tx, userId, 'reset_password');
      return this.deleteUserSessions(userId, tx);
    });
  }

  /**
   * Deletes expired sessions and tokens that expired or were used before `before`. Rows are also
   * dropped per user as they sign in and ask for links, so this is only housekeeping.
   */
  async prune(before: Date = this.now()): Promise<{ sessions: number; tokens: number }> {
    const { portalSessions, portalTokens } = this.t;
    return this.s.tx(async (tx) => ({
      sessions: affectedRows(await tx.delete(portalSessions).where(lt(portalSessions.expiresAt, before))),
      tokens: affectedRows(await tx.delete(portalTokens).where(or(lt(portalTokens.expiresAt, before), lt(portalTokens.usedAt, before)))),
    }));
  }

  async #check(tx: Tx, token: string, purpose: TokenPurpose): Promise<TokenCheck> {
    const { portalTokens } = this.t;
    const [row] = await tx
      .select({
        id: portalTokens.id,
        userId: portalTokens.userId,
        email: portalTokens.email,
        expiresAt: portalTokens.expiresAt,
        usedAt: portalTokens.usedAt,
      })
      .from(portalTokens)
      .where(and(eq(portalTokens.hash, sha256Hex(token)), eq(portalTokens.purpose, purpose)));
    if (!row) return { ok: false, reason: 'unknown' };
    if (row.usedAt) return { ok: false, reason: 'used' };
    if (row.expiresAt <= this.now()) return { ok: false, reason: 'expired' };
    return { ok: true, id: row.id, userId: row.userId, email: row.email };
  }
}
