import { InvalidInputError } from '@apigate/kernel';

// S3 sends user metadata as `x-amz-meta-*` HTTP headers: names are case-insensitive tokens
// (S3 stores them lower-case) and values must be printable US-ASCII without edge whitespace.
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const PLAIN_VALUE = /^(?:[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?)?$/;
// Anything else travels as an RFC 2047 encoded word, as the AWS console itself does.
const ENCODED = /^=\?UTF-8\?B\?([A-Za-z0-9+/]*={0,2})\?=$/i;

export function encodeMetadata(metadata: Record<string, string> | undefined): Record<string, string> | undefined {
  if (!metadata) return undefined;
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(metadata)) {
    if (!TOKEN.test(name)) {
      throw new InvalidInputError(`metadata name "${name}" must be letters, digits or - _ . (an HTTP header token)`);
    }
    if (typeof value !== 'string') throw new InvalidInputError(`metadata "${name}" must be a string`);
    const lower = name.toLowerCase();
    if (lower in out) throw new InvalidInputError(`metadata names "${name}" and another differ only in case; S3 stores them lower-case`);
    out[lower] =
      PLAIN_VALUE.test(value) && !value.startsWith('=?') ? value : `=?UTF-8?B?${Buffer.from(value, 'utf8').toString('base64')}?=`;
  }
  return out;
}

export function decodeMetadata(metadata: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(metadata ?? {})) {
    const m = ENCODED.exec(value);
    out[name] = m ? Buffer.from(m[1]!, 'base64').toString('utf8') : value;
  }
  return out;
}
