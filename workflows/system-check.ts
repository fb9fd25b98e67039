import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { SystemCheckInput, SystemCheckResult } from './definitions';
import { dbWrite } from './presets';

const { recordSystemCheck } = proxyActivities<Activities>(dbWrite);

/**
 * End-to-end check of the pipe: started by the API, run by a worker, whose activity writes a row
 * to Postgres. Operators use it to prove a deployment works; tests use it as the smallest real path.
 */
export async function systemCheckWorkflow(input: SystemCheckInput): Promise<SystemCheckResult> {
  return recordSystemCheck({ checkId: input.checkId, requestedBy: input.requestedBy.sub, workflowId: workflowInfo().workflowId });
}
