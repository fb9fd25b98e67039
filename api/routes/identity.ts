/**
 * Identity reveal: the real identity of a case's subject, for the holder of an active grant only,
 * every read audited; and early revocation of a grant by an approver of the step that created it.
 * Grants are created and ended by the case workflow (approval, durable expiry timer, revocation,
 * case close); this route only reads their state and sends the revocation to the workflow.
 */
import { and, eq } from 'drizzle-orm';
import { z } from 'zod';
import type { Principal } from '../../domain/authz';
import { inRegion } from '../../domain/authz';
import { ErrorType } from '../../domain/errors';
import { appendAudit } from '../../db/audit';
import { cases, identityVault, revealGrants, steps, subjects } from '../../db/schema';
import { openSubjectIdentity } from '../../infra/identity';
import { revokeGrantUpdate, workflowIds } from '../../workflows/definitions';
import { DeniedError, deniedNotFound, HttpError, notFound, outsideRegion, type Denial } from '../errors';
import { route, type AppDeps } from '../http';

const Params = z.object({ id: z.string().uuid() });
const GrantParams = z.object({ id: z.string().uuid(), grantId: z.string().uuid() });

const RevealGrant = z
  .object({
    id: z.string().uuid(),
    caseId: z.string().uuid(),
    stepId: z.string().uuid(),
    grantee: z.string(),
    status: z.enum(['active', 'expired', 'revoked', 'case_closed']),
    grantedAt: z.string().datetime(),
    expiresAt: z.string().datetime(),
    endedAt: z.string().datetime().nullable(),
    endedBy: z.string().nullable(),
  })
  .openapi('RevealGrant');

const IdentityResponse = z
  .object({
    caseId: z.string().uuid(),
    subject: z.object({ id: z.string().uuid(), pseudonym: z.string() }),
    identity: z.object({
      displayName: z.string(),
      email: z.string().nullable(),
      upn: z.string().nullable(),
      manager: z.string().nullable(),
      department: z.string().nullable(),
    }),
    grant: RevealGrant,
  })
  .openapi('RevealedIdentity');

const toGrant = (g: typeof revealGrants.$inferSelect) => ({
  id: g.id,
  caseId: g.caseId,
  stepId: g.stepId,
  grantee: g.grantee,
  status: g.status,
  grantedAt: g.grantedAt.toISOString(),
  expiresAt: g.expiresAt.toISOString(),
  endedAt: g.endedAt?.toISOString() ?? null,
  endedBy: g.endedBy,
});

/** The case (with its subject's pseudonym) in the caller's regions; another region's case is a 404 audited as a denied `action`. */
async function caseRow(deps: AppDeps, principal: Principal, caseId: string, action: string) {
  const [row] = await deps.db
    .select({
      id: cases.id,
      region: cases.region,
      status: cases.status,
      subjectId: cases.subjectId,
      pseudonym: subjects.pseudonym,
      externalKey: subjects.externalKey,
    })
    .from(cases)
    .innerJoin(subjects, eq(subjects.id, cases.subjectId))
    .where(eq(cases.id, caseId));
  if (!row) throw notFound('Case');
  if (!inRegion(principal, row.region)) {
    throw outsideRegion('Case', action, row);
  }
  return row;
}

export const identityRoutes = [
  route({
    method: 'get',
    path: '/v1/cases/{id}/identity',
    tag: 'Identity',
    summary: 'Read the real identity of the case’s subject (active reveal grant holders only; audited)',
    description:
      'Answers only to the investigator who requested an approved `reveal_identity` step, while its grant is active. ' +
      'After expiry, revocation or the case closing it answers 403 with the reason.',
    permission: 'identity:read',
    category: 'identity',
    params: Params,
    responses: { 200: { description: 'The identity and the grant that allows reading it', schema: IdentityResponse } },
    async handler({ deps, principal, params, actor }) {
      const c = await caseRow(deps, principal, params.id, 'identity.read');
      const grants = await deps.db
        .select()
        .from(revealGrants)
        .where(and(eq(revealGrants.caseId, c.id), eq(revealGrants.grantee, principal.sub)));
      const now = Date.now();
      const active = grants.find((g) => g.status === 'active' && g.expiresAt.getTime() > now);
      const deny = (reason: string, message: string) =>
        new DeniedError(
          ErrorType.Forbidden,
          message,
          { reason },
          {
            action: 'identity.read',
            reason,
            targetType: 'case',
            targetId: c.id,
            region: c.region,
          },
        );
      // A closed case serves no identity, whatever a grant row says (closing ends its grants).
      if (active && c.status === 'closed')
        throw deny('grant_case_closed', 'Your reveal grant on this case has ended (case_closed)');
      if (!active) {
        const latest = grants.sort((a, b) => b.grantedAt.getTime() - a.grantedAt.getTime())[0];
        if (!latest) throw deny('no_grant', 'No reveal grant for you on this case: request a reveal_identity step');
        const reason = latest.status === 'active' ? 'grant_expired' : `grant_${latest.status}`;
        throw deny(
          reason,
          `Your reveal grant on this case has ended (${latest.status === 'active' ? 'expired' : latest.status})`,
        );
      }
      const [vault] = await deps.db.select().from(identityVault).where(eq(identityVault.subjectId, c.subjectId));
      if (!vault) throw notFound('Identity');
      const identity = openSubjectIdentity(deps.config.keys, vault, c);
      await appendAudit(deps.db, {
        ...actor,
        action: 'identity.read',
        category: 'identity',
        targetType: 'case',
        targetId: c.id,
        region: c.region,
        outcome: 'allowed',
        details: { grantId: active.id, subjectId: c.subjectId },
      });
      return {
        headers: { 'Cache-Control': 'no-store' },
        body: {
          caseId: c.id,
          subject: { id: c.subjectId, pseudonym: c.pseudonym },
          identity: {
            displayName: identity.displayName,
            email: identity.email ?? null,
            upn: identity.upn ?? null,
            manager: identity.manager ?? null,
            department: identity.department ?? null,
          },
          grant: toGrant(active),
        },
      };
    },
  }),
  route({
    method: 'get',
    path: '/v1/cases/{id}/grants',
    tag: 'Identity',
    summary: 'List the reveal grants of a case (who may read the identity, until when, and how each ended)',
    permission: 'identity:grants',
    category: 'identity',
    params: Params,
    responses: { 200: { description: 'Grants, newest first', schema: z.object({ items: z.array(RevealGrant) }) } },
    async handler({ deps, principal, params }) {
      const c = await caseRow(deps, principal, params.id, 'identity.grants.read');
      const rows = await deps.db.select().from(revealGrants).where(eq(revealGrants.caseId, c.id));
      rows.sort((a, b) => b.grantedAt.getTime() - a.grantedAt.getTime());
      return { body: { items: rows.map(toGrant) } };
    },
  }),
  route({
    method: 'post',
    path: '/v1/cases/{id}/grants/{grantId}/revoke',
    tag: 'Identity',
    summary: 'Revoke a reveal grant early (an approver of the step that created it)',
    permission: 'identity:revoke',
    category: 'identity',
    params: GrantParams,
    body: z.object({ comment: z.string().trim().min(1).max(2000) }).strict(),
    responses: { 200: { description: 'The grant, ended', schema: RevealGrant } },
    async handler({ deps, principal, params, body, requestId }) {
      const action = 'identity.grant_revoke';
      const c = await caseRow(deps, principal, params.id, action);
      const [grant] = await deps.db
        .select()
        .from(revealGrants)
        .where(and(eq(revealGrants.id, params.grantId), eq(revealGrants.caseId, c.id)));
      if (!grant) {
        // Only on this miss: is it another case's grant (named through a case the caller may reach)?
        const [other] = await deps.db
          .select({ caseId: revealGrants.caseId, region: cases.region })
          .from(revealGrants)
          .innerJoin(cases, eq(cases.id, revealGrants.caseId))
          .where(eq(revealGrants.id, params.grantId));
        if (!other) throw notFound('Grant');
        const denial: Denial = {
          action,
          reason: inRegion(principal, other.region) ? 'grant_of_another_case' : 'outside_region',
          targetType: 'reveal_grant',
          targetId: params.grantId,
          region: other.region,
          details: { caseId: other.caseId, requestedCaseId: c.id },
        };
        throw deniedNotFound('Grant', denial);
      }
      const [step] = await deps.db.select({ rule: steps.rule }).from(steps).where(eq(steps.id, grant.stepId));
      const stakeholders = (step?.rule.require ?? []).map((r) => r.stakeholder as string);
      if (!principal.stakeholder || !stakeholders.includes(principal.stakeholder)) {
        const reason = 'not_an_approver_of_this_step';
        throw new DeniedError(
          ErrorType.Forbidden,
          'Only an approver of the step that created this grant may revoke it',
          { reason },
          { action, reason, targetType: 'case', targetId: c.id, region: c.region, details: { grantId: grant.id } },
        );
      }
      if (grant.status !== 'active') throw new HttpError(ErrorType.Conflict, `The grant has already ended (${grant.status})`);
      const handle = deps.temporal.workflow.getHandle(workflowIds.case(c.id));
      await deps.temporal.withDeadline(Date.now() + deps.config.cases.updateDeadlineMs, () =>
        handle.executeUpdate(revokeGrantUpdate, {
          updateId: `revoke-${grant.id}`,
          args: [{ grantId: grant.id, comment: body.comment, actor: { sub: principal.sub, roles: principal.roles, requestId } }],
        }),
      );
      const [after] = await deps.db.select().from(revealGrants).where(eq(revealGrants.id, grant.id));
      return { body: toGrant(after!) };
    },
  }),
];
