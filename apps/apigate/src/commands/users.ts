import type { Domain, User } from '@apigate/gateway';
import type { Command } from 'commander';
import { table } from '../output.js';
import { CliError, withJson } from './common.js';
import { output, pageQuery, when, withDomain, withPaging } from './domain-common.js';

const FLAGS = { plan_id: '--plan', name: '--name' };

async function planNames(d: Domain): Promise<Map<string, string>> {
  return new Map((await d.plans.list()).map((p) => [p.id, p.name]));
}

function userLines(u: User, plan: string): string {
  return table(
    [
      { field: 'id', value: u.id },
      { field: 'email', value: u.email },
      { field: 'name', value: u.name },
      { field: 'status', value: u.status },
      { field: 'plan', value: `${plan} (${u.planId})` },
      { field: 'email verified', value: u.emailVerified ? 'yes' : 'no' },
      { field: 'created', value: when(u.createdAt) },
    ],
    ['field', 'value'],
  );
}

export function registerUsers(program: Command): void {
  const users = program.command('users').description('manage the customers who call your API');

  withJson(
    users
      .command('create <email>')
      .description('create a user (on the default plan unless --plan is given)')
      .option('--name <name>', 'display name')
      .option('--plan <plan>', 'plan id or name'),
  ).action(async (email: string, o: { name?: string; plan?: string; json?: boolean }) =>
    withDomain(async (d) => {
      const planId = o.plan ? (await d.plans.resolve(o.plan)).id : undefined;
      const user = await d.users.create({ email, ...(o.name !== undefined ? { name: o.name } : {}), ...(planId ? { planId } : {}) });
      const plan = await d.plans.get(user.planId);
      output(o, user, () => `created user ${user.id} <${user.email}> on plan ${plan.name} (${plan.id})`);
    }, FLAGS),
  );

  withJson(
    withPaging(
      users
        .command('list')
        .description('list users, oldest first')
        .option('--status <status>', 'only active or suspended users')
        .option('--plan <plan>', 'only users on this plan (id or name)'),
    ),
  ).action(async (o: { status?: string; plan?: string; limit: string; cursor?: string; json?: boolean }) =>
    withDomain(async (d) => {
      if (o.status !== undefined && o.status !== 'active' && o.status !== 'suspended')
        throw new CliError('--status: expected active or suspended');
      const planId = o.plan ? (await d.plans.resolve(o.plan)).id : undefined;
      const page = await d.users.list({
        ...pageQuery(o),
        ...(o.status ? { status: o.status as User['status'] } : {}),
        ...(planId ? { planId } : {}),
      });
      const names = await planNames(d);
      output(o, { data: page.items, nextCursor: page.cursor ?? null }, () => {
        if (!page.items.length) return 'no users';
        const rows = page.items.map((u) => ({ ...u, plan: names.get(u.planId) ?? u.planId, created: when(u.createdAt) }));
        return table(rows, ['id', 'email', 'name', 'status', 'plan', 'created']) + (page.cursor ? `\nmore: --cursor ${page.cursor}` : '');
      });
    }),
  );

  withJson(users.command('get <user>').description('show one user (by id or email)')).action(async (ref: string, o: { json?: boolean }) =>
    withDomain(async (d) => {
      const user = await d.users.resolve(ref);
      const plan = await d.plans.get(user.planId);
      output(o, user, () => userLines(user, plan.name));
    }),
  );

  for (const [name, verb, past] of [
    ['suspend', 'suspend a user: their keys answer 403 until activated', 'suspended'],
    ['activate', 'activate a suspended user', 'activated'],
  ] as const) {
    withJson(users.command(`${name} <user>`).description(verb)).action(async (ref: string, o: { json?: boolean }) =>
      withDomain(async (d) => {
        const id = (await d.users.resolve(ref)).id;
        const user = name === 'suspend' ? await d.users.suspend(id) : await d.users.activate(id);
        output(o, user, () => `${past} user ${user.id} <${user.email}>`);
      }),
    );
  }

  withJson(users.command('delete <user>').description('delete a user and their keys and subscriptions (usage history stays)')).action(
    async (ref: string, o: { json?: boolean }) =>
      withDomain(async (d) => {
        const user = await d.users.resolve(ref);
        await d.users.delete(user.id);
        output(o, { id: user.id, deleted: true }, () => `deleted user ${user.id} <${user.email}>`);
      }),
  );
}
