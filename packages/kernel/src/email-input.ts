import type { EmailMessage } from './capabilities/email.js';
import { InvalidInputError } from './errors.js';

// Deliberately simple: one `@`, no spaces or delimiters. Real mail servers judge the rest.
const ADDRESS_RE = /^[^\s@<>()[\]",;:]+@[^\s@<>()[\]",;:]+$/;
// RFC 5322 field name: printable ASCII except ':'.
const HEADER_NAME_RE = /^[!-9;-~]+$/;

/** `"Name" <a@b>` or `a@b` -> `a@b`; undefined when it is not an address. */
export function emailAddressOf(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const m = /<([^<>]*)>\s*$/.exec(value);
  const addr = (m ? m[1]! : value).trim();
  return ADDRESS_RE.test(addr) ? addr : undefined;
}

const list = (v: string | string[] | undefined): unknown[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/**
 * Throws InvalidInputError naming the first field of `msg` the email contract forbids: no
 * recipient, a malformed address, an empty subject, a header that could inject others, an
 * attachment without a name or bytes. `defaultFrom` stands in for a missing `from`.
 */
export function assertEmailMessage(msg: EmailMessage, defaultFrom?: string): void {
  if (!msg || typeof msg !== 'object') throw new InvalidInputError('email: expected a message object');
  const to = list(msg.to);
  if (to.length === 0) throw new InvalidInputError('email to: at least one recipient is required');
  const addresses: [string, unknown[]][] = [
    ['to', to],
    ['cc', list(msg.cc)],
    ['bcc', list(msg.bcc)],
    ['from', [msg.from ?? defaultFrom]],
    ['replyTo', msg.replyTo === undefined ? [] : [msg.replyTo]],
  ];
  for (const [field, values] of addresses) {
    for (const v of values) {
      if (!emailAddressOf(v)) throw new InvalidInputError(`email ${field}: ${JSON.stringify(v)} is not an email address`);
    }
  }
  if (typeof msg.subject !== 'string' || msg.subject.trim() === '')
    throw new InvalidInputError('email subject: a non-empty subject is required');
  for (const [name, value] of Object.entries(msg.headers ?? {})) {
    if (!HEADER_NAME_RE.test(name)) throw new InvalidInputError(`email header ${JSON.stringify(name)}: not a valid header name`);
    if (typeof value !== 'string' || /[\r\n]/.test(value))
      throw new InvalidInputError(`email header ${name}: expected a single-line string`);
  }
  for (const [i, a] of (msg.attachments ?? []).entries()) {
    if (!a || typeof a.filename !== 'string' || a.filename.trim() === '')
      throw new InvalidInputError(`email attachment ${i}: a filename is required`);
    if (!(a.content instanceof Uint8Array))
      throw new InvalidInputError(`email attachment ${a.filename}: content must be bytes (Uint8Array)`);
  }
}
