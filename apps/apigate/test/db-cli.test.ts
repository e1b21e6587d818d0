// apigate db status | migrate | copy (issue 13) through the built CLI: SQLite status without
// changing anything, a SQLite store copied into a new PostgreSQL database (created and dropped
// here) and read back there, migration status on PostgreSQL, and one-line refusals.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { connectPostgres } from '@apigate/gateway';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, cli, ok, tempDir, tempPostgres } from './helpers.js';

let db: Awaited<ReturnType<typeof tempPostgres>>;
let target: string;
beforeAll(async () => {
  db = await tempPostgres('apigate_cli');
  target = db.url;
});
afterAll(() => db?.drop());

describe('apigate db', () => {
  it('status on SQLite changes nothing; migrate creates the file; copy fills PostgreSQL; status there', async () => {
    const dataDir = tempDir('db');
    const env = cleanEnv({ APIGATE_DATA_DIR: dataDir });
    const before = JSON.parse(await ok(['db', 'status', '--json'], env));
    expect(before).toMatchObject({ dialect: 'sqlite', applied: 0 });
    expect(before.pending.length).toBeGreaterThan(0);
    expect(existsSync(path.join(dataDir, 'apigate.db'))).toBe(false);

    expect(await ok(['db', 'migrate'], env)).toMatch(/^sqlite .*apigate\.db: \d+ migration\(s\) applied, none pending/);
    await ok(['plans', 'create', 'starter', '--rpm', '10', '--default'], env);
    await ok(['users', 'create', 'ann@example.com'], env);
    await ok(['keys', 'create', '--user', 'ann@example.com'], env);

    const copied = JSON.parse(await ok(['db', 'copy', '--to', target, '--json'], env));
    const rows = Object.fromEntries(copied.tables.map((t: { table: string; rows: number }) => [t.table, t.rows]));
    expect(rows).toMatchObject({ plans: 1, users: 1, api_keys: 1 });
    expect(copied.rows).toBeGreaterThanOrEqual(3);

    const c = await connectPostgres(target, { max: 1 });
    try {
      const r = await c.pool.query('SELECT p.name, p.requests_per_minute, u.email FROM users u JOIN plans p ON p.id = u.plan_id');
      expect(r.rows).toEqual([{ name: 'starter', requests_per_minute: '10', email: 'ann@example.com' }]);
    } finally {
      await c.close();
    }

    const pgEnv = cleanEnv({ APIGATE_DATA_DIR: dataDir, APIGATE_DATABASE_URL: target });
    const st = JSON.parse(await ok(['db', 'status', '--json'], pgEnv));
    expect(st).toMatchObject({ dialect: 'postgres', pending: [] });
    expect(st.applied).toBeGreaterThan(0);

    const again = await cli(['db', 'copy', '--to', target], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(
      /^apigate: the target database postgres:\/\/.* already has rows in \w+: copy into a new, empty database\n$/,
    );
  });

  it('refuses a database URL that is not PostgreSQL and masks a password in errors', async () => {
    const bad = await cli(['db', 'status'], cleanEnv({ APIGATE_DATABASE_URL: 'mysql://u:p@h/db' }));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe(
      'apigate: APIGATE_DATABASE_URL: expected a postgres:// or postgresql:// URL (unset it for the SQLite file in APIGATE_DATA_DIR)\n',
    );
    const down = await cli(['db', 'status'], cleanEnv({ APIGATE_DATABASE_URL: 'postgres://apigate:s3cretpass@127.0.0.1:1/x' }));
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/^apigate: cannot prepare the PostgreSQL database postgres:\/\/apigate:\*+@127\.0\.0\.1:1\/x: /);
    expect(down.stderr).not.toContain('s3cretpass');
    const help = await ok(['db', 'copy', '--help'], cleanEnv({}));
    expect(help).toContain('--to <postgres-url>');
    expect(help).toContain('--json');
  });
});
