/** Named activity option presets: timeouts and retry policies, shared by every workflow. */
import type { ActivityOptions, LocalActivityOptions } from '@temporalio/workflow';
import { ErrorType, NON_RETRYABLE_ERROR_TYPES } from '../domain/errors';

/** A short database write or read. */
export const dbWrite: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: {
    initialInterval: '200 milliseconds',
    backoffCoefficient: 2,
    maximumInterval: '10 seconds',
    nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
  },
};

/**
 * A read-model projection on a hot path (decisions, confirms): a local activity, so the write
 * costs no extra round trip to the Temporal server. Idempotent like every projection.
 */
export const projection: LocalActivityOptions = {
  startToCloseTimeout: '10 seconds',
  localRetryThreshold: '10 seconds',
  retry: {
    initialInterval: '100 milliseconds',
    backoffCoefficient: 2,
    maximumInterval: '10 seconds',
    nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
  },
};

/**
 * Scoring of one ingested batch: a local activity, so a batch costs one workflow task and no
 * activity-task round trip; retried on failure (scoring is idempotent).
 */
export const batchScoring: LocalActivityOptions = {
  startToCloseTimeout: '60 seconds',
  localRetryThreshold: '10 seconds',
  retry: {
    initialInterval: '100 milliseconds',
    backoffCoefficient: 2,
    maximumInterval: '10 seconds',
    nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
  },
};

/**
 * Sending a notice by SMTP. A 4xx reply or an unreachable server is retried with backoff for about
 * seven hours; a 5xx reply (`delivery_rejected`) is final. The start-to-close timeout is longer
 * than the outbox claim lease, which is longer than one SMTP transaction can last.
 */
export const smtpDelivery: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  retry: {
    initialInterval: '30 seconds',
    backoffCoefficient: 2,
    maximumInterval: '30 minutes',
    maximumAttempts: 20,
    nonRetryableErrorTypes: [...NON_RETRYABLE_ERROR_TYPES, ErrorType.DeliveryRejected],
  },
};

/** A page of a policy backfill: may take a while on a large population. */
export const backfillPage: ActivityOptions = {
  startToCloseTimeout: '5 minutes',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
  },
};

/**
 * Waiting for another workflow run to close, then archiving its history: retried without limit
 * (the run may stay open for days), backing off to one attempt every 10 minutes.
 */
export const awaitRunClose: ActivityOptions = {
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '1 minute',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 1.5,
    maximumInterval: '10 minutes',
    nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
  },
};

/** A workflow archiving itself as its last step: quick, it only hands over to the archiver. */
export const archiveSelf: ActivityOptions = {
  startToCloseTimeout: '1 minute',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '30 seconds',
    nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
  },
};
