import { exportUsage, monthOf } from '@apigate/gateway';
import type { Command } from 'commander';
import { print } from '../output.js';
import { CliError, withJson } from './common.js';
import { withKernel } from './queue.js';

/** `apigate usage export --month YYYY-MM`: the month's usage per key as CSV, written through the storage capability. */
export function registerUsageExport(usage: Command): void {
  withJson(
    usage
      .command('export')
      .description('write a month of usage (one row per key) as CSV to storage, at exports/usage-YYYY-MM.csv')
      .option('--month <YYYY-MM>', 'UTC month (default: this month)')
      .option('--expires <seconds>', 'lifetime of the signed download URL, where the storage provider makes one', '3600'),
  ).action(async (o: { month?: string; expires: string; json?: boolean }) => {
    const month = o.month ?? monthOf(new Date());
    if (!/^\d{4}-(0[1-9]|1[0-2])$/.test(month)) throw new CliError(`--month: expected YYYY-MM such as 2025-01, got "${month}"`);
    const expiresInSeconds = Number(o.expires);
    if (!Number.isInteger(expiresInSeconds) || expiresInSeconds < 1 || expiresInSeconds > 604_800) {
      throw new CliError('--expires: expected a whole number of seconds from 1 to 604800 (7 days)');
    }
    await withKernel(['storage'], async (rt, kernel) => {
      const active = kernel.selected('storage');
      const storage = kernel.tryGet('storage');
      if (!active || !storage)
        throw new CliError('no storage provider is selected (STORAGE_PROVIDER=none); set STORAGE_PROVIDER to disk or s3');
      const persistent = active.features.persistent === true;
      const out = await exportUsage(rt.store, storage, month, { expiresInSeconds });
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ month, storage: active.name, ...out, persistent }, null, 2)}\n`);
      } else {
        print(`exported ${out.rows} rows (${out.bytes} bytes) of ${month} usage to ${out.key} on storage/${active.name}`);
        if (out.signedUrl) print(`download (valid ${out.expiresInSeconds} s): ${out.signedUrl}`);
      }
      if (!persistent) {
        process.stderr.write(
          `warning: storage/${active.name} keeps objects in this process only, so the export is gone when this command ends; use STORAGE_PROVIDER=disk or s3\n`,
        );
      }
    });
  });
}
