/**
 * The one error vocabulary shared by workflows, activities and the API.
 *
 * Workflows and activities throw `ApplicationFailure` with `type` set to one of these names; the
 * API maps the same names to HTTP statuses. Pure module: safe to import from workflow code.
 */
export const ErrorType = {
  Validation: 'validation_error',
  MalformedJson: 'malformed_json',
  Unauthenticated: 'unauthenticated',
  Forbidden: 'forbidden',
  NotFound: 'not_found',
  Conflict: 'conflict',
  PreconditionFailed: 'precondition_failed',
  PayloadTooLarge: 'payload_too_large',
  UnsupportedMediaType: 'unsupported_media_type',
  Unavailable: 'unavailable',
  Timeout: 'timeout',
  Internal: 'internal_error',
  /** SMTP said "try again later" (4xx) or could not be reached: the notice is retried with backoff. */
  DeliveryDeferred: 'delivery_deferred',
  /** SMTP refused the notice for good (5xx): the notice is failed, never retried. */
  DeliveryRejected: 'delivery_rejected',
} as const;

export type ErrorType = (typeof ErrorType)[keyof typeof ErrorType];

export const HTTP_STATUS_BY_ERROR: Record<ErrorType, number> = {
  validation_error: 400,
  malformed_json: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  precondition_failed: 422,
  payload_too_large: 413,
  unsupported_media_type: 415,
  unavailable: 503,
  timeout: 504,
  internal_error: 500,
  delivery_deferred: 503,
  delivery_rejected: 502,
};

export function isErrorType(value: unknown): value is ErrorType {
  return typeof value === 'string' && value in HTTP_STATUS_BY_ERROR;
}

/** Error types an activity must not retry: retrying cannot change the answer. */
export const NON_RETRYABLE_ERROR_TYPES: ErrorType[] = [
  ErrorType.Validation,
  ErrorType.NotFound,
  ErrorType.Forbidden,
  ErrorType.Conflict,
  ErrorType.PreconditionFailed,
];
