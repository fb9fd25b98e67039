/**
 * Detection workflows. One workflow per ingested batch (not one message per event): it runs the
 * scoring of the batch's subjects as a single idempotent activity. A policy backfill scores, page
 * by page, every subject that may be triggered for a policy that was just activated or changed.
 */
import { proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { PolicyBackfillInput, PolicyBackfillResult, ScoreSignalBatchInput, ScoreSubjectsResult } from './definitions';
import { backfillPage, batchScoring } from './presets';

const { scoreSignalBatch } = proxyLocalActivities<Activities>(batchScoring);
const { listPolicyCandidates, scoreSubjects } = proxyActivities<Activities>(backfillPage);

export async function scoreSignalBatchWorkflow(input: ScoreSignalBatchInput): Promise<ScoreSubjectsResult> {
  return scoreSignalBatch({ batchId: input.batchId, subjectIds: input.subjectIds });
}

const BACKFILL_PAGE = 500;

export async function policyBackfillWorkflow(input: PolicyBackfillInput): Promise<PolicyBackfillResult> {
  const total: PolicyBackfillResult = { subjects: 0, pairsScored: 0, alertsCreated: 0, alertsRaised: 0 };
  let after: string | null = null;
  do {
    const page: { subjectIds: string[]; next: string | null } = await listPolicyCandidates({
      policyId: input.policyId,
      after,
      limit: BACKFILL_PAGE,
    });
    if (page.subjectIds.length) {
      const r = await scoreSubjects({ subjectIds: page.subjectIds, policyIds: [input.policyId] });
      total.subjects += page.subjectIds.length;
      total.pairsScored += r.pairsScored;
      total.alertsCreated += r.alertsCreated.length;
      total.alertsRaised += r.alertsRaised.length;
    }
    after = page.next;
  } while (after);
  return total;
}
