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

const LEVELS = new Set<PropertyKey>(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);
const SECRET_KEY_SET = new Set(SECRET_KEYS);
/** How deep maskingLogger copies a logged value; anything deeper is dropped rather than written unmasked. */
const MASK_DEPTH = 8;

const isErrorLike = (v: unknown): v is Error =>
  v instanceof Error ||
  (typeof v === 'object' && v !== null && typeof (v as Error).message === 'string' && typeof (v as Error).stack === 'string');

/**
 * A copy of a logged value with secrets masked: strings redacted, secret-named keys censored,
 * plain objects, arrays and class instances copied field by field, errors copied with the same
 * prototype (so the logger's own error serializer still formats them) but their message, stack,
 * cause and members masked. Dates and binary data are kept; cycles and deeper levels are cut.
 */
function maskValue(value: unknown, secrets: readonly string[], depth: number, seen: Set<object>): unknown {
  if (typeof value === 'string') return redact(value, secrets);
  if (typeof value !== 'object' || value === null) return value;
  if (value instanceof Date || ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return value;
  if (value instanceof URL) return redact(value.href, secrets);
  if (seen.has(value)) return '[Circular]';
  if (depth >= MASK_DEPTH) return '[Object]';
  seen.add(value);
  try {
    if (Array.isArray(value)) return value.map((v) => maskValue(v, secrets, depth + 1, seen));
    if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [String(k), maskValue(v, secrets, depth + 1, seen)]));
    if (value instanceof Set) return [...value].map((v) => maskValue(v, secrets, depth + 1, seen));
    if (isErrorLike(value)) {
      const copy = Object.create(Object.getPrototypeOf(value)) as Record<string, unknown>;
      for (const key of Reflect.ownKeys(value)) {
        if (typeof key !== 'string') continue;
        const d = Object.getOwnPropertyDescriptor(value, key)!;
        const v = maskValue((value as unknown as Record<string, unknown>)[key], secrets, depth + 1, seen);
        Object.defineProperty(copy, key, { value: v, writable: true, configurable: true, enumerable: d.enumerable ?? false });
      }
      return copy;
    }
    const json = (value as { toJSON?: unknown }).toJSON;
    if (typeof json === 'function') return maskValue(json.call(value), secrets, depth + 1, seen);
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = SECRET_KEY_SET.has(k) && typeof v === 'string' && v !== '' ? '[Redacted]' : maskValue(v, secrets, depth + 1, seen);
    }
    return out;
  } finally {
    seen.delete(value);
  }
}

/**
 * `logger`, with everything logged through it masked before it reaches `logger`: messages and
 * interpolation arguments, every string in the logged object (nested ones too), errors anywhere in
 * it (message, stack, causes, AggregateError members) and an `Error` passed first: the given
 * `secrets`, the registered ones and URL credentials, whatever `logger` is (a plain pino, one from
 * `createLogger`, `silentLogger`). Its children mask the same. The kernel hands every provider one,
 * made with that provider's secrets. Nothing is copied for a level that is off.
 */
export function maskingLogger(logger: Logger, secrets: readonly string[] = []): Logger {
  const mask = (v: unknown) => maskValue(v, secrets, 0, new Set());
  const cache = new Map<PropertyKey, unknown>();
  return new Proxy(logger, {
    get(target, prop) {
      const hit = cache.get(prop);
      if (hit !== undefined) return hit;
      let fn: unknown;
      if (LEVELS.has(prop)) {
        const level = prop as 'info';
        fn = (...args: unknown[]) => {
          if (!target.isLevelEnabled(level)) return;
          const method = target[level] as (...a: unknown[]) => void;
          method.apply(target, args.map(mask));
        };
      } else if (prop === 'child') {
        const child = target.child.bind(target) as unknown as (bindings: unknown, options?: unknown) => Logger;
        fn = (bindings: Record<string, unknown>, options?: unknown) => maskingLogger(child(mask(bindings), options), secrets);
      } else {
        const value = Reflect.get(target, prop, target);
        if (typeof value !== 'function') return value;
        fn = value.bind(target);
      }
      cache.set(prop, fn);
      return fn;
    },
    set: (target, prop, value) => Reflect.set(target, prop, value, target),
  });
}

/** A logger that drops everything: for tests and CLI commands that print their own output. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
