import { hasUrlCredentials, maskConfigValue } from '@apigate/kernel';
import type { Command } from 'commander';
import { print, printJson, table } from '../output.js';
import { loadAllDefinitions, openRuntime } from '../runtime.js';
import { type KeyInfo, settingKeys, suggestKeys } from '../settings-keys.js';
import { CliError, withJson } from './common.js';

async function withKeys<T>(fn: (rt: Awaited<ReturnType<typeof openRuntime>>, keys: Map<string, KeyInfo>) => Promise<T>): Promise<T> {
  const rt = await openRuntime();
  try {
    const { defs } = await loadAllDefinitions(rt.catalog);
    return await fn(rt, settingKeys(defs));
  } finally {
    await rt.close();
  }
}

function requireKnown(key: string, keys: Map<string, KeyInfo>): KeyInfo {
  const info = keys.get(key);
  if (info) return info;
  const near = suggestKeys(key, keys.keys());
  throw new CliError(
    `unknown setting "${key}"${near.length ? ` (did you mean ${near.join(', ')}?)` : ''}; \`apigate settings keys\` lists them`,
  );
}

/**
 * A value as printed: a secret field masked as a whole, any other value with the credentials of
 * its URLs masked (`redis://user:****@host`); `--reveal` prints it as stored.
 */
const shown = (value: string, secret: boolean, reveal: boolean) => (reveal ? value : maskConfigValue(value, secret));

/** Whether a key's field is secret: what the installed providers declare, else how it is stored. */
const secretField = (e: { key: string; value: string; secret: boolean }, keys: Map<string, KeyInfo>) =>
  keys.get(e.key)?.secret ?? (e.secret && !hasUrlCredentials(e.value));

export function registerSettings(program: Command): void {
  const settings = program.command('settings').description('read and write settings stored in the database (secrets encrypted)');

  withJson(settings.command('set <key> <value>').description('set a setting; secret fields are encrypted at rest')).action(
    async (key: string, value: string, o: { json?: boolean }) =>
      withKeys(async (rt, keys) => {
        const info = requireKnown(key, keys);
        const wrong = info.validate(value);
        if (wrong) throw new CliError(`${key}: ${wrong}`);
        await rt.store.settings.set(key, value, { secret: info.secret });
        const encrypted = info.secret || hasUrlCredentials(value);
        const override = info.envVar && rt.env[info.envVar]?.trim() ? info.envVar : undefined;
        if (o.json)
          printJson({ key, value: shown(value, info.secret, false), secret: info.secret, encrypted, overriddenBy: override ?? null });
        else {
          const note = info.secret ? ' (secret, encrypted)' : encrypted ? ' (the URL carries credentials: encrypted)' : '';
          print(`set ${key} = ${shown(value, info.secret, false)}${note}`);
          if (override) print(`note: ${override} is set in the environment and takes precedence over this setting`);
        }
      }),
  );

  withJson(settings.command('get <key>').description('print one setting').option('--reveal', 'show secret values in clear')).action(
    async (key: string, o: { json?: boolean; reveal?: boolean }) =>
      withKeys(async (rt, keys) => {
        const info = requireKnown(key, keys);
        const entry = rt.store.settings.list().find((e) => e.key === key);
        if (!entry) throw new CliError(`setting "${key}" is not set`, 3);
        const value = shown(entry.value, info.secret, !!o.reveal);
        if (o.json)
          printJson({ key, value, secret: info.secret, encrypted: entry.secret, updatedAt: entry.updatedAt, envVar: info.envVar ?? null });
        else print(value);
      }),
  );

  withJson(settings.command('list').description('print every stored setting').option('--reveal', 'show secret values in clear')).action(
    async (o: { json?: boolean; reveal?: boolean }) =>
      withKeys(async (rt, keys) => {
        const rows = rt.store.settings.list().map((e) => {
          const secret = secretField(e, keys);
          return { key: e.key, value: shown(e.value, secret, !!o.reveal), secret, encrypted: e.secret, updatedAt: e.updatedAt };
        });
        if (o.json) printJson(rows);
        else print(rows.length ? table(rows, ['key', 'value', 'secret', 'updatedAt']) : 'no settings stored');
      }),
  );

  withJson(settings.command('unset <key>').description('remove a stored setting (the env var or default applies again)')).action(
    async (key: string, o: { json?: boolean }) => {
      const rt = await openRuntime();
      try {
        const removed = await rt.store.settings.unset(key);
        if (o.json) printJson({ key, removed });
        else print(removed ? `unset ${key}` : `${key} was not set`);
      } finally {
        await rt.close();
      }
    },
  );

  withJson(settings.command('keys').description('list every key the installed providers and the gateway accept')).action(
    async (o: { json?: boolean }) =>
      withKeys(async (_rt, keys) => {
        const rows = [...keys].sort(([a], [b]) => a.localeCompare(b)).map(([key, i]) => ({ key, secret: i.secret, env: i.envVar ?? '' }));
        if (o.json) printJson(rows);
        else print(table(rows, ['key', 'secret', 'env']));
      }),
  );
}
