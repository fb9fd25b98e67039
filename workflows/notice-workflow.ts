import { ActivityFailure, ApplicationFailure, proxyActivities, type ActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { ErrorType } from '../domain/errors';
import type { NoticeWorkflowInput, NoticeWorkflowResult } from './definitions';
import { dbWrite, smtpDelivery } from './presets';

const { queueNotice, failNotice } = proxyActivities<Activities>(dbWrite);

/**
 * Delivers the notice of an approved send_notice step: queue it (template version and values
 * frozen), send it once (the activity retries 4xx with backoff), and fail it with the server's
 * reason when the server refuses it or the retries run out. Started by the case workflow as a child
 * (`case-<caseId>-notice-<noticeId>`), abandoned on close, so a long backoff never holds the case.
 *
 * Carries ids only: the address and name are read from the vault inside `sendNotice`.
 */
export async function noticeWorkflow(input: NoticeWorkflowInput): Promise<NoticeWorkflowResult> {
  const delivery: ActivityOptions = input.retry
    ? {
        ...smtpDelivery,
        retry: {
          ...smtpDelivery.retry,
          initialInterval: input.retry.initialIntervalMs,
          maximumInterval: input.retry.initialIntervalMs * 4,
          maximumAttempts: input.retry.maximumAttempts,
        },
      }
    : smtpDelivery;
  const { sendNotice } = proxyActivities<Activities>(delivery);

  const queued = await queueNotice({ noticeId: input.noticeId, caseId: input.caseId, stepId: input.stepId });
  if (queued.status !== 'queued') return { noticeId: queued.noticeId, status: queued.status };
  try {
    const sent = await sendNotice({ noticeId: queued.noticeId });
    return { noticeId: sent.noticeId, status: sent.status };
  } catch (err) {
    const cause = err instanceof ActivityFailure ? err.cause : undefined;
    if (cause instanceof ApplicationFailure && cause.type === ErrorType.DeliveryRejected) {
      // Refused for good: the activity already failed the notice and told the case owner.
      return { noticeId: queued.noticeId, status: 'failed' };
    }
    const outcome = await failNotice({
      noticeId: queued.noticeId,
      reason: 'delivery gave up after repeated temporary failures',
    });
    return { noticeId: outcome.noticeId, status: outcome.status };
  }
}
