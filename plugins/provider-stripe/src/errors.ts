import { ProviderError, redact, toProviderError } from '@apigate/kernel';
import Stripe from 'stripe';

const META = { capability: 'payment', provider: 'stripe' } as const;

/**
 * Whether the same call may succeed later, by the rules the Stripe SDK itself retries on:
 * Stripe's `Stripe-Should-Retry` header wins; then no answer at all, 409 (a lock or a
 * concurrent request with the same idempotency key), 429 and 5xx. Card, invalid-request,
 * authentication, permission and idempotency errors are final.
 */
export function isRetryableStripeError(err: InstanceType<typeof Stripe.errors.StripeError>): boolean {
  const advice = err.headers?.['stripe-should-retry'];
  if (advice === 'true') return true;
  if (advice === 'false') return false;
  if (err instanceof Stripe.errors.StripeConnectionError) return true;
  const status = err.statusCode;
  if (status === undefined) return err instanceof Stripe.errors.StripeAPIError;
  return status === 409 || status === 429 || status >= 500;
}

function describe(err: InstanceType<typeof Stripe.errors.StripeError>, host: string): string {
  const firstLine = (err.message || 'no message').split('\n')[0]!;
  if (err.statusCode === undefined) return `could not reach Stripe at ${host}: ${firstLine}`;
  const kind = [err.rawType, err.code].filter(Boolean).join('/');
  const request = err.requestId ? ` [${err.requestId}]` : '';
  return `Stripe answered ${err.statusCode}${kind ? ` ${kind}` : ''}: ${firstLine}${request}`;
}

/**
 * Anything an SDK call threw, as a ProviderError with the status, Stripe's code and the right
 * `retryable`. The kernel's instrumentation masks the instance's secrets in it and its causes.
 */
export function toStripeProviderError(err: unknown, operation: string, host: string): ProviderError;
/** @deprecated The kernel masks the secrets: pass only the host. */
export function toStripeProviderError(err: unknown, operation: string, secrets: readonly string[], host: string): ProviderError;
export function toStripeProviderError(
  err: unknown,
  operation: string,
  hostOrSecrets: string | readonly string[],
  legacyHost?: string,
): ProviderError {
  const [host, secrets] = typeof hostOrSecrets === 'string' ? [hostOrSecrets, []] : [legacyHost ?? '', hostOrSecrets];
  if (err instanceof Stripe.errors.StripeError) {
    return new ProviderError({
      ...META,
      operation,
      retryable: isRetryableStripeError(err),
      message: redact(describe(err, host), secrets),
      ...(err.code ? { code: err.code } : {}),
      ...(err.statusCode !== undefined ? { status: err.statusCode } : {}),
      cause: err,
    });
  }
  return toProviderError(err, { ...META, secrets }, operation);
}
