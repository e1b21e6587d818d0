import { redact } from './secrets.js';

/** How deep causes and AggregateError members are followed (a cycle or a huge chain stays bounded). */
const MAX_DEPTH = 5;
const MAX_MEMBERS = 5;
/** How deep maskErrorChain goes: further than what is shown, so no shown part is left unmasked. */
const MASK_DEPTH = 20;

interface ErrorLike {
  message?: unknown;
  name?: unknown;
  code?: unknown;
  cause?: unknown;
  errors?: unknown;
  stack?: unknown;
}

const asObject = (e: unknown): ErrorLike | undefined => (typeof e === 'object' && e !== null ? (e as ErrorLike) : undefined);

/** An error's own text: its message, else its code or name (Node's AggregateError has an empty message). */
function ownText(e: unknown): string {
  const o = asObject(e);
  if (!o) return String(e);
  if (typeof o.message === 'string' && o.message) return o.message;
  if (typeof o.code === 'string' && o.code) return o.code;
  if (typeof o.name === 'string') return o.name;
  // A plain object as a cause says nothing as "[object Object]": JSON, shortened.
  try {
    return JSON.stringify(e)?.slice(0, 200) ?? String(e);
  } catch {
    return String(e);
  }
}

const membersOf = (e: unknown): unknown[] => {
  const errors = asObject(e)?.errors;
  return Array.isArray(errors) ? errors : [];
};

const firstLine = (s: string) => s.split('\n')[0]!;

/**
 * One line for a terminal or a log: the message, then every cause (nested ones too) and the
 * members of an AggregateError where they add something, all with secrets masked: the given
 * ones, the ones registered by the kernel, and credentials inside URLs.
 */
export function describeError(err: unknown, secrets: readonly string[] = []): string {
  const seen = new Set<unknown>();
  const walk = (e: unknown, depth: number): string => {
    seen.add(e);
    let text = redact(ownText(e), secrets);
    if (depth >= MAX_DEPTH) return text;
    const members = membersOf(e).filter((m) => !seen.has(m));
    if (members.length > 0) {
      const parts = members.slice(0, MAX_MEMBERS).map((m) => firstLine(walk(m, depth + 1)));
      const more = members.length > MAX_MEMBERS ? `; and ${members.length - MAX_MEMBERS} more` : '';
      text = `${text} [${parts.join('; ')}${more}]`;
    }
    const cause = asObject(e)?.cause;
    if (cause !== undefined && cause !== null && !seen.has(cause)) {
      const c = firstLine(walk(cause, depth + 1));
      if (c && !text.includes(c)) text += ` (cause: ${c})`;
    }
    return text;
  };
  return walk(err, 0);
}

/** A plain, JSON-ready copy of an error for logs: type, message, code, stack, causes and members, every string masked. */
export interface SerializedError {
  type: string;
  message: string;
  code?: string;
  stack?: string;
  cause?: SerializedError;
  errors?: SerializedError[];
}

/** Serializes an error chain with secrets masked (the logger's `err` serializer uses it). */
export function serializeError(err: unknown, secrets: readonly string[] = []): SerializedError {
  const seen = new Set<unknown>();
  const walk = (e: unknown, depth: number): SerializedError => {
    seen.add(e);
    const o = asObject(e);
    const out: SerializedError = {
      type: typeof o?.name === 'string' ? o.name : typeof e,
      message: redact(ownText(e), secrets),
    };
    if (typeof o?.code === 'string') out.code = o.code;
    if (typeof o?.stack === 'string') out.stack = redact(o.stack, secrets);
    if (depth >= MAX_DEPTH) return out;
    const cause = o?.cause;
    if (cause !== undefined && cause !== null && !seen.has(cause)) out.cause = walk(cause, depth + 1);
    const members = membersOf(e).filter((m) => !seen.has(m));
    if (members.length > 0) out.errors = members.slice(0, MAX_MEMBERS).map((m) => walk(m, depth + 1));
    return out;
  };
  return walk(err, 0);
}

/** Sets a string property of an error to its masked text; a frozen or read-only one is left as it is. */
function maskProperty(o: ErrorLike, key: 'message' | 'stack', secrets: readonly string[]): void {
  const value = o[key];
  if (typeof value !== 'string') return;
  const masked = redact(value, secrets);
  if (masked === value) return;
  try {
    Object.defineProperty(o, key, {
      value: masked,
      writable: true,
      configurable: true,
      enumerable: Object.prototype.propertyIsEnumerable.call(o, key),
    });
  } catch {
    // not configurable: describeError and serializeError still mask it whenever it is shown
  }
}

/**
 * Masks, in place, the message and stack of an error, of its causes (nested ones too) and of
 * an AggregateError's members: the given secrets, the registered ones and URL credentials. In
 * place, so a caller that checks `cause instanceof SomeSdkError` still can. Returns `err`.
 */
export function maskErrorChain<E>(err: E, secrets: readonly string[] = []): E {
  const seen = new Set<unknown>();
  const walk = (e: unknown, depth: number): void => {
    const o = asObject(e);
    if (!o || seen.has(e)) return;
    seen.add(e);
    maskProperty(o, 'message', secrets);
    maskProperty(o, 'stack', secrets);
    if (depth >= MASK_DEPTH) return;
    walk(o.cause, depth + 1);
    for (const m of membersOf(e)) walk(m, depth + 1);
  };
  walk(err, 0);
  return err;
}
