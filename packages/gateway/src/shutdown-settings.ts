import { ConfigError, type Env, fields, type SettingsReader } from '@apigate/kernel';

/** How long `apigate serve` may take to stop after SIGTERM/SIGINT, in milliseconds. */
export const SHUTDOWN_TIMEOUT_SETTING = 'server.shutdown_timeout_ms';
export const SHUTDOWN_TIMEOUT_ENV = 'APIGATE_SHUTDOWN_TIMEOUT_MS';
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;
const MIN = 100;
const MAX = 600_000;

/** What is wrong with a shutdown timeout value, or undefined when it is fine. */
export function checkShutdownTimeout(value: string): string | undefined {
  return fields.int({ min: MIN, max: MAX }).safeParse(value.trim()).success
    ? undefined
    : `expected a whole number of milliseconds from ${MIN} to ${MAX}`;
}

/** The shutdown deadline: APIGATE_SHUTDOWN_TIMEOUT_MS, else the setting, else 10 s; a bad value is a ConfigError. */
export function readShutdownTimeout(env: Env, settings: SettingsReader): number {
  const fromEnv = env[SHUTDOWN_TIMEOUT_ENV]?.trim();
  const raw = fromEnv || settings.get(SHUTDOWN_TIMEOUT_SETTING)?.trim();
  if (!raw) return DEFAULT_SHUTDOWN_TIMEOUT_MS;
  const wrong = checkShutdownTimeout(raw);
  if (wrong) {
    throw new ConfigError({
      field: 'shutdownTimeoutMs',
      ...(fromEnv ? { envVar: SHUTDOWN_TIMEOUT_ENV } : {}),
      settingKey: SHUTDOWN_TIMEOUT_SETTING,
      expected: wrong,
    });
  }
  return Number(raw);
}
