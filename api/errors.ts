/**
 * The API's side of the error vocabulary: `HttpError`, the mapping from Temporal failures, and the
 * one error middleware that writes `{ error: { code, message, details, requestId } }`.
 */
import type { ErrorRequestHandler, RequestHandler } from 'express';
import {
  ApplicationFailure,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowFailedError,
} from '@temporalio/client';
import type { Logger } from 'pino';
import type { AuditCategory } from '../db/audit';
import { ErrorType, HTTP_STATUS_BY_ERROR, isErrorType } from '../domain/errors';

export class HttpError extends Error {
  override name = 'HttpError';
  constructor(
    readonly type: ErrorType,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

export const notFound = (what: string) => new HttpError(ErrorType.NotFound, `${what} not found`);

/**
 * What the audit entry of a denied attempt on an object says: the action, why, and the object by
 * type, opaque id and region (ids and pseudonyms only, never a name). The route's category unless
 * `category` is given.
 */
export interface Denial {
  action: string;
  reason: string;
  category?: AuditCategory;
  targetType?: string;
  targetId?: string | null;
  region?: string | null;
  details?: Record<string, unknown>;
}

/**
 * A refusal that the route helper (api/http.ts) audits as denied before the error middleware
 * answers it exactly like any `HttpError` of the same type and message. Audited after the handler
 * has thrown, so outside (after the rollback of) any transaction the handler had open.
 */
export class DeniedError extends HttpError {
  constructor(
    type: ErrorType,
    message: string,
    details: unknown,
    readonly denial: Denial,
  ) {
    super(type, message, details);
  }
}

/**
 * The 404 for an existing object outside the caller's reach: the very answer `notFound(what)` gives
 * for an object that does not exist (the caller must not learn it exists), but audited as denied.
 */
export const deniedNotFound = (what: string, denial: Denial) =>
  new DeniedError(ErrorType.NotFound, `${what} not found`, undefined, denial);

/**
 * `deniedNotFound` for the usual case: an existing object of a region outside the caller's
 * (`targetType` is `what` in lower case unless given).
 */
export const outsideRegion = (
  what: string,
  action: string,
  object: { id: string; region: string | null },
  extra: Pick<Denial, 'targetType' | 'details'> = {},
) =>
  deniedNotFound(what, {
    action,
    reason: 'outside_region',
    targetType: extra.targetType ?? what.toLowerCase(),
    targetId: object.id,
    region: object.region,
    ...(extra.details ? { details: extra.details } : {}),
  });

/** Find an ApplicationFailure of our vocabulary in a Temporal error's cause chain. */
function fromTemporal(err: unknown): HttpError | null {
  if (err instanceof WorkflowNotFoundError) return new HttpError(ErrorType.NotFound, 'Workflow not found');
  if (err instanceof WorkflowExecutionAlreadyStartedError) return new HttpError(ErrorType.Conflict, 'Already started');
  if (!(err instanceof WorkflowUpdateFailedError || err instanceof WorkflowFailedError)) return null;
  let cause: unknown = err.cause;
  while (cause) {
    if (cause instanceof ApplicationFailure && isErrorType(cause.type)) {
      return new HttpError(cause.type, cause.message, cause.details?.[0]);
    }
    cause = (cause as { cause?: unknown }).cause;
  }
  return null;
}

interface BodyParserError {
  type?: string;
  status?: number;
}

export function errorMiddleware(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const requestId = String(req.id ?? '');
    let e: HttpError;
    const bp = err as BodyParserError;
    if (err instanceof HttpError) e = err;
    else if (bp?.type === 'entity.parse.failed') e = new HttpError(ErrorType.MalformedJson, 'Malformed JSON in request body');
    else if (bp?.type === 'entity.too.large') e = new HttpError(ErrorType.PayloadTooLarge, 'Request body too large');
    else if (bp?.status === 415 || bp?.type === 'charset.unsupported' || bp?.type === 'encoding.unsupported')
      e = new HttpError(ErrorType.UnsupportedMediaType, 'Unsupported content encoding');
    else e = fromTemporal(err) ?? new HttpError(ErrorType.Internal, 'Internal error');
    const status = HTTP_STATUS_BY_ERROR[e.type];
    if (status >= 500) logger.error({ err, requestId }, 'request failed');
    if (res.headersSent) {
      res.end();
      return;
    }
    res.status(status).json({
      error: { code: e.type, message: e.message, ...(e.details !== undefined ? { details: e.details } : {}), requestId },
    });
  };
}

export const notFoundRoute: RequestHandler = (req) => {
  throw new HttpError(ErrorType.NotFound, `No route ${req.method} ${req.path}`);
};
