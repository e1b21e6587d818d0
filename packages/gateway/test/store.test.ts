import { chmod, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { ApigateError, createLogger } from '@apigate/kernel';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { MIGRATIONS_DIR, openStore, type Store } from '../src/index.js';
import pg from 'pg';
import { KEY_A, KEY_B, tempDir } from './helpers.js';
import { DIALECTS, domainStore, type TestDialect, testPostgresUrl } from './helpers/domain.js';

async function withStore<T>(opts: Parameters<typeof openStore>[0], fn: (s: Store) => Promise<T>): Promise<T> {
  const store = await openStore(opts);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/**
 * Rows of `sql` read past the store: SQLite's file, or the file's PostgreSQL database (`$1` params
 * become `?` on SQLite; booleans come back as 0/1 on both).
 */
async function rawRows(dialect: TestDialect, dataDir: string, sql: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
  const bits = (rows: Record<string, unknown>[]) =>
    rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'boolean' ? Number(v) : v])));
  if (dialect === 'postgres') {
    const c = new pg.Client({ connectionString: await testPostgresUrl() });
    await c.connect();
    try {
      return bits((await c.query(sql, params)).rows);
    } finally {
      await c.end();
    }
  }
  const db = new Database(path.join(dataDir, 'apigate.db'));
  try {
    const stmt = db.prepare(sql.replace(/\$\d+/g, '?').replace(/= false\b/g, '= 0'));
    if (stmt.reader) return stmt.all(...params) as Record<string, unknown>[];
    stmt.run(...params);
    return [];
  } finally {
    db.close();
  }
}

/** A data dir whose database is new and empty (PostgreSQL: the file's database, emptied). */
async function freshDb(dialect: TestDialect): Promise<string> {
  const { store, dataDir } = await domainStore({ dialect });
  await store.close();
  return dataDir;
}

const urlFor = async (dialect: TestDialect) => (dialect === 'postgres' ? { databaseUrl: await testPostgresUrl() } : {});

/** A pino logger whose lines land in an array, to assert on warnings. */
function captureLogger() {
  const lines: { level: number; msg: string }[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  const logger = createLogger({ level: 'debug', destination });
  return { logger, lines };
}

describe('openStore', () => {
  it('creates the data dir and the database in WAL mode, and applies the migrations', async () => {
    const dataDir = path.join(await tempDir(), 'nested', 'data');
    await withStore({ dataDir, secretKey: KEY_A }, async (store) => {
      expect(store.file).toBe(path.join(dataDir, 'apigate.db'));
    });
    const tables = (await rawRows('sqlite', dataDir, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")).map(
      (r) => r.name,
    );
    expect(tables).toEqual(expect.arrayContaining(['meta', 'provider_mappings', 'settings', '__drizzle_migrations']));
    const db = new Database(path.join(dataDir, 'apigate.db'));
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    const uniques = db.prepare('SELECT name FROM pragma_index_list(\'provider_mappings\') WHERE "unique" = 1').all();
    db.close();
    expect(uniques).toHaveLength(2);
  });

  it('creates apigate.db and its -wal and -shm files owner-only (0600), whatever the umask', async () => {
    const dataDir = await tempDir();
    const before = process.umask(0o022); // the usual default: files 0644
    try {
      await withStore({ dataDir, secretKey: KEY_A }, async (store) => {
        await store.settings.set('cache.provider', 'redis', { secret: false }); // WAL in use
        for (const f of ['apigate.db', 'apigate.db-wal', 'apigate.db-shm']) {
          expect((await stat(path.join(dataDir, f))).mode & 0o777, f).toBe(0o600);
        }
      });
    } finally {
      process.umask(before);
    }
    // An existing database someone loosened is left as it is, with a warning.
    await chmod(path.join(dataDir, 'apigate.db'), 0o644);
    const { logger, lines } = captureLogger();
    await withStore({ dataDir, secretKey: KEY_A, logger }, async () => {});
    expect(lines.some((l) => l.level === 40 && /readable by group or others; chmod 600 it/.test(l.msg))).toBe(true);
  });

  it('has an install id, made once and kept across opens', async () => {
    const dataDir = await tempDir();
    const first = await withStore({ dataDir, secretKey: KEY_A }, async (s) => s.installId);
    expect(first).toMatch(/^[0-9a-f]{16}$/);
    expect(await withStore({ dataDir, secretKey: KEY_A }, async (s) => s.installId)).toBe(first);
    expect(await withStore({ dataDir: await tempDir(), secretKey: KEY_A }, async (s) => s.installId)).not.toBe(first);
  });

  it('reopens an existing database without re-running migrations', async () => {
    const dataDir = await tempDir();
    await withStore({ dataDir, secretKey: KEY_A }, async (s) => s.settings.set('cache.provider', 'redis', { secret: false }));
    await withStore({ dataDir, secretKey: KEY_A }, async (s) => {
      expect(s.settings.get('cache.provider')).toBe('redis');
    });
    // One row per committed migration, each applied once.
    const journal = JSON.parse(await readFile(path.join(MIGRATIONS_DIR, 'meta', '_journal.json'), 'utf8')) as { entries: unknown[] };
    expect(await rawRows('sqlite', dataDir, 'SELECT * FROM __drizzle_migrations')).toHaveLength(journal.entries.length);
  });

  it('close() is idempotent', async () => {
    const store = await openStore({ dataDir: await tempDir(), secretKey: KEY_A });
    await store.close();
    await expect(store.close()).resolves.toBeUndefined();
  });
});

describe.each(DIALECTS)('%s', (dialect) => {
  describe('settings', () => {
    it('set, get, keys, list, unset', async () => {
      await withStore({ dataDir: await freshDb(dialect), secretKey: KEY_A, ...(await urlFor(dialect)) }, async ({ settings }) => {
        expect(settings.get('cache.provider')).toBeUndefined();
        await settings.set('cache.provider', 'redis', { secret: false });
        await settings.set('payment.stripe.secret_key', 'sk_test_123456789', { secret: true });
        expect(settings.get('cache.provider')).toBe('redis');
        expect(settings.get('payment.stripe.secret_key')).toBe('sk_test_123456789');
        expect(settings.keys().sort()).toEqual(['cache.provider', 'payment.stripe.secret_key']);

        const list = settings.list();
        expect(list.map((e) => [e.key, e.value, e.secret])).toEqual([
          ['cache.provider', 'redis', false],
          ['payment.stripe.secret_key', 'sk_test_123456789', true],
        ]);
        expect(list[0]!.updatedAt).toBeInstanceOf(Date);

        await settings.set('cache.provider', 'memory', { secret: false });
        expect(settings.get('cache.provider')).toBe('memory');

        expect(await settings.unset('cache.provider')).toBe(true);
        expect(await settings.unset('cache.provider')).toBe(false);
        expect(settings.get('cache.provider')).toBeUndefined();
        expect(settings.keys()).toEqual(['payment.stripe.secret_key']);
      });
    });

    it('rejects a malformed key with one line', async () => {
      await withStore({ dataDir: await freshDb(dialect), secretKey: KEY_A, ...(await urlFor(dialect)) }, async ({ settings }) => {
        await expect(settings.set('bad key!', 'x', { secret: false })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
      });
    });

    it('stores secrets encrypted: the plaintext never reaches the file', async () => {
      const dataDir = await freshDb(dialect);
      const plaintext = 'sk_live_super_secret_value_42';
      await withStore({ dataDir, secretKey: KEY_A, ...(await urlFor(dialect)) }, async ({ settings }) => {
        await settings.set('payment.stripe.secret_key', plaintext, { secret: true });
        await settings.set('email.smtp.host', 'mail.example.com', { secret: false });
      });
      const rows = await rawRows(dialect, dataDir, 'SELECT key, value, secret FROM settings ORDER BY key');
      const secretRow = rows.find((r) => r.key === 'payment.stripe.secret_key')!;
      expect(secretRow.secret).toBe(1);
      expect(secretRow.value).toMatch(/^v1:[A-Za-z0-9_-]{16}:[A-Za-z0-9_-]{22}:[A-Za-z0-9_-]+$/);
      expect(String(secretRow.value)).not.toContain(plaintext);
      expect(rows.find((r) => r.key === 'email.smtp.host')!.value).toBe('mail.example.com');
      // Nor anywhere in the database or its write-ahead log.
      for (const f of dialect === 'sqlite' ? ['apigate.db', 'apigate.db-wal'] : []) {
        const bytes = await readFile(path.join(dataDir, f)).catch(() => Buffer.alloc(0));
        expect(bytes.includes(Buffer.from(plaintext))).toBe(false);
      }
    });

    it('stores a URL carrying a password or secret query parameter encrypted, and encrypts one an older version stored in clear', async () => {
      const dataDir = await freshDb(dialect);
      const password = 'redis-url-password-4242';
      await withStore({ dataDir, secretKey: KEY_A, ...(await urlFor(dialect)) }, async ({ settings }) => {
        await settings.set('cache.redis.url', `redis://app:${password}@cache.internal:6379`, { secret: false });
        await settings.set('storage.s3.endpoint', 'https://s3.local?token=tok-5151', { secret: false });
        await settings.set('queue.redis.url', 'redis://cache.internal:6379', { secret: false });
        expect(
          settings
            .list()
            .map((e) => [e.key, e.secret])
            .sort(),
        ).toEqual([
          ['cache.redis.url', true],
          ['queue.redis.url', false],
          ['storage.s3.endpoint', true],
        ]);
      });
      const rows = await rawRows(dialect, dataDir, 'SELECT key, value, secret FROM settings ORDER BY key');
      expect(rows.map((r) => r.secret)).toEqual([1, 0, 1]);
      expect(JSON.stringify(rows)).not.toContain(password);
      expect(JSON.stringify(rows)).not.toContain('tok-5151');

      // A row written in clear (before this rule) is encrypted the next time the store loads.
      await rawRows(dialect, dataDir, "UPDATE settings SET value = $1, secret = false WHERE key = 'cache.redis.url'", [
        `redis://app:${password}@old:6379`,
      ]);
      await withStore({ dataDir, secretKey: KEY_A, ...(await urlFor(dialect)) }, async ({ settings }) => {
        expect(settings.get('cache.redis.url')).toBe(`redis://app:${password}@old:6379`);
      });
      const after = (await rawRows(dialect, dataDir, "SELECT value, secret FROM settings WHERE key = 'cache.redis.url'"))[0]!;
      expect(after.secret).toBe(1);
      expect(String(after.value)).not.toContain(password);
    });

    it('uses a fresh IV per value', async () => {
      const dataDir = await freshDb(dialect);
      await withStore({ dataDir, secretKey: KEY_A, ...(await urlFor(dialect)) }, async ({ settings }) => {
        await settings.set('a.b.one', 'same', { secret: true });
        await settings.set('a.b.two', 'same', { secret: true });
      });
      const [one, two] = (await rawRows(dialect, dataDir, 'SELECT value FROM settings ORDER BY key')).map((r) => String(r.value));
      expect(one!.split(':')[1]).not.toBe(two!.split(':')[1]);
    });

    it('reopening with the same key reads secrets back', async () => {
      const dataDir = await freshDb(dialect);
      await withStore({ dataDir, secretKey: KEY_A, ...(await urlFor(dialect)) }, ({ settings }) =>
        settings.set('cache.redis.url', 'redis://:pw@host:6379', { secret: true }),
      );
      await withStore({ dataDir, secretKey: KEY_A, ...(await urlFor(dialect)) }, async ({ settings }) => {
        expect(settings.get('cache.redis.url')).toBe('redis://:pw@host:6379');
        expect(settings.list()[0]!.secret).toBe(true);
      });
    });

    it('reload() picks up writes made by another process', async () => {
      const dataDir = await freshDb(dialect);
      await withStore({ dataDir, secretKey: KEY_A, ...(await urlFor(dialect)) }, async (server) => {
        await withStore({ dataDir, secretKey: KEY_A, ...(await urlFor(dialect)) }, (cli) =>
          cli.settings.set('cache.provider', 'redis', { secret: false }),
        );
        expect(server.settings.get('cache.provider')).toBeUndefined();
        await server.settings.reload();
        expect(server.settings.get('cache.provider')).toBe('redis');
      });
    });
  });
});

describe('secret key', () => {
  it('without APIGATE_SECRET_KEY creates <dataDir>/secret.key with mode 0600 and reuses it', async () => {
    const dataDir = await tempDir();
    await withStore({ dataDir }, ({ settings }) => settings.set('a.b.c', 'hidden-value', { secret: true }));
    const keyFile = path.join(dataDir, 'secret.key');
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    const material = (await readFile(keyFile, 'utf8')).trim();
    expect(Buffer.from(material, 'base64url')).toHaveLength(32);

    await withStore({ dataDir }, async ({ settings }) => expect(settings.get('a.b.c')).toBe('hidden-value'));
    expect((await readFile(keyFile, 'utf8')).trim()).toBe(material);
    // The file's text works as APIGATE_SECRET_KEY too, so a deployment can move the key into its env.
    await withStore({ dataDir: dataDir, secretKey: material }, async ({ settings }) => expect(settings.get('a.b.c')).toBe('hidden-value'));
  });

  it('does not create a key file when APIGATE_SECRET_KEY is given', async () => {
    const dataDir = await tempDir();
    await withStore({ dataDir, secretKey: KEY_A }, async () => undefined);
    await expect(stat(path.join(dataDir, 'secret.key'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('warns, without refusing, when the key file is readable by group or others', async () => {
    const dataDir = await tempDir();
    await withStore({ dataDir }, async () => undefined);
    await chmod(path.join(dataDir, 'secret.key'), 0o644);
    const { logger, lines } = captureLogger();
    await withStore({ dataDir, logger }, async () => undefined);
    const warning = lines.find((l) => l.level === 40);
    expect(warning?.msg).toContain('chmod 600');
  });

  it('a short APIGATE_SECRET_KEY is a one-line error naming the variable', async () => {
    const err = await openStore({ dataDir: await tempDir(), secretKey: 'too-short' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApigateError);
    expect((err as ApigateError).code).toBe('SECRET_KEY_INVALID');
    expect((err as Error).message).toMatch(/^APIGATE_SECRET_KEY is too short .*at least 32 characters/);
    expect((err as Error).message).not.toContain('\n');
    expect((err as Error).message).not.toContain('too-short');
  });

  it('a wrong APIGATE_SECRET_KEY fails at open with one line that shows no key and no value', async () => {
    const dataDir = await tempDir();
    await withStore({ dataDir, secretKey: KEY_A }, ({ settings }) => settings.set('a.b.c', 'hidden-value', { secret: true }));
    const err = await openStore({ dataDir, secretKey: KEY_B }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApigateError);
    const e = err as ApigateError;
    expect(e.code).toBe('SECRET_KEY_MISMATCH');
    expect(e.message).toMatch(/^APIGATE_SECRET_KEY does not decrypt the stored settings \(.*\); set the key they were written with$/);
    for (const leaked of [KEY_A, KEY_B, 'hidden-value']) expect(e.message).not.toContain(leaked);
    // The right key still opens it: a failed open changes nothing.
    await withStore({ dataDir, secretKey: KEY_A }, async ({ settings }) => expect(settings.get('a.b.c')).toBe('hidden-value'));
  });

  it('detects a wrong key even before any secret setting exists (check value in meta)', async () => {
    const dataDir = await tempDir();
    await withStore({ dataDir, secretKey: KEY_A }, async () => undefined);
    await expect(openStore({ dataDir, secretKey: KEY_B })).rejects.toMatchObject({ code: 'SECRET_KEY_MISMATCH' });
  });

  it('refuses to make a new key file when encrypted settings exist and the old one is gone', async () => {
    const dataDir = await tempDir();
    await withStore({ dataDir }, ({ settings }) => settings.set('a.b.c', 'hidden-value', { secret: true }));
    await writeFile(path.join(dataDir, 'secret.key'), '');
    await expect(openStore({ dataDir })).rejects.toMatchObject({ code: 'SECRET_KEY_INVALID' });
    await rm(path.join(dataDir, 'secret.key'));
    const err = (await openStore({ dataDir }).catch((e: unknown) => e)) as ApigateError;
    expect(err.code).toBe('SECRET_KEY_MISSING');
    expect(err.message).toContain('secret.key');
    await expect(stat(path.join(dataDir, 'secret.key'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
