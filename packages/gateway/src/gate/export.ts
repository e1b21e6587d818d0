import type { StorageProvider } from '@apigate/kernel';
import { asc, eq } from 'drizzle-orm';
import { assertMonth } from '../domain/usage.js';
import type { Store } from '../domain/open-store.js';

export const USAGE_CSV_COLUMNS = [
  'month',
  'user_id',
  'email',
  'plan',
  'key_id',
  'key_prefix',
  'key_name',
  'requests',
  'errors',
  'bytes_in',
  'bytes_out',
] as const;

/** RFC 4180: quote a field that holds a comma, quote or line break; a leading =, +, - or @ is prefixed with ' so spreadsheets do not run it. */
function csvField(v: string | number | null): string {
  if (v === null) return '';
  let s = String(v);
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** One row per key that was used in `month` (users and keys deleted since keep their ids, other columns empty). */
export async function usageCsv(store: Store, month: string): Promise<{ csv: string; rows: number }> {
  assertMonth(month);
  const { apiKeys, plans, usageMonthly, users } = store.t;
  const rows = await store.db
    .select({
      userId: usageMonthly.userId,
      email: users.email,
      plan: plans.name,
      keyId: usageMonthly.keyId,
      keyPrefix: apiKeys.prefix,
      keyName: apiKeys.name,
      requests: usageMonthly.requests,
      errors: usageMonthly.errors,
      bytesIn: usageMonthly.bytesIn,
      bytesOut: usageMonthly.bytesOut,
    })
    .from(usageMonthly)
    .leftJoin(users, eq(users.id, usageMonthly.userId))
    .leftJoin(plans, eq(plans.id, users.planId))
    .leftJoin(apiKeys, eq(apiKeys.id, usageMonthly.keyId))
    .where(eq(usageMonthly.month, month))
    .orderBy(asc(usageMonthly.userId), asc(usageMonthly.keyId));
  const lines = [USAGE_CSV_COLUMNS.join(',')];
  for (const r of rows) {
    lines.push(
      [month, r.userId, r.email, r.plan, r.keyId, r.keyPrefix, r.keyName, r.requests, r.errors, r.bytesIn, r.bytesOut]
        .map(csvField)
        .join(','),
    );
  }
  return { csv: `${lines.join('\r\n')}\r\n`, rows: rows.length };
}

export interface UsageExport {
  /** The storage key, `exports/usage-YYYY-MM.csv`. */
  key: string;
  rows: number;
  bytes: number;
  /** A time-limited download link, where the storage provider can sign one. */
  signedUrl?: string;
  expiresInSeconds?: number;
}

/** Writes the month's usage CSV through the storage capability (replacing an earlier export of that month). */
export async function exportUsage(
  store: Store,
  storage: StorageProvider,
  month: string,
  opts: { expiresInSeconds?: number } = {},
): Promise<UsageExport> {
  const { csv, rows } = await usageCsv(store, month);
  const key = `exports/usage-${month}.csv`;
  const info = await storage.put(key, csv, { contentType: 'text/csv; charset=utf-8', metadata: { month, rows: String(rows) } });
  const out: UsageExport = { key, rows, bytes: info.size };
  if (typeof storage.signedUrl === 'function') {
    const expiresInSeconds = opts.expiresInSeconds ?? 3600;
    out.signedUrl = await storage.signedUrl(key, { method: 'GET', expiresInSeconds });
    out.expiresInSeconds = expiresInSeconds;
  }
  return out;
}
