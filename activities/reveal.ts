/**
 * Identity reveal grants: created when a `reveal_identity` step is approved, ended by the case
 * workflow's durable timer (expiry), an approver's revocation, or the case closing. Idempotent:
 * keyed by the grant id (= step id); ending an already ended grant changes nothing. Each
 * transition is audited in the same transaction.
 */
import { and, eq } from 'drizzle-orm';
import type { Db } from '../db';
import { appendAudit } from '../db/audit';
import { revealGrants } from '../db/schema';

export interface GrantRevealInput {
  grantId: string;
  caseId: string;
  stepId: string;
  grantee: string;
  region: string;
  grantedAt: string;
  expiresAt: string;
  approvedBy: string[];
}

export type GrantEnd = 'expired' | 'revoked' | 'case_closed';

export function createRevealActivities(deps: { db: Db }) {
  return {
    async grantReveal(g: GrantRevealInput): Promise<void> {
      await deps.db.transaction(async (tx) => {
        const inserted = await tx
          .insert(revealGrants)
          .values({
            id: g.grantId,
            caseId: g.caseId,
            stepId: g.stepId,
            grantee: g.grantee,
            region: g.region,
            grantedAt: new Date(g.grantedAt),
            expiresAt: new Date(g.expiresAt),
          })
          .onConflictDoNothing()
          .returning({ id: revealGrants.id });
        if (inserted.length === 0) return;
        await appendAudit(tx, {
          actor: 'system:case-workflow',
          action: 'identity.grant_created',
          category: 'identity',
          targetType: 'case',
          targetId: g.caseId,
          region: g.region,
          outcome: 'allowed',
          details: { grantId: g.grantId, stepId: g.stepId, grantee: g.grantee, expiresAt: g.expiresAt, approvedBy: g.approvedBy },
        });
      });
    },

    async endRevealGrant(input: {
      grantId: string;
      caseId: string;
      region: string;
      reason: GrantEnd;
      by: string;
      at: string;
      /** The ending request's roles and id (a revocation); a timer's or a close's ending has neither of its own. */
      roles?: string[];
      requestId?: string;
    }): Promise<boolean> {
      return deps.db.transaction(async (tx) => {
        const ended = await tx
          .update(revealGrants)
          .set({ status: input.reason, endedAt: new Date(input.at), endedBy: input.by })
          .where(and(eq(revealGrants.id, input.grantId), eq(revealGrants.status, 'active')))
          .returning({ id: revealGrants.id });
        if (ended.length === 0) return false;
        await appendAudit(tx, {
          actor: input.by,
          ...(input.roles ? { actorRoles: input.roles } : {}),
          ...(input.requestId ? { requestId: input.requestId } : {}),
          action: `identity.grant_${input.reason}`,
          category: 'identity',
          targetType: 'case',
          targetId: input.caseId,
          region: input.region,
          outcome: 'allowed',
          details: { grantId: input.grantId },
        });
        return true;
      });
    },
  };
}
