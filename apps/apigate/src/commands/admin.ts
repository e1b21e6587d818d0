import type { Command } from 'commander';
import { table } from '../output.js';
import { withJson } from './common.js';
import { output, when, withDomain } from './domain-common.js';

export function registerAdmin(program: Command): void {
  const admin = program.command('admin').description('administer the gateway');
  const token = admin.command('token').description('tokens for the admin API (Authorization: Bearer <token>)');

  withJson(
    token.command('create').description('create an admin API token and print it once').option('--name <name>', 'who or what uses it'),
  ).action(async (o: { name?: string; json?: boolean }) =>
    withDomain(
      async (d) => {
        const { adminToken, token: secret } = await d.adminTokens.create(o.name !== undefined ? { name: o.name } : {});
        output(o, { ...adminToken, token: secret }, () =>
          [
            `created admin token ${adminToken.id}${adminToken.name ? ` (${adminToken.name})` : ''}`,
            '',
            `  ${secret}`,
            '',
            'Store it now: it is shown only this once. Use it as "Authorization: Bearer <token>" on /admin.',
          ].join('\n'),
        );
      },
      { name: '--name' },
    ),
  );

  withJson(token.command('list').description('list admin tokens (prefix only)')).action(async (o: { json?: boolean }) =>
    withDomain(async (d) => {
      const all = await d.adminTokens.list();
      output(o, { data: all }, () =>
        all.length
          ? table(
              all.map((t) => ({
                ...t,
                status: t.revokedAt ? 'revoked' : 'active',
                lastUsed: when(t.lastUsedAt),
                created: when(t.createdAt),
              })),
              ['id', 'prefix', 'name', 'status', 'lastUsed', 'created'],
            )
          : 'no admin tokens; create one with `apigate admin token create`',
      );
    }),
  );

  withJson(token.command('revoke <token-id>').description('revoke an admin token: it stops working at once')).action(
    async (id: string, o: { json?: boolean }) =>
      withDomain(async (d) => {
        const t = await d.adminTokens.revoke(id);
        output(o, t, () => `revoked admin token ${t.id} (${t.prefix}...)`);
      }),
  );
}
