import { isRetryable, ProviderError, statusOf } from '@apigate/kernel';

/** S3 error codes that mean "try again later" even where the status alone would not say so. */
const RETRYABLE_CODES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottled',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'RequestTimeout',
  'RequestTimeoutException',
  'InternalError',
  'ServiceUnavailable',
  'OperationAborted',
]);

/** Codes that are final whatever else the error carries (credentials, permissions, signing). */
const FINAL_CODES = new Set([
  'AccessDenied',
  'Forbidden',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'InvalidToken',
  'AllAccessDisabled',
  'CredentialsProviderError',
  'NoSuchBucket',
]);

interface SdkError {
  name?: string;
  Code?: string;
  message?: string;
  code?: string;
  $retryable?: { throttling?: boolean };
  $metadata?: { httpStatusCode?: number };
}

/** The S3 error code (`NoSuchKey`, `AccessDenied`...) or, for network failures, the socket code. */
export function s3Code(err: unknown): string | undefined {
  const e = err as SdkError | null;
  if (!e || typeof e !== 'object') return undefined;
  if (typeof e.Code === 'string') return e.Code;
  if (typeof e.code === 'string') return e.code;
  // Without a body (HEAD answers) the SDK can only name the error "Unknown": no code at all is clearer.
  if (typeof e.name === 'string' && !['Error', 'S3ServiceException', 'Unknown', 'UnknownError'].includes(e.name)) return e.name;
  return undefined;
}

export function s3Status(err: unknown): number | undefined {
  return (err as SdkError | null)?.$metadata?.httpStatusCode ?? statusOf(err);
}

/** The object (not the bucket) is missing: `undefined` where the contract says so. */
export function isMissingObject(err: unknown): boolean {
  const code = s3Code(err);
  if (code === 'NoSuchKey' || code === 'NotFound') return true;
  return s3Status(err) === 404 && code !== 'NoSuchBucket';
}

export function isS3Retryable(err: unknown): boolean {
  const code = s3Code(err);
  if (code && FINAL_CODES.has(code)) return false;
  if (code && RETRYABLE_CODES.has(code)) return true;
  if ((err as SdkError | null)?.$retryable) return true;
  return isRetryable(err);
}

/** One line about an SDK error: code, HTTP status and message (the kernel masks secrets in it). */
export function describeS3Error(err: unknown): string {
  const code = s3Code(err);
  const status = s3Status(err);
  const raw = (err as SdkError | null)?.message;
  // HEAD answers have no body, so the SDK's message is only "UnknownError" or the code again.
  const message = raw && raw !== code && raw !== 'UnknownError' ? raw : undefined;
  const head = [code, status ? `HTTP ${status}` : undefined].filter(Boolean).join(', ');
  return [head && `(${head})`, message].filter(Boolean).join(' ') || String(err);
}

/** Wraps an SDK failure as the kernel's ProviderError with the retry classification S3 needs. */
export function toS3ProviderError(err: unknown, operation: string, what: string): ProviderError {
  if (err instanceof ProviderError) return err;
  const code = s3Code(err);
  const status = s3Status(err);
  return new ProviderError({
    capability: 'storage',
    provider: 's3',
    operation,
    retryable: isS3Retryable(err),
    message: `${what}: ${describeS3Error(err)}`,
    ...(code ? { code } : {}),
    ...(status !== undefined ? { status } : {}),
    cause: err,
  });
}
