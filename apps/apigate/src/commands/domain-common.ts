import { type Domain, isDomainError, toWire } from '@apigate/gateway';
import type { Command } from 'commander';
import { print, printJson } from '../output.js';
import { openRuntime } from '../runtime.js';
import { CliError } from './common.js';

/** Exit code for "no such user / plan / key / route", as `provider-mappings lookup` uses. */
export const EXIT_NOT_FOUND = 3;

/**
 * Opens the store, runs `fn` with the domain, closes the store. A domain error becomes one
 * line; where it names an input field the command took from a flag, the flag is named instead
 * (`plan: requests_per_minute: ...` -> `--rpm: ...`).
 */
export async function withDomain<T>(fn: (d: Domain) => Promise<T>, flags: Record<string, string> = {}): Promise<T> {
  const rt = await openRuntime();
  try {
    return await fn(rt.store.domain);
  } catch (err) {
    if (!isDomainError(err)) throw err;
    // `methods.1` is the second value of --methods: the flag is what the user can fix.
    const field = err.field;
    const flag = field !== undefined ? flags[field.split('.')[0]!] : undefined;
    const at = field !== undefined ? err.message.indexOf(`${field}: `) : -1;
    const message = flag && at >= 0 ? `${flag}: ${err.message.slice(at + field!.length + 2)}` : err.message;
    throw new CliError(message, err.kind === 'not_found' ? EXIT_NOT_FOUND : 1);
  } finally {
    await rt.close();
  }
}

/** `--json`: the admin API's JSON for the same thing; otherwise the human text. */
export function output(o: { json?: boolean }, value: unknown, human: () => string): void {
  if (o.json) printJson(toWire(value));
  else print(human());
}

/** A whole number flag; `unlimited` (or `none`) gives null where the field allows it. */
export function intFlag(value: string, flag: string, opts: { nullWord?: string } = {}): number | null {
  if (opts.nullWord && value === opts.nullWord) return null;
  if (!/^-?\d+$/.test(value.trim())) {
    throw new CliError(`${flag}: expected a whole number${opts.nullWord ? ` or "${opts.nullWord}"` : ''}, got "${value}"`);
  }
  return Number(value);
}

/** A decimal number flag (`0.05`); `none` gives null where allowed. */
export function decimalFlag(value: string, flag: string, nullWord?: string): number | null {
  if (nullWord && value === nullWord) return null;
  if (!/^\d+(\.\d+)?$/.test(value.trim()))
    throw new CliError(`${flag}: expected a number such as 0.05${nullWord ? ` or "${nullWord}"` : ''}, got "${value}"`);
  return Number(value);
}

/** `--limit` and `--cursor` for list commands. */
export function withPaging(cmd: Command): Command {
  return cmd.option('--limit <n>', 'page size (1-1000)', '100').option('--cursor <cursor>', 'continue after a previous page');
}

export function pageQuery(o: { limit: string; cursor?: string }): { limit: number; cursor?: string } {
  const limit = intFlag(o.limit, '--limit')!;
  if (limit < 1 || limit > 1000) throw new CliError('--limit: expected a whole number from 1 to 1000');
  return { limit, ...(o.cursor ? { cursor: o.cursor } : {}) };
}

/** `29.00 usd` from cents. */
export const money = (cents: number, currency: string) => `${(cents / 100).toFixed(2)} ${currency}`;

/** Dates in tables: to the second, UTC; empty for none. */
export const when = (d: Date | null | undefined) => (d ? `${d.toISOString().slice(0, 19).replace('T', ' ')}Z` : '');

export const orUnlimited = (n: number | null) => (n === null ? 'unlimited' : String(n));
