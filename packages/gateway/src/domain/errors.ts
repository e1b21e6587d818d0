import { ApigateError } from '@apigate/kernel';

/** What went wrong, for callers that map errors onto statuses (HTTP 400/404/409, CLI exit codes). */
export type DomainErrorKind = 'invalid' | 'not_found' | 'conflict';

/**
 * A domain rule said no: one line naming the thing and what is wanted. `field` is the
 * snake_case input field at fault, when there is one (the admin API returns it).
 */
export class DomainError extends ApigateError {
  readonly kind: DomainErrorKind;
  readonly field?: string;
  constructor(kind: DomainErrorKind, code: string, message: string, field?: string) {
    super(code, message);
    this.kind = kind;
    if (field !== undefined) this.field = field;
  }
}

export const notFound = (what: string, id: string, hint?: string) =>
  new DomainError('not_found', 'NOT_FOUND', `no ${what} with id ${id}${hint ? `; ${hint}` : ''}`);

/** True for an error from this module (also across module copies, by shape). */
export function isDomainError(err: unknown): err is DomainError {
  return err instanceof DomainError || (err instanceof ApigateError && typeof (err as { kind?: unknown }).kind === 'string');
}
