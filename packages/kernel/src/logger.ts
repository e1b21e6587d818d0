import { destination, pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

/** Keys whose values pino replaces with [Redacted] wherever they appear one or two levels deep. */
const SECRET_KEYS = ['password', 'secret', 'apiKey', 'api_key', 'token', 'authorization', 'webhookSecret', 'clientSecret', 'secretKey', 'accessKey'];

export function createLogger(opts: { level?: string; name?: string; destination?: NodeJS.WritableStream | number } = {}): Logger {
  const options: LoggerOptions = {
    level: opts.level ?? process.env.LOG_LEVEL ?? 'info',
    ...(opts.name ? { name: opts.name } : {}),
    redact: { paths: SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]), censor: '[Redacted]' },
  };
  const dest = opts.destination ?? 1;
  return pino(options, typeof dest === 'number' ? destination({ dest, sync: true }) : (dest as never));
}

/** A logger that drops everything: for tests and CLI commands that print their own output. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
