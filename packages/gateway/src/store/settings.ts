import { ApigateError, hasUrlCredentials, InvalidInputError, type SettingsReader } from '@apigate/kernel';
import { asc, eq } from 'drizzle-orm';
import type { ChangeNotifier } from './changes.js';
import { decrypt, encrypt, type SecretKey } from './crypto.js';
import type { StoreDb } from './dialect.js';

export interface SettingEntry {
  key: string;
  value: string;
  /** Stored encrypted: a secret field, or a URL carrying credentials. */
  secret: boolean;
  updatedAt: Date;
}

/**
 * Settings with secrets encrypted at rest. `get`/`keys` answer synchronously from a snapshot
 * (the kernel resolves config synchronously); the snapshot is loaded at open and refreshed by
 * `set`, `unset` and `reload` (call `reload` to see writes made by another process).
 */
export interface SettingsStore extends SettingsReader {
  set(key: string, value: string, opts: { secret: boolean }): Promise<void>;
  unset(key: string): Promise<boolean>;
  /** Every setting, sorted by key, values decrypted; callers mask secrets before showing them. */
  list(): SettingEntry[];
  reload(): Promise<void>;
}

const KEY_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** The settings table (SQLite or PostgreSQL) behind an in-memory snapshot. */
export class DbSettingsStore implements SettingsStore {
  private snapshot = new Map<string, SettingEntry>();

  constructor(
    private readonly s: StoreDb,
    private readonly key: SecretKey,
    /** Told of every set/unset (entity `settings`), so running instances notice and reload. */
    private readonly changes?: ChangeNotifier,
  ) {}

  get(key: string): string | undefined {
    return this.snapshot.get(key)?.value;
  }

  keys(): string[] {
    return [...this.snapshot.keys()];
  }

  list(): SettingEntry[] {
    return [...this.snapshot.values()].map((e) => ({ ...e }));
  }

  async set(key: string, value: string, opts: { secret: boolean }): Promise<void> {
    if (!KEY_RE.test(key)) {
      throw new InvalidInputError(
        `setting key "${key}" is not valid: expected letters, digits, dots, dashes and underscores, e.g. cache.redis.url`,
      );
    }
    if (typeof value !== 'string') throw new InvalidInputError(`setting ${key}: expected a string value`);
    // A URL with a password or a secret query parameter (redis://user:pw@host) is a secret at rest too.
    const secret = opts.secret || hasUrlCredentials(value);
    const entry: SettingEntry = { key, value, secret, updatedAt: new Date() };
    const stored = secret ? encrypt(this.key.key, value, key) : value;
    const { settings } = this.s.t;
    let version: number | undefined;
    let bumped = false;
    try {
      version = await this.s.tx(async (tx) => {
        await tx
          .insert(settings)
          .values({ key, value: stored, secret, updatedAt: entry.updatedAt })
          .onConflictDoUpdate({ target: settings.key, set: { value: stored, secret, updatedAt: entry.updatedAt } });
        const v = await this.changes?.bump(tx, 'settings');
        bumped = v !== undefined;
        return v;
      });
      this.snapshot.set(key, entry);
      if (version !== undefined) this.changes?.emitted('settings', 'updated', key, version);
    } finally {
      if (bumped) this.changes?.settled('settings');
    }
  }

  async unset(key: string): Promise<boolean> {
    const { settings } = this.s.t;
    let bumped = false;
    try {
      const { deleted, version } = await this.s.tx(async (tx) => {
        const rows = await tx.delete(settings).where(eq(settings.key, key)).returning({ key: settings.key });
        const v = rows.length > 0 ? await this.changes?.bump(tx, 'settings') : undefined;
        bumped = v !== undefined;
        return { deleted: rows.length > 0, version: v };
      });
      this.snapshot.delete(key);
      if (version !== undefined) this.changes?.emitted('settings', 'deleted', key, version);
      return deleted;
    } finally {
      if (bumped) this.changes?.settled('settings');
    }
  }

  async reload(): Promise<void> {
    await this.load();
  }

  /** Reads every row; a secret that does not decrypt is an error naming its key (never its value). */
  async load(): Promise<void> {
    const { settings } = this.s.t;
    const next = new Map<string, SettingEntry>();
    for (const row of await this.s.db.select().from(settings).orderBy(asc(settings.key))) {
      let value = row.value;
      if (row.secret) {
        try {
          value = decrypt(this.key.key, row.value, row.key);
        } catch (cause) {
          throw new ApigateError(
            'SECRET_DECRYPT_FAILED',
            `setting ${row.key} cannot be decrypted with the ${this.key.source}; set it again with \`apigate settings set ${row.key} ...\``,
            { cause },
          );
        }
      }
      let secret = row.secret;
      if (!secret && hasUrlCredentials(value)) {
        // Stored in clear by an older version: encrypt it now, like `set` would.
        await this.s.db
          .update(settings)
          .set({ value: encrypt(this.key.key, value, row.key), secret: true })
          .where(eq(settings.key, row.key));
        secret = true;
      }
      next.set(row.key, { key: row.key, value, secret, updatedAt: row.updatedAt });
    }
    this.snapshot = next;
  }
}
