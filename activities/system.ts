import { Context } from '@temporalio/activity';
import type { Db } from '../db';
import { systemChecks } from '../db/schema';

export function createSystemActivities(deps: { db: Db }) {
  return {
    /** Idempotent: keyed by the check id, a retried attempt leaves one row. */
    async recordSystemCheck(input: { checkId: string; requestedBy: string; workflowId: string }) {
      const attempt = Context.current().info.attempt;
      const [row] = await deps.db
        .insert(systemChecks)
        .values({ id: input.checkId, requestedBy: input.requestedBy, attempt, workflowId: input.workflowId })
        .onConflictDoUpdate({ target: systemChecks.id, set: { attempt } })
        .returning();
      return { checkId: row!.id, attempt: row!.attempt, completedAt: row!.completedAt.toISOString() };
    },
  };
}
