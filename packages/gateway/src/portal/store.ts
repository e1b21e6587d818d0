import { and, eq, isNull, lt, or } from 'drizzle-orm';
import { newId, randomBase62, sha256Hex } from '../domain/ids.js';
import type { AppDatabase } from '../store/db.js';
import { portalSessions, portalTokens, users } from '../store/schema.js';

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

export type TokenCheck =
  | { ok: true; id: string; userId: string; email: string }
  | { ok: false; reason: 'unknown' | 'used' | 'expired' };

type Tx = Parameters<Parameters<AppDatabase['transaction']>[0]>[0];

/**
 * Portal sessions and emailed tokens. Secrets are random 256-bit strings; rows keep their
 * SHA-256 only (a fast hash is enough for that much entropy, and lookups go by it).
 */
export class PortalStore {
  constructor(
    private readonly db: AppDatabase,
    private readonly now: () => Date,
  ) {}

  /** A new session for `userId`; `token` goes in the cookie. Drops the user's expired sessions on the way. */
  createSession(userId: string, ttlMs: number): { token: string; session: PortalSession } {
    const token = randomBase62(TOKEN_LENGTH);
    const now = this.now();
    const session = { id: newId('ses'), userId, expiresAt: new Date(now.getTime() + ttlMs) };
    this.db.transaction((tx) => {
      tx.delete(portalSessions)
        .where(and(eq(portalSessions.userId, userId), lt(portalSessions.expiresAt, now)))
        .run();
      tx.insert(portalSessions)
        .values({ ...session, hash: sha256Hex(token), createdAt: now })
        .run();
    });
    return { token, session };
  }

  /** The live session a cookie token belongs to, or undefined (unknown or expired). */
  findSession(token: string): PortalSession | undefined {
    const row = this.db
      .select({ id: portalSessions.id, userId: portalSessions.userId, expiresAt: portalSessions.expiresAt })
      .from(portalSessions)
      .where(eq(portalSessions.hash, sha256Hex(token)))
      .get();
    return row && row.expiresAt > this.now() ? row : undefined;
  }

  deleteSession(token: string): boolean {
    return this.db.delete(portalSessions).where(eq(portalSessions.hash, sha256Hex(token))).run().changes > 0;
  }

  /** Logs the user out everywhere; returns how many sessions went. */
  deleteUserSessions(userId: string, tx: Tx | AppDatabase = this.db): number {
    return tx.delete(portalSessions).where(eq(portalSessions.userId, userId)).run().changes;
  }

  /**
   * A single-use token for `purpose`, valid for `ttlMs`. Earlier unused tokens of the same
   * purpose for the user stop working, so only the newest link in the inbox does.
   */
  issueToken(userId: string, purpose: TokenPurpose, email: string, ttlMs: number): IssuedToken {
    const token = randomBase62(TOKEN_LENGTH);
    const now = this.now();
    const issued = { id: newId('ptk'), token, expiresAt: new Date(now.getTime() + ttlMs) };
    this.db.transaction((tx) => {
      this.voidTokens(tx, userId, purpose);
      // The user's tokens dead for a day go (a reused link then reads "invalid" rather than "used").
      tx.delete(portalTokens)
        .where(and(eq(portalTokens.userId, userId), lt(portalTokens.expiresAt, new Date(now.getTime() - DAY_MS))))
        .run();
      tx.insert(portalTokens)
        .values({ id: issued.id, userId, purpose, hash: sha256Hex(token), email, createdAt: now, expiresAt: issued.expiresAt })
        .run();
    });
    return issued;
  }

  /** What `consumeToken` would say, without using the token up. */
  checkToken(token: string, purpose: TokenPurpose): TokenCheck {
    return this.#check(this.db, token, purpose);
  }

  /**
   * Uses the token up, once: a second use (or a concurrent one) gets `used`. `then` runs in the
   * same transaction, so its writes happen only together with the consumption.
   */
  consumeToken(token: string, purpose: TokenPurpose, then?: (tx: Tx, check: Extract<TokenCheck, { ok: true }>) => void): TokenCheck {
    return this.db.transaction(
      (tx) => {
        const check = this.#check(tx, token, purpose);
        if (!check.ok) return check;
        const res = tx
          .update(portalTokens)
          .set({ usedAt: this.now() })
          .where(and(eq(portalTokens.id, check.id), isNull(portalTokens.usedAt)))
          .run();
        if (res.changes === 0) return { ok: false, reason: 'used' } as const;
        then?.(tx, check);
        return check;
      },
      { behavior: 'immediate' },
    );
  }

  /** Makes every unused token of `purpose` for the user void. */
  voidTokens(tx: Tx | AppDatabase, userId: string, purpose: TokenPurpose): void {
    tx.update(portalTokens)
      .set({ usedAt: this.now() })
      .where(and(eq(portalTokens.userId, userId), eq(portalTokens.purpose, purpose), isNull(portalTokens.usedAt)))
      .run();
  }

  /** Stores a new password hash (inside a token's transaction). */
  setPasswordHash(tx: Tx, userId: string, hash: string): void {
    tx.update(users).set({ passwordHash: hash, updatedAt: this.now() }).where(eq(users.id, userId)).run();
  }

  /**
   * Deletes expired sessions and tokens that expired or were used before `before`. Rows are also
   * dropped per user as they sign in and ask for links, so this is only housekeeping.
   */
  prune(before: Date = this.now()): { sessions: number; tokens: number } {
    return this.db.transaction((tx) => ({
      sessions: tx.delete(portalSessions).where(lt(portalSessions.expiresAt, before)).run().changes,
      tokens: tx
        .delete(portalTokens)
        .where(or(lt(portalTokens.expiresAt, before), lt(portalTokens.usedAt, before)))
        .run().changes,
    }));
  }

  #check(tx: Tx | AppDatabase, token: string, purpose: TokenPurpose): TokenCheck {
    const row = tx
      .select({ id: portalTokens.id, userId: portalTokens.userId, email: portalTokens.email, expiresAt: portalTokens.expiresAt, usedAt: portalTokens.usedAt })
      .from(portalTokens)
      .where(and(eq(portalTokens.hash, sha256Hex(token)), eq(portalTokens.purpose, purpose)))
      .get();
    if (!row) return { ok: false, reason: 'unknown' };
    if (row.usedAt) return { ok: false, reason: 'used' };
    if (row.expiresAt <= this.now()) return { ok: false, reason: 'expired' };
    return { ok: true, id: row.id, userId: row.userId, email: row.email };
  }
}
