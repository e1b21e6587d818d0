import { isRetryable, type ProviderError, toProviderError } from '@apigate/kernel';
import * as oidc from 'openid-client';

/** Stable codes on the ProviderErrors of a failed login, so the gateway can tell the user what happened. */
export const OAUTH_ERROR_CODES = {
  /** The callback has no state, or another login's state: a stale tab or a forged callback. */
  stateMismatch: 'OAUTH_STATE_MISMATCH',
  /** The user declined at the identity provider (`error=access_denied`). */
  accessDenied: 'OAUTH_ACCESS_DENIED',
  /** The identity provider redirected back with another `error`. */
  authorizationError: 'OAUTH_AUTHORIZATION_ERROR',
  /** The callback has neither a code nor an error. */
  invalidCallback: 'OAUTH_INVALID_CALLBACK',
  /** The token endpoint refused the code (used, expired, wrong PKCE verifier, wrong client...). */
  codeRejected: 'OAUTH_CODE_REJECTED',
  /** The ID token did not validate (nonce, signature, audience, expiry...). */
  idTokenInvalid: 'OAUTH_ID_TOKEN_INVALID',
  /** The account does not meet a rule of this provider (e.g. Google hosted domain). */
  accountRejected: 'OAUTH_ACCOUNT_REJECTED',
} as const;

export interface Failure {
  message: string;
  code?: string;
  status?: number;
  retryable?: boolean;
}

/** Text from the other side goes into one log line: no control characters, bounded length. */
export const clean = (s: string, max = 200): string => {
  const flat = s.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
};

const described = (error: string, description?: string | null): string =>
  `${clean(error, 80)}${description ? ` (${clean(description)})` : ''}`;

/** The detail openid-client keeps in `cause` (it puts the useful sentence there). */
const causeMessage = (err: Error): string | undefined => {
  const cause = (err as { cause?: unknown }).cause;
  return cause instanceof Error && cause.message && cause.message !== err.message ? cause.message : undefined;
};

/** The network reason under a failed fetch (`fetch failed` says nothing by itself): a code, else the cause's words. */
function networkReason(err: Error): string | undefined {
  let e: unknown = err;
  let words: string | undefined;
  for (let depth = 0; e && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^E[A-Z]+$|^UND_ERR/.test(code)) return code;
    if (depth > 0 && e instanceof Error && e.message) words ??= e.message;
    e = (e as { cause?: unknown }).cause;
  }
  return err.message === 'fetch failed' ? (words ?? 'network error') : undefined;
}

/**
 * What went wrong, in one line, from anything openid-client, fetch or an HTTP answer threw.
 * `where` names the other side for network failures ("the identity provider", "api.github.com").
 */
export function explain(err: unknown, ctx: { where: string; timeoutMs: number }): Failure {
  if (!(err instanceof Error)) return { message: String(err) };
  const known = (err as Error & { failure?: Failure }).failure;
  if (known) return known;
  if (err instanceof oidc.AuthorizationResponseError) {
    return {
      message: `the identity provider returned ${described(err.error, err.error_description)}`,
      code: err.error === 'access_denied' ? OAUTH_ERROR_CODES.accessDenied : OAUTH_ERROR_CODES.authorizationError,
      retryable: false,
    };
  }
  if (err instanceof oidc.ResponseBodyError) {
    return {
      message: `${ctx.where} answered ${err.status} ${described(err.error, err.error_description)}`,
      status: err.status,
      ...(err.status < 500 && err.error !== 'temporarily_unavailable' ? { code: OAUTH_ERROR_CODES.codeRejected, retryable: false } : {}),
    };
  }
  if (err instanceof oidc.WWWAuthenticateChallengeError) {
    // A 401 with WWW-Authenticate: the client credentials (token endpoint) or the token (userinfo) were refused.
    const params = err.cause[0]?.parameters ?? {};
    return {
      message: `${ctx.where} answered ${err.status} ${described(params.error ?? 'with an authentication challenge', params.error_description)}`,
      status: err.status,
      ...(err.status < 500 ? { code: OAUTH_ERROR_CODES.codeRejected, retryable: false } : {}),
    };
  }
  if (err.name === 'TimeoutError') return { message: `${ctx.where} did not answer within ${ctx.timeoutMs} ms`, retryable: true };
  if (err instanceof oidc.ClientError) {
    const detail = causeMessage(err);
    const cause = (err as { cause?: unknown }).cause;
    if (cause instanceof Response) {
      // openid-client puts the Response itself in `cause` when the status or content type is wrong.
      return {
        message: `${ctx.where} answered HTTP ${cause.status} ${clean(cause.statusText, 60)} (${err.message})`.replace(/ +\(/, ' ('),
        status: cause.status,
      };
    }
    if (/ID Token|JWT|JWS|"nonce"|"aud"|"iss"|"azp"|"exp"|"iat"/.test(`${err.message} ${detail ?? ''}`)) {
      return { message: `the ID token was rejected: ${detail ?? err.message}`, code: OAUTH_ERROR_CODES.idTokenInvalid, retryable: false };
    }
    return { message: detail ? `${err.message}: ${detail}` : err.message, retryable: isRetryable(err) };
  }
  const reason = networkReason(err);
  if (reason) return { message: `cannot reach ${ctx.where} (${reason})`, retryable: isRetryable(err) };
  return { message: err.message };
}

/** A ProviderError for one failure of one operation, with the client secret masked. */
export function providerError(failure: Failure, meta: { provider: string; secrets: readonly string[] }, operation: string): ProviderError {
  const e = Object.assign(new Error(failure.message), {
    ...(failure.code ? { code: failure.code } : {}),
    ...(failure.status !== undefined ? { status: failure.status } : {}),
    ...(failure.retryable !== undefined ? { retryable: failure.retryable } : {}),
  });
  return toProviderError(e, { capability: 'oauth', provider: meta.provider, secrets: meta.secrets }, operation);
}

/** An error that already knows how it should be reported (thrown by profile builders and checks). */
export function failureError(failure: Failure): Error & { failure: Failure } {
  return Object.assign(new Error(failure.message), { failure });
}
