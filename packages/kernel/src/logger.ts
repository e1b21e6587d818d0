import { destination, pino, type Logger, type LoggerOptions } from 'pino';
import { serializeError } from './error-chain.js';
import { redact } from './secrets.js';

export type { Logger } from 'pino';

/** Keys whose values pino replaces with [Redacted] wherever they appear one or two levels deep. */
const SECRET_KEYS = [
  'password',
  'secret',
  'apiKey',
  'api_key',
  'token',
  'authorization',
  'webhookSecret',
  'clientSecret',
  'secretKey',
  'accessKey',
];

/** Strings in a log object (two levels deep), masked: registered secrets and URL credentials. */
function maskObject(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return redact(value);
  if (depth >= 2 || typeof value !== 'object' || value === null) return value;
  // Only plain objects are copied: a Date, Buffer, Map or Error keeps its own serialization.
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = maskObject(v, depth + 1);
  return out;
}

const errSerializer = (e: unknown) => (typeof e === 'object' && e !== null ? serializeError(e) : typeof e === 'string' ? redact(e) : e);

/**
 * pino with secrets kept out: secret-named keys redacted, errors (`err`, `error`) serialized with
 * their whole cause chain masked, and every message and string field masked with the secrets
 * the kernel registered and any credentials inside URLs.
 */
export function createLogger(opts: { level?: string; name?: string; destination?: NodeJS.WritableStream | number } = {}): Logger {
  const options: LoggerOptions = {
    level: opts.level ?? process.env.LOG_LEVEL ?? 'info',
    ...(opts.name ? { name: opts.name } : {}),
    redact: { paths: SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]), censor: '[Redacted]' },
    serializers: { err: errSerializer, error: errSerializer },
    formatters: { log: (obj) => maskObject(obj, 0) as Record<string, unknown> },
    hooks: {
      logMethod(args, method) {
        // pino would take an Error's raw message as the log message: serialize it masked instead.
        if (args[0] instanceof Error) {
          const err = args[0];
          if (typeof args[1] === 'string') args.splice(0, 1, { err });
          else args.splice(0, 1, { err }, err.message);
        }
        for (let i = 0; i < args.length; i++) if (typeof args[i] === 'string') args[i] = redact(args[i] as string);
        return method.apply(this, args as Parameters<typeof method>);
      },
    },
  };
  const dest = opts.destination ?? 1;
  return pino(options, typeof dest === 'number' ? destination({ dest, sync: true }) : (dest as never));
}

/** A logger that drops everything: for tests and CLI commands that print their own output. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
