import { writeAuditCheckpoint } from '../db/audit';
import type { ActivityDeps } from './index';

export function createAuditActivities(deps: Pick<ActivityDeps, 'db' | 'config' | 'logger'>) {
  return {
    /**
     * Sign a checkpoint of the audit chain's newest entry (periodic, from the schedule). Skips when
     * the newest entry is already checkpointed; safe to retry (one checkpoint per seq).
     */
    async signAuditCheckpoint(): Promise<{ seq: number; created: boolean } | null> {
      const result = await writeAuditCheckpoint(deps.db, deps.config.audit.signingKey, 'schedule');
      if (result?.created) deps.logger.info({ seq: result.checkpoint.seq }, 'audit checkpoint signed');
      return result ? { seq: result.checkpoint.seq, created: result.created } : null;
    },
  };
}
