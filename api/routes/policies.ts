import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { and, eq, inArray, sql } from 'drizzle-orm';
import { z } from 'zod';
import type { Db, DbOrTx } from '../../db';
import { appendAudit } from '../../db/audit';
import {
  createPolicy,
  getPolicy,
  listPolicies,
  prerequisiteStatus,
  receivedConnectorData,
  setPolicyStatus,
  toPolicy,
  updatePolicy,
} from '../../db/queries/policies';
import { policies, regions, type PolicyRow } from '../../db/schema';
import { regionScope, type Principal } from '../../domain/authz';
import { ErrorType } from '../../domain/errors';
import {
  Boosters,
  Indicators,
  missingPrerequisites,
  POLICY_STATUSES,
  POLICY_TEMPLATES,
  PolicyInput,
  PolicyPatch,
  PolicyScope,
  TEMPLATES,
  Thresholds,
} from '../../domain/policies';
import { detectionWorkflowIds } from '../../workflows/definitions';
import type { policyBackfillWorkflow } from '../../workflows/scoring';
import { DeniedError, HttpError, notFound, outsideRegion } from '../errors';
import { route, type AppDeps } from '../http';
import { CreatedCursor, decodeCursor, page, PageQuery, pageSchema } from '../pagination';

const PrerequisiteSchema = z.object({
  id: z.string(),
  source: z.string(),
  types: z.array(z.string()),
  description: z.string(),
});

export const PolicySchema = z
  .object({
    id: z.string().uuid(),
    name: z.string(),
    description: z.string().nullable(),
    template: z.enum(POLICY_TEMPLATES),
    status: z.enum(POLICY_STATUSES),
    scope: PolicyScope,
    priorityGroups: z.array(z.string()),
    indicators: Indicators,
    thresholds: Thresholds,
    boosters: Boosters,
    activationWindowDays: z.number().int(),
    dailyAlertCap: z.number().int(),
    version: z.number().int(),
    trigger: z.string().describe('What triggers a subject for this template'),
    prerequisites: z.object({ met: z.boolean(), missing: z.array(PrerequisiteSchema) }),
    activatedAt: z.string().datetime().nullable(),
    createdBy: z.string(),
    updatedBy: z.string(),
    createdAt: z.string().datetime(),
    updatedAt: z.string().datetime(),
  })
  .openapi('Policy');

const PolicyWithBackfill = PolicySchema.extend({
  backfillWorkflowId: z.string().nullable().describe('The workflow re-scoring subjects already triggered, if one was started'),
}).openapi('PolicyCommandResult');

const PolicyParams = z.object({ id: z.string().uuid() });
const PolicyListQuery = PageQuery.extend({
  status: z.enum(POLICY_STATUSES).optional(),
  template: z.enum(POLICY_TEMPLATES).optional(),
}).strict();

type Received = Awaited<ReturnType<typeof receivedConnectorData>>;

function present(row: PolicyRow, received: Received) {
  const missing = missingPrerequisites(row.template, received);
  return { ...toPolicy(row), trigger: TEMPLATES[row.template].trigger, prerequisites: { met: missing.length === 0, missing } };
}

/**
 * A regional administrator manages only policies confined to its regions; a global one (`*`) all.
 * Outside its scope a policy does not exist (404).
 */
function visible(principal: Principal, row: Pick<PolicyRow, 'scope'>): boolean {
  const mine = regionScope(principal);
  if (mine === null) return true;
  return row.scope.regions.length > 0 && row.scope.regions.every((r) => mine.includes(r));
}

/**
 * A regional administrator confines a policy to its regions; a scope reaching further is a 400
 * naming the field, audited as a denied `action` (`target`: the policy changed, if any).
 */
async function checkScopeRegions(
  db: Db,
  principal: Principal,
  scopeRegions: string[],
  action: string,
  target: string | null,
): Promise<void> {
  const mine = regionScope(principal);
  if (mine !== null && (scopeRegions.length === 0 || scopeRegions.some((r) => !mine.includes(r)))) {
    const beyond = scopeRegions.filter((r) => !mine.includes(r));
    throw new DeniedError(
      ErrorType.Validation,
      `Invalid request: body.scope.regions: name only regions of the caller (${mine.join(', ')})`,
      [{ field: 'body.scope.regions', message: 'a regional administrator must confine a policy to its regions' }],
      {
        action,
        reason: 'outside_region',
        targetType: 'policy',
        targetId: target,
        region: beyond.length === 1 ? beyond[0] : null,
        details: { scopeRegions: scopeRegions.length ? [...scopeRegions].sort() : ['*'] },
      },
    );
  }
  if (scopeRegions.length) {
    const known = new Set(
      (await db.select({ code: regions.code }).from(regions).where(inArray(regions.code, scopeRegions))).map((r) => r.code),
    );
    const unknown = scopeRegions.filter((r) => !known.has(r));
    if (unknown.length) {
      throw new HttpError(ErrorType.Validation, `Invalid request: body.scope.regions: unknown region ${unknown[0]}`, [
        { field: 'body.scope.regions', message: `unknown regions: ${unknown.join(', ')}` },
      ]);
    }
  }
}

/** Re-score subjects already triggered for an active policy after its activation or a change. */
async function startBackfill(deps: AppDeps, row: PolicyRow): Promise<string | null> {
  if (row.status !== 'active') return null;
  const workflowId = detectionWorkflowIds.policyBackfill(row.id, row.version);
  try {
    await deps.temporal.workflow.start<typeof policyBackfillWorkflow>('policyBackfillWorkflow', {
      taskQueue: deps.taskQueue,
      workflowId,
      args: [{ policyId: row.id, version: row.version }],
    });
  } catch (err) {
    // Already running for this version: that run covers it.
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
  return workflowId;
}

/**
 * The policy if the caller may manage it; otherwise a 404. A policy that exists outside the caller's
 * scope gets the same 404, audited as a denied `action` (with the policy's region when it has one).
 */
async function loadVisible(db: DbOrTx, principal: Principal, id: string, action: string, forUpdate = false): Promise<PolicyRow> {
  const row = await getPolicy(db, id, forUpdate);
  if (!row) throw notFound('Policy');
  if (!visible(principal, row)) throw policyOutsideRegion(action, row);
  return row;
}

/** The 404 of a policy outside the caller's regions, audited as denied (its region when it has one). */
export function policyOutsideRegion(action: string, row: Pick<PolicyRow, 'id' | 'scope'>) {
  const regions = row.scope.regions;
  return outsideRegion(
    'Policy',
    action,
    { id: row.id, region: regions.length === 1 ? regions[0]! : null },
    { details: { policyRegions: regions.length ? [...regions].sort() : ['*'] } },
  );
}

/**
 * The region of a policy's audit entries: its one region when its scope names exactly one (an
 * auditor of other regions then does not see it), else none (visible to every auditor).
 */
const auditRegion = (scope: { regions: string[] }) => (scope.regions.length === 1 ? scope.regions[0]! : null);

export const policyRoutes = [
  route({
    method: 'post',
    path: '/v1/policies',
    tag: 'Policies',
    summary: 'Create a policy from one of the four templates (as a draft)',
    description:
      'Templates: data_theft_departing_users (trigger: HR resignation/termination), data_leaks (trigger: a High-severity DLP alert), ' +
      'security_policy_violations (trigger: an endpoint-security alert), risky_users (trigger: an HR performance event or a demotion). ' +
      'Without `indicators` the template’s default weights apply. A new policy is a draft: activate it to start scoring.',
    permission: 'policies:write',
    category: 'policies',
    body: PolicyInput,
    responses: { 201: { description: 'Created', schema: PolicySchema } },
    async handler({ deps, principal, body, actor }) {
      await checkScopeRegions(deps.db, principal, body.scope.regions, 'policy.create', null);
      const row = await deps.db.transaction(async (tx) => {
        const created = await createPolicy(tx, body, principal.sub);
        await appendAudit(tx, {
          ...actor,
          action: 'policy.create',
          category: 'policies',
          targetType: 'policy',
          targetId: created.id,
          region: auditRegion(created.scope),
          outcome: 'allowed',
          details: { template: created.template, version: created.version },
        });
        return created;
      });
      return {
        status: 201,
        headers: { Location: `/v1/policies/${row.id}` },
        body: present(row, await receivedConnectorData(deps.db)),
      };
    },
  }),
  route({
    method: 'get',
    path: '/v1/policies',
    tag: 'Policies',
    summary: 'List policies with their prerequisite status',
    permission: 'policies:read',
    category: 'policies',
    query: PolicyListQuery,
    responses: { 200: { description: 'Policies', schema: pageSchema(PolicySchema) } },
    async handler({ deps, principal, query }) {
      const after = decodeCursor(query.cursor, CreatedCursor);
      const mine = regionScope(principal);
      const rows = await listPolicies(deps.db, {
        after,
        limit: query.limit,
        status: query.status,
        where: and(
          query.template ? eq(policies.template, query.template) : undefined,
          // Same rule as `visible`: confined to the caller's regions.
          mine === null
            ? undefined
            : sql`jsonb_array_length(${policies.scope}->'regions') > 0 and (${policies.scope}->'regions') <@ ${JSON.stringify(mine)}::jsonb`,
        ),
      });
      const received = await receivedConnectorData(deps.db);
      const p = page(rows, query.limit, (r) => [r.cursorAt, r.policy.id]);
      return { body: { items: p.items.map((r) => present(r.policy, received)), nextCursor: p.nextCursor } };
    },
  }),
  route({
    method: 'get',
    path: '/v1/policies/{id}',
    tag: 'Policies',
    summary: 'Read a policy, with what its activation still needs',
    permission: 'policies:read',
    category: 'policies',
    params: PolicyParams,
    responses: { 200: { description: 'The policy', schema: PolicySchema } },
    async handler({ deps, principal, params }) {
      const row = await loadVisible(deps.db, principal, params.id, 'policy.read');
      return { body: present(row, await receivedConnectorData(deps.db)) };
    },
  }),
  route({
    method: 'patch',
    path: '/v1/policies/{id}',
    tag: 'Policies',
    summary: 'Change a policy (its template is fixed)',
    description: 'An active policy re-scores the subjects already triggered under the new configuration (backfill workflow).',
    permission: 'policies:write',
    category: 'policies',
    params: PolicyParams,
    body: PolicyPatch,
    responses: { 200: { description: 'The policy after the change', schema: PolicyWithBackfill } },
    async handler({ deps, principal, params, body, actor }) {
      if (body.scope) await checkScopeRegions(deps.db, principal, body.scope.regions, 'policy.update', params.id);
      const row = await deps.db.transaction(async (tx) => {
        const before = await loadVisible(tx, principal, params.id, 'policy.update', true);
        const merged = { ...before.thresholds, ...body.thresholds };
        if (merged.severity.medium > merged.severity.high) {
          throw new HttpError(
            ErrorType.Validation,
            'Invalid request: body.thresholds.severity.medium: the medium band must start at or below high',
          );
        }
        const { boosters, ...rest } = body;
        const after = await updatePolicy(
          tx,
          params.id,
          boosters ? { ...rest, boosters: { ...before.boosters, ...boosters } } : rest,
          principal.sub,
        );
        await appendAudit(tx, {
          ...actor,
          action: 'policy.update',
          category: 'policies',
          targetType: 'policy',
          targetId: params.id,
          region: auditRegion(after.scope),
          outcome: 'allowed',
          details: { fields: Object.keys(body).sort(), version: after.version },
        });
        return after;
      });
      const backfillWorkflowId = await startBackfill(deps, row);
      return { body: { ...present(row, await receivedConnectorData(deps.db)), backfillWorkflowId } };
    },
  }),
  route({
    method: 'post',
    path: '/v1/policies/{id}/activate',
    tag: 'Policies',
    summary: 'Activate a policy, after checking its template’s prerequisites',
    description:
      'Refused with 422 `precondition_failed` and `details.missing` (the connector data that has not arrived yet) when a ' +
      'prerequisite is not met. On success, subjects already triggered are scored by a backfill workflow.',
    permission: 'policies:write',
    category: 'policies',
    params: PolicyParams,
    responses: { 200: { description: 'The active policy', schema: PolicyWithBackfill } },
    async handler({ deps, principal, params, actor }) {
      const row = await loadVisible(deps.db, principal, params.id, 'policy.activate');
      const prereq = await prerequisiteStatus(deps.db, row.template);
      if (!prereq.met) {
        await appendAudit(deps.db, {
          ...actor,
          action: 'policy.activate',
          category: 'policies',
          targetType: 'policy',
          targetId: row.id,
          region: auditRegion(row.scope),
          outcome: 'denied',
          reason: 'prerequisites missing',
          details: { missing: prereq.missing.map((m) => m.id) },
        });
        throw new HttpError(
          ErrorType.PreconditionFailed,
          `The ${row.template} template needs connector data that has not arrived: ${prereq.missing.map((m) => m.description).join('; ')}`,
          { missing: prereq.missing },
        );
      }
      const after = await deps.db.transaction(async (tx) => {
        const current = await loadVisible(tx, principal, params.id, 'policy.activate', true);
        if (current.status === 'active') return current;
        const updated = await setPolicyStatus(tx, params.id, 'active', principal.sub);
        await appendAudit(tx, {
          ...actor,
          action: 'policy.activate',
          category: 'policies',
          targetType: 'policy',
          targetId: params.id,
          region: auditRegion(updated.scope),
          outcome: 'allowed',
          details: { version: updated.version, from: current.status },
        });
        return updated;
      });
      const backfillWorkflowId = await startBackfill(deps, after);
      return { body: { ...present(after, await receivedConnectorData(deps.db)), backfillWorkflowId } };
    },
  }),
  route({
    method: 'post',
    path: '/v1/policies/{id}/pause',
    tag: 'Policies',
    summary: 'Pause a policy: it stops scoring; its alerts stay',
    permission: 'policies:write',
    category: 'policies',
    params: PolicyParams,
    responses: { 200: { description: 'The paused policy', schema: PolicySchema } },
    async handler({ deps, principal, params, actor }) {
      const row = await deps.db.transaction(async (tx) => {
        const current = await loadVisible(tx, principal, params.id, 'policy.pause', true);
        if (current.status === 'paused') return current;
        if (current.status === 'draft')
          throw new HttpError(ErrorType.Conflict, 'A draft policy is not running: activate it first');
        const updated = await setPolicyStatus(tx, params.id, 'paused', principal.sub);
        await appendAudit(tx, {
          ...actor,
          action: 'policy.pause',
          category: 'policies',
          targetType: 'policy',
          targetId: params.id,
          region: auditRegion(updated.scope),
          outcome: 'allowed',
          details: { version: updated.version },
        });
        return updated;
      });
      return { body: present(row, await receivedConnectorData(deps.db)) };
    },
  }),
];
