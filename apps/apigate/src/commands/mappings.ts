import type { Command } from 'commander';
import { print, printJson, table } from '../output.js';
import { openRuntime } from '../runtime.js';
import { CliError, withJson } from './common.js';
import { pageQuery, withPaging } from './domain-common.js';

export function registerMappings(program: Command): void {
  const mappings = program.command('provider-mappings').description('links between local entities and their ids at a provider');

  withJson(
    withPaging(
      mappings
        .command('list')
        .description('list mappings of one provider')
        .requiredOption('--provider <name>', 'provider name, e.g. stripe')
        .option('--entity <type>', 'entity type, e.g. user, plan, subscription'),
    ),
  ).action(async (o: { provider: string; entity?: string; limit: string; cursor?: string; json?: boolean }) => {
    const query = pageQuery(o);
    const rt = await openRuntime();
    try {
      const page = await rt.store.mappings.list({ provider: o.provider, ...query, ...(o.entity ? { entityType: o.entity } : {}) });
      if (o.json) printJson(page);
      else {
        print(
          page.items.length ? table(page.items as never, ['provider', 'entityType', 'localId', 'externalId', 'createdAt']) : 'no mappings',
        );
        if (page.cursor) print(`more: --cursor ${page.cursor}`);
      }
    } finally {
      await rt.close();
    }
  });

  withJson(
    mappings
      .command('lookup <provider> <entity> <id>')
      .description('find the external id of a local entity (or, with --external, the local id of an external one)')
      .option('--external', 'treat <id> as the provider-side id and print the local id'),
  ).action(async (provider: string, entity: string, id: string, o: { external?: boolean; json?: boolean }) => {
    const rt = await openRuntime();
    try {
      const m = o.external
        ? await rt.store.mappings.findLocal(provider, entity, id)
        : await rt.store.mappings.findExternal(provider, entity, id);
      if (!m)
        throw new CliError(`no ${provider} mapping for ${entity} ${o.external ? 'with external id' : ''} ${id}`.replace(/\s+/g, ' '), 3);
      if (o.json) printJson(m);
      else print(o.external ? m.localId : m.externalId);
    } finally {
      await rt.close();
    }
  });
}
