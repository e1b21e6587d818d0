import type { Route, UpdateRouteInput } from '@apigate/gateway';
import type { Command } from 'commander';
import { table } from '../output.js';
import { CliError, withJson } from './common.js';
import { intFlag, output, withDomain } from './domain-common.js';

const FLAGS = { methods: '--methods', timeout_ms: '--timeout-ms' };
const UPDATE_FLAGS = { ...FLAGS, path_prefix: '--path-prefix', upstream_url: '--upstream' };

const methodsFlag = (v: string) => (v === 'all' || v === '' ? [] : v.split(',').map((m) => m.trim()));
const timeoutFlag = (v: string) => intFlag(v, '--timeout-ms', { nullWord: 'default' });

const row = (r: Route) => ({
  id: r.id,
  prefix: r.pathPrefix,
  upstream: r.upstreamUrl,
  strip: r.stripPrefix ? 'yes' : 'no',
  methods: r.methods.length ? r.methods.join(',') : 'all',
  timeout: r.timeoutMs === null ? 'default' : `${r.timeoutMs}ms`,
  enabled: r.enabled ? 'yes' : 'no',
});
const COLUMNS = ['id', 'prefix', 'upstream', 'strip', 'methods', 'timeout', 'enabled'];

export function registerRoutes(program: Command): void {
  const routes = program.command('routes').description('manage routes: which path prefix goes to which upstream');

  withJson(
    routes
      .command('add <path-prefix> <upstream-url>')
      .description('route requests under a path prefix to an upstream URL')
      .option('--strip-prefix', 'remove the prefix before forwarding (/weather/today -> /today)')
      .option('--methods <list>', 'allowed methods, comma separated (default all)')
      .option('--timeout-ms <ms>', 'upstream timeout (default: the gateway default)')
      .option('--disabled', 'create it switched off'),
  ).action(
    async (
      pathPrefix: string,
      upstreamUrl: string,
      o: { stripPrefix?: boolean; methods?: string; timeoutMs?: string; disabled?: boolean; json?: boolean },
    ) =>
      withDomain(async (d) => {
        const route = await d.routes.create({
          pathPrefix,
          upstreamUrl,
          stripPrefix: !!o.stripPrefix,
          enabled: !o.disabled,
          ...(o.methods !== undefined ? { methods: methodsFlag(o.methods) } : {}),
          ...(o.timeoutMs !== undefined ? { timeoutMs: timeoutFlag(o.timeoutMs) } : {}),
        });
        output(o, route, () => `added route ${route.id}: ${route.pathPrefix} -> ${route.upstreamUrl}`);
      }, FLAGS),
  );

  withJson(routes.command('list').description('list routes, longest prefix (matched first) first')).action(async (o: { json?: boolean }) =>
    withDomain(async (d) => {
      const all = await d.routes.list();
      output(o, { data: all }, () =>
        all.length ? table(all.map(row), COLUMNS) : 'no routes; add one with `apigate routes add <path-prefix> <upstream-url>`',
      );
    }),
  );

  withJson(
    routes
      .command('update <route>')
      .description('change a route (by id or path prefix)')
      .option('--path-prefix <prefix>', 'new path prefix')
      .option('--upstream <url>', 'new upstream URL')
      .option('--strip-prefix', 'remove the prefix before forwarding')
      .option('--no-strip-prefix', 'forward the path unchanged')
      .option('--methods <list>', 'allowed methods, comma separated, or "all"')
      .option('--timeout-ms <ms>', 'upstream timeout, or "default"')
      .option('--enable', 'switch the route on')
      .option('--disable', 'switch the route off'),
  ).action(
    async (
      ref: string,
      o: {
        pathPrefix?: string;
        upstream?: string;
        stripPrefix?: boolean;
        methods?: string;
        timeoutMs?: string;
        enable?: boolean;
        disable?: boolean;
        json?: boolean;
      },
    ) =>
      withDomain(async (d) => {
        if (o.enable && o.disable) throw new CliError('--enable and --disable: give one of them');
        const patch: UpdateRouteInput = {};
        if (o.pathPrefix !== undefined) patch.pathPrefix = o.pathPrefix;
        if (o.upstream !== undefined) patch.upstreamUrl = o.upstream;
        if (o.stripPrefix !== undefined) patch.stripPrefix = o.stripPrefix;
        if (o.methods !== undefined) patch.methods = methodsFlag(o.methods);
        if (o.timeoutMs !== undefined) patch.timeoutMs = timeoutFlag(o.timeoutMs);
        if (o.enable || o.disable) patch.enabled = !!o.enable;
        if (Object.keys(patch).length === 0) throw new CliError('nothing to change: give at least one option (see --help)');
        const route = await d.routes.update((await d.routes.resolve(ref)).id, patch);
        output(o, route, () => `updated route ${route.id}\n${table([row(route)], COLUMNS)}`);
      }, UPDATE_FLAGS),
  );

  withJson(routes.command('remove <route>').description('remove a route (by id or path prefix)')).action(
    async (ref: string, o: { json?: boolean }) =>
      withDomain(async (d) => {
        const route = await d.routes.resolve(ref);
        await d.routes.delete(route.id);
        output(o, { id: route.id, deleted: true }, () => `removed route ${route.id} (${route.pathPrefix})`);
      }),
  );
}
