import type { z } from '@apigate/kernel';
import { DomainError } from './errors.js';

/** `requestsPerMinute` -> `requests_per_minute`: the name the admin API and its errors use. */
export const snakeCase = (s: string) => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/**
 * Parses input with a zod schema; the first problem becomes one line naming the field
 * (snake_case, as the admin API spells it): `email: expected an email address`.
 */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  let field = issue.path.map((p) => (typeof p === 'string' ? snakeCase(p) : String(p))).join('.');
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') {
    field = snakeCase(issue.keys[0]!);
    message = 'is not a field of this request';
  }
  throw new DomainError('invalid', 'INVALID_INPUT', field ? `${what}: ${field}: ${message}` : `${what}: ${message}`, field || undefined);
}
