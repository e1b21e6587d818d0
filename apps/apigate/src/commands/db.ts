import path from 'node:path';
import {
  connectPostgres,
  copySqliteToPostgres,
  DATABASE_URL_ENV,
  isPostgresUrl,
  KEY_FILE_NAME,
  type MigrationStatus,
  openPostgres,
  openStore,
  postgresMigrationStatus,
  sqliteMigrationStatus,
} from '@apigate/gateway';
import { maskUrlCredentials } from '@apigate/kernel';
import type { Command } from 'commander';
import { print, printJson, table } from '../output.js';
import { CliError, withJson } from './common.js';

export { DATABASE_URL_ENV };

type Target = { dialect: 'postgres'; url: string; where: string } | { dialect: 'sqlite'; dataDir: string };

/** APIGATE_DATABASE_URL=postgres://... selects PostgreSQL; unset, the SQLite file in APIGATE_DATA_DIR (what openRuntime opens too). */
export function databaseTarget(env: NodeJS.ProcessEnv = process.env): Target {
  const url = env[DATABASE_URL_ENV]?.trim();
  if (url) {
    if (!isPostgresUrl(url))
      throw new CliError(
        `${DATABASE_URL_ENV}: expected a postgres:// or postgresql:// URL (unset it for the SQLite file in APIGATE_DATA_DIR)`,
      );
    return { dialect: 'postgres', url, where: maskUrlCredentials(url) };
  }
  return { dialect: 'sqlite', dataDir: path.resolve(env.APIGATE_DATA_DIR?.trim() || './data') };
}

interface StatusReport extends MigrationStatus {
  dialect: 'sqlite' | 'postgres';
  database: string;
}

async function status(t: Target): Promise<StatusReport> {
  if (t.dialect === 'sqlite') {
    const s = sqliteMigrationStatus(t.dataDir);
    return { dialect: 'sqlite', database: s.file, applied: s.applied, pending: s.pending };
  }
  const pg = await connectPostgres(t.url, { max: 1 });
  try {
    return { dialect: 'postgres', database: t.where, ...(await postgresMigrationStatus(pg.db)) };
  } finally {
    await pg.close();
  }
}

const statusText = (s: StatusReport) =>
  `${s.dialect} ${s.database}: ${s.applied} migration(s) applied, ${s.pending.length ? `${s.pending.length} pending (${s.pending.join(', ')})` : 'none pending'}`;

export function registerDb(program: Command): void {
  const db = program
    .command('db')
    .description(`the database: SQLite in APIGATE_DATA_DIR, or PostgreSQL with ${DATABASE_URL_ENV}=postgres://...`);

  withJson(db.command('status').description('which database is used and its applied and pending migrations (changes nothing)')).action(
    async (o: { json?: boolean }) => {
      const s = await status(databaseTarget());
      if (o.json) printJson(s);
      else print(statusText(s));
    },
  );

  withJson(
    db
      .command('migrate')
      .description('apply pending migrations (serve also does at start; on PostgreSQL under a lock, so instances never run them twice)'),
  ).action(async (o: { json?: boolean }) => {
    const t = databaseTarget();
    if (t.dialect === 'postgres') await (await openPostgres(t.url, { max: 1 })).close();
    else
      await (
        await openStore({
          dataDir: t.dataDir,
          ...(process.env.APIGATE_SECRET_KEY?.trim() ? { secretKey: process.env.APIGATE_SECRET_KEY.trim() } : {}),
        })
      ).close();
    const s = await status(t);
    if (o.json) printJson(s);
    else print(statusText(s));
  });

  withJson(
    db
      .command('copy')
      .description('copy the SQLite database in APIGATE_DATA_DIR into a new, empty PostgreSQL database (all or nothing)')
      .requiredOption('--to <postgres-url>', 'the PostgreSQL database to fill (migrated first; must hold no rows)'),
  ).action(async (o: { to: string; json?: boolean }) => {
    if (!isPostgresUrl(o.to)) throw new CliError('--to: expected a postgres:// or postgresql:// URL');
    const { dataDir } = databaseTarget({ ...process.env, [DATABASE_URL_ENV]: '' }) as { dataDir: string };
    const counts = await copySqliteToPostgres({ dataDir, to: o.to });
    const total = counts.reduce((n, c) => n + c.rows, 0);
    if (o.json) printJson({ from: path.join(dataDir, 'apigate.db'), to: maskUrlCredentials(o.to), tables: counts, rows: total });
    else {
      print(table(counts as never, ['table', 'rows']));
      print(
        `copied ${total} rows into ${maskUrlCredentials(o.to)}. Point every instance at it with ${DATABASE_URL_ENV} and the same settings key (APIGATE_SECRET_KEY, or the value of ${path.join(dataDir, KEY_FILE_NAME)}).`,
      );
    }
  });
}
