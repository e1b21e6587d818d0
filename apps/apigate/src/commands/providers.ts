import { CAPABILITIES, type CapabilityName, type HealthReport, selectProviders } from '@apigate/kernel';
import type { Command } from 'commander';
import { print, printJson, table } from '../output.js';
import { assertNoPluginProblems, loadAllDefinitions, openRuntime, startKernel } from '../runtime.js';
import { withJson } from './common.js';

export function registerProviders(program: Command): void {
  const providers = program.command('providers').description('inspect and test the installed providers');

  withJson(
    providers
      .command('list')
      .description('list discovered provider packages, which one is selected, and any problems; exits 1 when it reports a problem'),
  ).action(async (o: { json?: boolean }) => {
    const rt = await openRuntime();
    try {
      const { problems: loadProblems } = await loadAllDefinitions(rt.catalog);
      const selected = new Map<CapabilityName, string[]>();
      const selectionErrors: string[] = [];
      for (const cap of CAPABILITIES) {
        try {
          selected.set(cap, selectProviders(cap, rt.env, rt.store.settings).names);
        } catch (err) {
          selectionErrors.push((err as Error).message);
        }
      }
      const rows = rt.catalog.packages.flatMap((pkg) =>
        pkg.provides.map((p) => ({
          capability: p.capability,
          name: p.name,
          selected: selected.get(p.capability)?.includes(p.name) ?? false,
          package: pkg.packageName,
          version: pkg.version,
          source: pkg.source,
          description: p.description ?? '',
          ...(pkg.overrides ? { overrides: pkg.overrides } : {}),
        })),
      );
      rows.sort((a, b) => CAPABILITIES.indexOf(a.capability) - CAPABILITIES.indexOf(b.capability) || a.name.localeCompare(b.name));
      const problems = [...rt.catalog.problems, ...loadProblems].map((p) => ({ kind: p.kind, package: p.packageName, message: p.message }));
      // `serve` refuses to start on any of these, so a script checking an install must see them too.
      if (problems.length || selectionErrors.length) process.exitCode = 1;
      if (o.json) {
        printJson({ providers: rows, problems, selectionErrors });
        return;
      }
      print(
        table(
          rows.map((r) => ({ ...r, selected: r.selected ? '*' : '' })),
          ['capability', 'name', 'selected', 'package', 'version', 'source'],
        ),
      );
      for (const pkg of rt.catalog.packages.filter((p) => p.overrides)) {
        print(`note: ${pkg.packageName} ${pkg.version} from the plugin path (${pkg.dir}) replaces the bundled ${pkg.overrides!.version}`);
      }
      for (const p of problems) print(`problem (${p.kind}): ${p.message}`);
      for (const e of selectionErrors) print(`problem (config): ${e}`);
    } finally {
      await rt.close();
    }
  });

  const test = withJson(
    providers.command('test').description('build the selected providers and run their health checks; exits 1 when any fails'),
  );
  for (const cap of CAPABILITIES) test.option(`--${cap}`, `test the ${cap} provider`);
  test.action(async (o: Record<string, boolean | undefined>) => {
    const only = CAPABILITIES.filter((c) => o[c]);
    const rt = await openRuntime();
    let report: HealthReport;
    try {
      // The same refusal as `serve`: a broken or duplicate plugin is reported even when unselected.
      assertNoPluginProblems(rt.catalog);
      const kernel = await startKernel(rt, only.length ? only : undefined);
      try {
        report = await kernel.health(only.length ? only : undefined);
      } finally {
        await kernel.close();
      }
    } finally {
      await rt.close();
    }
    const failed = Object.values(report.providers).some((p) => p.status === 'error');
    if (o.json) printJson(report);
    else {
      const rows = Object.entries(report.providers).map(([capability, p]) => ({
        capability,
        provider: p.provider ?? '-',
        status: p.status,
        latency: p.latency_ms === undefined ? '' : `${p.latency_ms} ms`,
        detail: p.error ?? p.detail ?? '',
      }));
      print(table(rows, ['capability', 'provider', 'status', 'latency', 'detail']));
    }
    if (failed) process.exitCode = 1;
  });
}
