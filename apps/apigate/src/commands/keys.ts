import type { Command } from 'commander';
import { table } from '../output.js';
import { CliError, withJson } from './common.js';
import { output, pageQuery, when, withDomain, withPaging } from './domain-common.js';

const FLAGS = { user_id: '--user', name: '--name', expires_at: '--expires' };

/** `--expires`: an ISO date/time, or a duration from now (`30d`, `12h`). */
export function parseExpiry(value: string, now = Date.now()): Date {
  const rel = /^(\d+)([dh])$/.exec(value.trim());
  if (rel) return new Date(now + Number(rel[1]) * (rel[2] === 'd' ? 86_400_000 : 3_600_000));
  const d = new Date(value);
  if (!/^\d{4}-\d\d-\d\d/.test(value) || Number.isNaN(d.getTime())) {
    throw new CliError(`--expires: expected a date (2026-01-31 or 2026-01-31T12:00:00Z) or a duration such as 30d or 12h, got "${value}"`);
  }
  return d;
}

export function registerKeys(program: Command): void {
  const keys = program.command('keys').description('manage API keys (the key is shown once, at creation)');

  withJson(
    keys
      .command('create')
      .description('create an API key for a user and print it once')
      .requiredOption('--user <user>', 'user id or email')
      .option('--name <name>', 'what the key is for, e.g. production')
      .option('--expires <when>', 'expiry: a date (2026-01-31) or a duration (30d, 12h); default never'),
  ).action(async (o: { user: string; name?: string; expires?: string; json?: boolean }) =>
    withDomain(async (d) => {
      const user = await d.users.resolve(o.user);
      const { apiKey, key } = await d.keys.create({
        userId: user.id,
        ...(o.name !== undefined ? { name: o.name } : {}),
        ...(o.expires !== undefined ? { expiresAt: parseExpiry(o.expires) } : {}),
      });
      output(o, { ...apiKey, key }, () =>
        [
          `created key ${apiKey.id} for ${user.email}${apiKey.expiresAt ? `, expires ${when(apiKey.expiresAt)}` : ''}`,
          '',
          `  ${key}`,
          '',
          'Store it now: it is shown only this once (only its hash is kept).',
        ].join('\n'),
      );
    }, FLAGS),
  );

  withJson(
    withPaging(
      keys
        .command('list')
        .description('list API keys (prefix only), oldest first')
        .option('--user <user>', "only this user's keys (id or email)")
        .option('--active', 'hide revoked and expired keys'),
    ),
  ).action(async (o: { user?: string; active?: boolean; limit: string; cursor?: string; json?: boolean }) =>
    withDomain(async (d) => {
      const userId = o.user ? (await d.users.resolve(o.user)).id : undefined;
      const page = await d.keys.list({ ...pageQuery(o), ...(userId ? { userId } : {}), ...(o.active ? { includeInactive: false } : {}) });
      output(o, { data: page.items, nextCursor: page.cursor ?? null }, () => {
        if (!page.items.length) return 'no keys';
        const rows = page.items.map((k) => ({
          ...k,
          user: k.userId,
          lastUsed: when(k.lastUsedAt),
          expires: when(k.expiresAt),
          created: when(k.createdAt),
        }));
        return (
          table(rows, ['id', 'prefix', 'user', 'name', 'status', 'lastUsed', 'expires', 'created']) +
          (page.cursor ? `\nmore: --cursor ${page.cursor}` : '')
        );
      });
    }),
  );

  withJson(keys.command('revoke <key-id>').description('revoke a key: it stops working at once')).action(
    async (id: string, o: { json?: boolean }) =>
      withDomain(async (d) => {
        const key = await d.keys.revoke(id);
        output(o, key, () => `revoked key ${key.id} (${key.prefix}...) at ${when(key.revokedAt)}`);
      }),
  );
}
