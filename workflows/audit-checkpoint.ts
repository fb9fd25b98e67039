import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { dbWrite } from './presets';

const { signAuditCheckpoint } = proxyActivities<Activities>({ ...dbWrite, summary: 'sign audit checkpoint' });

/**
 * Started by the `warden-audit-checkpoint` Temporal schedule (infra/schedules.ts): signs a
 * checkpoint of the audit chain so that deleting its newest entries is detectable. A schedule,
 * not a timer in the API, because the API scales out and each process would sign its own.
 */
export async function auditCheckpointWorkflow(): Promise<{ seq: number; created: boolean } | null> {
  return signAuditCheckpoint();
}
