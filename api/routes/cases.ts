/**
 * Cases: confirm an alert into a case, list and read cases (Postgres read models), and the commands
 * that go to the case workflow as Updates (assign, notes, steps, resolve) or to a step workflow
 * (decisions). The API never changes a case row itself, except the confirm claim (see
 * db/queries/cases.ts).
 */
import { createHash, randomUUID } from 'node:crypto';
import {
  isGrpcDeadlineError,
  WorkflowIdReusePolicy,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  ApplicationFailure,
} from '@temporalio/client';
import { z } from 'zod';
import { appendAudit } from '../../db/audit';
import { confirmAlertIntoCase, getCaseDetail, getCaseRow, getDecisionTarget, listCases, listInbox } from '../../db/queries/cases';
import { getRegion } from '../../db/queries/regions';
import { CaseNotice, caseNotices, noticeTemplateForStep } from '../notices';
import { inRegion, regionScope, type Principal } from '../../domain/authz';
import {
  CASE_STATUSES,
  checkApprover,
  DECISIONS,
  INELIGIBLE_REASONS,
  RESOLUTIONS,
  SEVERITIES,
  slaMilliseconds,
  STEP_STATUSES,
  type StepRuleSnapshot,
} from '../../domain/cases';
import { ErrorType } from '../../domain/errors';
import { STAKEHOLDERS, STEP_KINDS } from '../../domain/roles';
import {
  addNoteUpdate,
  assignCaseUpdate,
  attachAlertSignal,
  decideStepUpdate,
  requestStepUpdate,
  resolveCaseUpdate,
  WardenCaseId,
  WardenRegion,
  WardenStatus,
  workflowIds,
  type Actor,
  type AttachAlertInput,
  type CaseWorkflowInput,
} from '../../workflows/definitions';
import type { caseWorkflow } from '../../workflows/case-workflow';
import { HttpError, notFound, outsideRegion } from '../errors';
import { SubjectRef, subjectRefs } from '../subject-view';
import { auditDenied, route, type AppDeps, type HandlerContext } from '../http';
import { decodeCursor, page, PageQuery, pageSchema } from '../pagination';

// ---------------------------------------------------------------------------------------------
// Schemas

const Uuid = z.string().uuid();
const IsoDate = z.string().datetime();
const Requirement = z.object({ stakeholder: z.enum(STAKEHOLDERS), count: z.number().int() });
const Progress = z.object({
  stakeholder: z.enum(STAKEHOLDERS),
  required: z.number().int(),
  approvals: z.number().int(),
  remaining: z.number().int(),
  approvedBy: z.array(z.string()),
});
const Resolution = z.object({ outcome: z.enum(RESOLUTIONS), actionTaken: z.string(), by: z.string(), at: IsoDate }).nullable();

export const ConfirmAlertInput = z.object({ comment: z.string().trim().min(1).max(10_000) }).strict();
export const ConfirmAlertResult = z
  .object({ caseId: Uuid, alertId: Uuid, created: z.boolean(), repeated: z.boolean() })
  .openapi('ConfirmAlertResult');

export const CaseListItem = z
  .object({
    id: Uuid,
    subjectId: Uuid,
    pseudonym: z.string(),
    subject: SubjectRef,
    region: z.string(),
    status: z.enum(CASE_STATUSES),
    severity: z.enum(SEVERITIES),
    owner: z.string().nullable(),
    alertCount: z.number().int(),
    openedBy: z.string(),
    resolution: z.enum(RESOLUTIONS).nullable(),
    openedAt: IsoDate,
    updatedAt: IsoDate,
  })
  .openapi('CaseListItem');

const csv = <T extends [string, ...string[]]>(values: T) =>
  z
    .string()
    .transform((s) => s.split(',').filter(Boolean))
    .pipe(z.array(z.enum(values)).min(1));

export const CaseListQuery = PageQuery.extend({
  status: csv([...CASE_STATUSES])
    .optional()
    .openapi({ description: 'Comma-separated statuses' }),
  region: z.string().min(1).max(16).optional(),
  owner: z.string().min(1).max(200).optional(),
  severity: csv([...SEVERITIES])
    .optional()
    .openapi({ description: 'Comma-separated severities' }),
  openedFrom: IsoDate.optional(),
  openedTo: IsoDate.optional(),
}).strict();

export const Decided = z.object({
  approver: z.string(),
  stakeholder: z.enum(STAKEHOLDERS),
  decision: z.enum(DECISIONS),
  comment: z.string(),
  decidedAt: IsoDate,
});

export const CaseStep = z
  .object({
    stepId: Uuid,
    kind: z.enum(STEP_KINDS),
    status: z.enum(STEP_STATUSES),
    reason: z.string(),
    templateId: z.string().nullable(),
    requestedBy: z.string(),
    requestedAt: IsoDate,
    dueAt: IsoDate,
    remindAt: z.array(IsoDate),
    requirements: z.array(Requirement),
    progress: z.array(Progress),
    /** Stakeholders that still owe approvals: who has not decided. */
    outstanding: z.array(z.enum(STAKEHOLDERS)),
    decisions: z.array(Decided),
    escalated: z.boolean(),
    outcomeReason: z.string().nullable(),
    decidedAt: IsoDate.nullable(),
    rule: z
      .object({ region: z.string(), regionVersion: z.number().int(), slaHours: z.number(), onExpiry: z.string() })
      .passthrough(),
  })
  .openapi('CaseStep');

export const CaseDetail = CaseListItem.extend({
  actionTaken: z.string().nullable(),
  resolvedBy: z.string().nullable(),
  resolvedAt: IsoDate.nullable(),
  version: z.number().int(),
  alerts: z.array(
    z.object({
      id: Uuid,
      policyId: Uuid,
      status: z.string(),
      severity: z.enum(SEVERITIES),
      score: z.number(),
      triggeredAt: IsoDate,
    }),
  ),
  notes: z.array(
    z.object({ id: Uuid, author: z.string(), kind: z.enum(['comment', 'system']), body: z.string(), createdAt: IsoDate }),
  ),
  steps: z.array(CaseStep),
  notices: z.array(CaseNotice),
  history: z.array(z.object({ id: Uuid, type: z.string(), actor: z.string(), details: z.record(z.unknown()), at: IsoDate })),
}).openapi('CaseDetail');

export const CaseSummary = z
  .object({
    caseId: Uuid,
    status: z.enum(CASE_STATUSES),
    owner: z.string().nullable(),
    severity: z.enum(SEVERITIES),
    alertIds: z.array(Uuid),
    resolution: Resolution,
    pendingSteps: z.array(Uuid),
    version: z.number().int(),
  })
  .openapi('CaseSummary');

export const AssignCaseInput = z.object({ owner: z.string().trim().min(1).max(200) }).strict();
export const AddNoteInput = z.object({ body: z.string().trim().min(1).max(20_000) }).strict();
export const RequestStepInput = z
  .object({
    kind: z.enum(STEP_KINDS),
    reason: z.string().trim().min(1).max(5_000),
    templateId: z.string().min(1).max(200).optional(),
  })
  .strict()
  .superRefine((v, ctx) => {
    if (v.kind !== 'send_notice' && v.templateId) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['templateId'], message: 'templateId is for send_notice steps only' });
    }
  });
export const StepRequestedResult = z
  .object({
    stepId: Uuid,
    kind: z.enum(STEP_KINDS).optional(),
    status: z.enum(STEP_STATUSES),
    requirements: z.array(Requirement),
    dueAt: IsoDate,
  })
  .openapi('StepRequested');
export const DecideStepInput = z.object({ decision: z.enum(DECISIONS), comment: z.string().trim().min(1).max(5_000) }).strict();
export const StepDecisionResult = z
  .object({
    stepId: Uuid,
    caseId: Uuid,
    kind: z.enum(STEP_KINDS),
    status: z.enum(STEP_STATUSES),
    reason: z.string().nullable(),
    requirements: z.array(Requirement),
    progress: z.array(Progress),
    outstanding: z.array(z.enum(STAKEHOLDERS)),
    decisions: z.array(
      z.object({
        approver: z.string(),
        stakeholder: z.enum(STAKEHOLDERS),
        decision: z.enum(DECISIONS),
        comment: z.string(),
        at: IsoDate,
      }),
    ),
    requestedBy: z.string(),
    requestedAt: IsoDate,
    dueAt: IsoDate,
    escalated: z.boolean(),
    version: z.number().int(),
  })
  .openapi('StepDecisionResult');
export const ResolveCaseInput = z
  .object({ outcome: z.enum(RESOLUTIONS), actionTaken: z.string().trim().min(1).max(5_000) })
  .strict();
export const InboxItem = z
  .object({
    stepId: Uuid,
    caseId: Uuid,
    kind: z.enum(STEP_KINDS),
    region: z.string(),
    requestedBy: z.string(),
    reason: z.string(),
    requestedAt: IsoDate,
    dueAt: IsoDate,
    requirements: z.array(Requirement),
    progress: z.array(Progress),
    outstanding: z.array(z.enum(STAKEHOLDERS)),
    caseSeverity: z.enum(SEVERITIES),
    caseStatus: z.enum(CASE_STATUSES),
  })
  .openapi('InboxItem');
export const RefusalDetails = z.object({ reason: z.enum(INELIGIBLE_REASONS) }).openapi('ApproverRefusal');

const CaseParams = z.object({ id: Uuid }).strict();
const StepParams = z.object({ id: Uuid, stepId: Uuid }).strict();
const KeysetCursor = z.tuple([IsoDate, Uuid]);

// ---------------------------------------------------------------------------------------------
// Helpers

/** A UUID derived from a business key (same key, same id), for idempotent commands. */
export function uuidFromKey(key: string): string {
  const h = createHash('sha256').update(key).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

function actorOf(principal: Principal, requestId: string): Actor {
  return { sub: principal.sub, roles: principal.roles, requestId };
}

/** Every Update gets a deadline: a worker that does not answer in time is a 504, not a hang. */
async function withDeadline<T>(deps: AppDeps, fn: () => Promise<T>): Promise<T> {
  try {
    return await deps.temporal.withDeadline(Date.now() + deps.config.cases.updateDeadlineMs, fn);
  } catch (err) {
    if (isGrpcDeadlineError(err) || err instanceof WorkflowUpdateRPCTimeoutOrCancelledError) {
      throw new HttpError(ErrorType.Timeout, 'The case workflow did not answer in time; retry the command');
    }
    throw err;
  }
}

/** The reason an Update validator gave, if the Update was rejected with one of our failures. */
function updateRefusal(err: unknown): { type: string; reason?: string; message: string } | null {
  if (!(err instanceof WorkflowUpdateFailedError)) return null;
  let cause: unknown = err.cause;
  while (cause) {
    if (cause instanceof ApplicationFailure && cause.type) {
      const d = cause.details?.[0] as { reason?: string } | undefined;
      return { type: cause.type, reason: d?.reason, message: cause.message };
    }
    cause = (cause as { cause?: unknown }).cause;
  }
  return null;
}

/**
 * The case row if it exists in the caller's regions; otherwise a 404 (never a 403). Another region's
 * case gets the same 404, audited as a denied `action`.
 */
async function caseInScope(ctx: { deps: AppDeps; principal: Principal }, caseId: string, action: string) {
  const row = await getCaseRow(ctx.deps.db, caseId);
  if (!row) throw notFound('Case');
  if (!inRegion(ctx.principal, row.region)) throw outsideRegion('Case', action, row);
  return row;
}

/** A command on a closed case: refused (409) and audited as denied, as the workflow's own refusal of it is. */
async function assertOpen(ctx: AnyCtx, row: { id: string; region: string; status: string }, action: string) {
  if (row.status !== 'closed') return;
  await auditRefused(ctx, action, { caseId: row.id, region: row.region }, 'case_closed');
  throw new HttpError(ErrorType.Conflict, 'The case is closed', { reason: 'case_closed' });
}

type AnyCtx = HandlerContext<unknown, unknown, unknown>;

/** Audit a command that a workflow refused (rejected Updates leave no trace in Temporal history). */
async function auditRefused(
  ctx: AnyCtx,
  action: string,
  target: { caseId: string; region: string; stepId?: string },
  reason: string,
) {
  await auditDenied(ctx.deps.db, ctx.actor, undefined, {
    action,
    reason,
    category: target.stepId ? 'approvals' : 'cases',
    targetType: target.stepId ? 'step' : 'case',
    targetId: target.stepId ?? target.caseId,
    region: target.region,
    details: { caseId: target.caseId, ...(target.stepId ? { stepId: target.stepId } : {}) },
  });
}

/** Run a case Update; a validator's refusal is audited as denied and answered with its type. */
async function caseUpdate<T>(ctx: AnyCtx, action: string, row: { id: string; region: string }, fn: () => Promise<T>): Promise<T> {
  try {
    return await withDeadline(ctx.deps, fn);
  } catch (err) {
    const refusal = updateRefusal(err);
    if (refusal) await auditRefused(ctx, action, { caseId: row.id, region: row.region }, refusal.reason ?? refusal.type);
    if (err instanceof WorkflowNotFoundError)
      throw new HttpError(ErrorType.Conflict, 'The case is closed', { reason: 'case_closed' });
    throw err;
  }
}

const iso = (d: Date) => d.toISOString();
const isoOrNull = (d: Date | null) => (d ? d.toISOString() : null);

// ---------------------------------------------------------------------------------------------
// Routes

export const caseRoutes = [
  route({
    method: 'post',
    path: '/v1/alerts/{id}/confirm',
    tag: 'Cases',
    summary: 'Confirm an alert into a case',
    description:
      'Attaches the alert to its subject’s active case, or opens a new case (at most one active case per subject, also under concurrent confirms). The comment becomes a note of the case. Confirming an alert again returns the same case. 201 when a case was opened, 200 otherwise.',
    permission: 'alerts:confirm',
    category: 'alerts',
    params: CaseParams,
    body: ConfirmAlertInput,
    responses: {
      200: { description: 'Attached to the subject’s active case', schema: ConfirmAlertResult },
      201: { description: 'A new case was opened', schema: ConfirmAlertResult },
      409: { description: 'The alert was dismissed' },
    },
    async handler({ deps, principal, params, body, actor, requestId }) {
      const outcome = await confirmAlertIntoCase(deps.db, {
        alertId: params.id,
        scope: regionScope(principal),
        newCaseId: randomUUID(),
        actor: principal.sub,
        audit: actor,
      });
      if (outcome.kind === 'not_found') throw notFound('Alert');
      if (outcome.kind === 'outside_scope') {
        throw outsideRegion('Alert', 'alert.confirm', { id: params.id, region: outcome.region });
      }
      if (outcome.kind === 'dismissed')
        throw new HttpError(ErrorType.Conflict, 'The alert was dismissed; it cannot be confirmed', { reason: 'alert_dismissed' });
      const c = outcome.caseRow;
      if (!outcome.caseClosed) {
        const who = actorOf(principal, requestId);
        const input: CaseWorkflowInput = {
          caseId: c.id,
          subjectId: c.subjectId,
          region: c.region,
          severity: c.severity,
          openedAt: c.createdAt.toISOString(),
          openedBy: { sub: c.openedBy, roles: [] },
          continueAsNewAfterEvents: deps.config.cases.continueAsNewAfterEvents,
        };
        const first: AttachAlertInput = {
          alertId: outcome.alert.id,
          severity: outcome.alert.severity,
          comment: body.comment,
          noteId: uuidFromKey(`confirm-note:${outcome.alert.id}`),
          actor: who,
          at: new Date().toISOString(),
        };
        const workflowId = workflowIds.case(c.id);
        const searchAttributes = [
          { key: WardenCaseId, value: c.id },
          { key: WardenRegion, value: c.region },
          { key: WardenStatus, value: 'open' },
        ];
        // The confirm that opened the case starts its workflow with the alert (eager when this
        // process runs a worker); another confirm of the subject may have started it first.
        let delivered = false;
        if (outcome.created) {
          try {
            await deps.temporal.workflow.start<typeof caseWorkflow>('caseWorkflow', {
              workflowId,
              taskQueue: deps.taskQueue,
              args: [{ ...input, firstAlert: first }],
              workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
              typedSearchAttributes: searchAttributes,
              requestEagerStart: deps.eagerStart === true,
            });
            delivered = true;
          } catch (err) {
            if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
          }
        }
        if (!delivered) {
          try {
            // Whoever comes first starts the workflow; every confirm delivers its alert (idempotent by id).
            await deps.temporal.workflow.signalWithStart<typeof caseWorkflow, [AttachAlertInput]>('caseWorkflow', {
              workflowId,
              taskQueue: deps.taskQueue,
              args: [input],
              signal: attachAlertSignal,
              signalArgs: [first],
              workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
              typedSearchAttributes: searchAttributes,
            });
          } catch (err) {
            // The case closed after this alert joined it: closing resolved the alert in Postgres.
            if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
          }
        }
      }
      return {
        status: outcome.created ? 201 : 200,
        headers: { Location: `/v1/cases/${c.id}` },
        body: { caseId: c.id, alertId: outcome.alert.id, created: outcome.created, repeated: outcome.repeated },
      };
    },
  }),

  route({
    method: 'get',
    path: '/v1/cases',
    tag: 'Cases',
    summary: 'List cases with filters (newest first, cursor pagination)',
    permission: 'cases:read',
    category: 'cases',
    query: CaseListQuery,
    responses: { 200: { description: 'A page of cases', schema: pageSchema(CaseListItem) } },
    async handler({ deps, principal, query, requestId }) {
      const after = decodeCursor(query.cursor, KeysetCursor);
      const rows = await listCases(deps.db, {
        filters: {
          status: query.status,
          region: query.region,
          owner: query.owner,
          severity: query.severity,
          openedFrom: query.openedFrom ? new Date(query.openedFrom) : undefined,
          openedTo: query.openedTo ? new Date(query.openedTo) : undefined,
        },
        scope: regionScope(principal),
        limit: query.limit,
        after,
      });
      const refs = await subjectRefs(
        deps,
        principal,
        rows.slice(0, query.limit).map((r) => ({ id: r.subjectId, pseudonym: r.pseudonym, region: r.region })),
        requestId,
      );
      // Fields spelled out: this is the API's busiest read, and an object rest copies key by key.
      const items = rows.map((r) => ({
        id: r.id,
        subjectId: r.subjectId,
        pseudonym: r.pseudonym,
        region: r.region,
        status: r.status,
        severity: r.severity,
        owner: r.owner,
        alertCount: r.alertCount,
        openedBy: r.openedBy,
        resolution: r.resolution,
        subject: refs.get(r.subjectId) ?? { id: r.subjectId, pseudonym: r.pseudonym },
        openedAt: r.openedAt,
        updatedAt: r.updatedAt,
      }));
      return { body: page(items, query.limit, (r) => [r.openedAt, r.id]) };
    },
  }),

  route({
    method: 'get',
    path: '/v1/cases/{id}',
    tag: 'Cases',
    summary: 'Read a case: alerts, notes, steps (who has and has not decided, SLA due times), history, resolution',
    description: 'Every read of a case is audited.',
    permission: 'cases:read',
    category: 'cases',
    params: CaseParams,
    responses: { 200: { description: 'The case', schema: CaseDetail } },
    async handler({ deps, principal, params, actor, requestId }) {
      const d = await getCaseDetail(deps.db, params.id);
      if (!d) throw notFound('Case');
      if (!inRegion(principal, d.case.region)) throw outsideRegion('Case', 'case.read', d.case);
      const refs = await subjectRefs(
        deps,
        principal,
        [{ id: d.case.subjectId, pseudonym: d.case.pseudonym, region: d.case.region }],
        requestId,
      );
      await appendAudit(deps.db, {
        ...actor,
        action: 'case.read',
        category: 'cases',
        targetType: 'case',
        targetId: d.case.id,
        region: d.case.region,
        outcome: 'allowed',
      });
      const { createdAt, updatedAt, resolvedAt, ...c } = d.case;
      return {
        body: {
          ...c,
          subject: refs.get(c.subjectId) ?? { id: c.subjectId, pseudonym: c.pseudonym },
          openedAt: iso(createdAt),
          updatedAt: iso(updatedAt),
          resolvedAt: isoOrNull(resolvedAt),
          alerts: d.alerts.map((a) => ({ ...a, triggeredAt: iso(a.triggeredAt) })),
          notes: d.notes.map((n) => ({ id: n.id, author: n.author, kind: n.kind, body: n.body, createdAt: iso(n.createdAt) })),
          steps: d.steps.map((s) => ({
            stepId: s.id,
            kind: s.kind,
            status: s.status,
            reason: s.reason,
            templateId: s.templateId,
            requestedBy: s.requestedBy,
            requestedAt: iso(s.requestedAt),
            dueAt: iso(s.dueAt),
            remindAt: s.remindAt,
            requirements: s.requirements,
            progress: s.progress,
            outstanding: s.outstanding,
            decisions: s.decisions.map((x) => ({
              approver: x.approver,
              stakeholder: x.stakeholder,
              decision: x.decision,
              comment: x.comment,
              decidedAt: iso(x.decidedAt),
            })),
            escalated: s.escalated,
            outcomeReason: s.outcomeReason,
            decidedAt: isoOrNull(s.decidedAt),
            rule: s.rule,
          })),
          notices: await caseNotices(deps.db, d.case.id),
          history: d.events.map((e) => ({ id: e.id, type: e.type, actor: e.actor, details: e.details, at: iso(e.at) })),
        },
      };
    },
  }),

  route({
    method: 'post',
    path: '/v1/cases/{id}/assign',
    tag: 'Cases',
    summary: 'Assign the case owner',
    permission: 'cases:assign',
    category: 'cases',
    params: CaseParams,
    body: AssignCaseInput,
    responses: {
      200: { description: 'The case after the change', schema: CaseSummary },
      409: { description: 'The case is closed' },
    },
    async handler(ctx) {
      const { deps, principal, params, body, actor, requestId } = ctx;
      const row = await caseInScope(ctx, params.id, 'case.assign');
      await assertOpen(ctx as AnyCtx, row, 'case.assign');
      const handle = deps.temporal.workflow.getHandle(workflowIds.case(row.id));
      const result = await caseUpdate(ctx as AnyCtx, 'case.assign', row, () =>
        handle.executeUpdate(assignCaseUpdate, { args: [{ owner: body.owner, actor: actorOf(principal, requestId) }] }),
      );
      await appendAudit(deps.db, {
        ...actor,
        action: 'case.assign',
        category: 'cases',
        targetType: 'case',
        targetId: row.id,
        region: row.region,
        outcome: 'allowed',
        details: { owner: body.owner },
      });
      return { body: result };
    },
  }),

  route({
    method: 'post',
    path: '/v1/cases/{id}/notes',
    tag: 'Cases',
    summary: 'Add a note (notes are immutable once written)',
    description: 'Send an `Idempotency-Key` header to make a retried request add the note once.',
    permission: 'cases:notes',
    category: 'cases',
    params: CaseParams,
    body: AddNoteInput,
    responses: {
      201: { description: 'The note was added', schema: z.object({ noteId: Uuid }) },
      409: { description: 'The case is closed' },
    },
    async handler(ctx) {
      const { deps, principal, params, body, actor, requestId, req } = ctx;
      const row = await caseInScope(ctx, params.id, 'case.note');
      await assertOpen(ctx as AnyCtx, row, 'case.note');
      const key = req.header('idempotency-key');
      const noteId = key ? uuidFromKey(`note:${row.id}:${principal.sub}:${key}`) : randomUUID();
      const handle = deps.temporal.workflow.getHandle(workflowIds.case(row.id));
      const result = await caseUpdate(ctx as AnyCtx, 'case.note', row, () =>
        handle.executeUpdate(addNoteUpdate, {
          updateId: `note-${noteId}`,
          args: [{ noteId, body: body.body, actor: actorOf(principal, requestId) }],
        }),
      );
      await appendAudit(deps.db, {
        ...actor,
        action: 'case.note',
        category: 'cases',
        targetType: 'case',
        targetId: row.id,
        region: row.region,
        outcome: 'allowed',
        details: { noteId },
      });
      return { status: 201, body: result };
    },
  }),

  route({
    method: 'post',
    path: '/v1/cases/{id}/steps',
    tag: 'Cases',
    summary: 'Request a step that needs approvals (escalation, confirmed resolution, reveal, notice)',
    description:
      'The step snapshots the approval rule of the case’s region for its kind; the approvals then run in the step’s workflow. Answers 202 with the requirements and the SLA due time.',
    permission: 'cases:steps',
    category: 'cases',
    params: CaseParams,
    body: RequestStepInput,
    responses: {
      202: { description: 'Requested; waiting for approvals', schema: StepRequestedResult },
      409: {
        description:
          'The case is closed, already past that stage, a step of that kind is pending, or the Idempotency-Key already requested another kind of step',
      },
      422: { description: 'The region has no approval rule for this kind' },
    },
    async handler(ctx) {
      const { deps, principal, params, body, actor, requestId, req } = ctx;
      const row = await caseInScope(ctx, params.id, 'case.step.request');
      await assertOpen(ctx as AnyCtx, row, 'case.step.request');
      const region = await getRegion(deps.db, row.region);
      const rule = region?.approvalRules[body.kind];
      if (!region || !rule) {
        throw new HttpError(ErrorType.PreconditionFailed, `Region ${row.region} has no approval rule for ${body.kind}`, {
          reason: 'no_rule',
        });
      }
      const templateId =
        body.kind === 'send_notice' ? await noticeTemplateForStep(deps.db, body.templateId, region.languages) : undefined;
      const snapshot: StepRuleSnapshot = {
        region: region.code,
        regionVersion: region.version,
        require: rule.require.map((r) => ({ ...r })),
        slaHours: rule.slaHours,
        remindAtPercent: rule.remindAtPercent,
        onExpiry: rule.onExpiry,
        ...(rule.escalateTo ? { escalateTo: rule.escalateTo } : {}),
        languages: region.languages,
        requireReviewerLanguage: region.requireReviewerLanguage,
        restricted: region.restricted.filter((e) => e.stepKinds.includes(body.kind)).map((e) => e.sub),
      };
      const key = req.header('idempotency-key');
      const stepId = key ? uuidFromKey(`step:${row.id}:${principal.sub}:${key}`) : randomUUID();
      const handle = deps.temporal.workflow.getHandle(workflowIds.case(row.id));
      const result = await caseUpdate(ctx as AnyCtx, 'case.step.request', row, () =>
        handle.executeUpdate(requestStepUpdate, {
          updateId: `request-step-${stepId}`,
          args: [
            {
              stepId,
              kind: body.kind,
              reason: body.reason,
              templateId,
              rule: snapshot,
              slaMs: slaMilliseconds(rule.slaHours, deps.config.cases.slaTimeScale),
              ...(body.kind === 'reveal_identity'
                ? { grantMs: slaMilliseconds(region.revealGrantHours, deps.config.cases.slaTimeScale) }
                : {}),
              requestedAt: new Date().toISOString(),
              actor: actorOf(principal, requestId),
            },
          ],
        }),
      );
      // Temporal answers a repeated update id with the first request's outcome, whatever this body says.
      if (result.kind && result.kind !== body.kind) {
        throw new HttpError(ErrorType.Conflict, `This Idempotency-Key already requested a ${result.kind} step`, {
          reason: 'idempotency_key_reused',
        });
      }
      await appendAudit(deps.db, {
        ...actor,
        action: 'case.step.request',
        category: 'cases',
        targetType: 'step',
        targetId: stepId,
        region: row.region,
        outcome: 'allowed',
        details: { caseId: row.id, kind: body.kind, regionVersion: region.version },
      });
      return { status: 202, headers: { Location: `/v1/cases/${row.id}` }, body: result };
    },
  }),

  route({
    method: 'post',
    path: '/v1/cases/{id}/steps/{stepId}/decision',
    tag: 'Approvals',
    summary: 'Approve or reject a step',
    description:
      'Refused with 403 and `error.details.reason` when the approver is outside the region (`not_in_region`), lacks the required stakeholder role (`wrong_stakeholder`), speaks none of the region’s languages where it demands one (`language_not_spoken`), is on the region’s restricted list (`restricted`), requested the step (`requester_cannot_approve`) or already decided (`already_decided`). Refusals are audited. 409 when the step is no longer pending.',
    permission: 'approvals:decide',
    category: 'approvals',
    params: StepParams,
    body: DecideStepInput,
    responses: {
      200: { description: 'The step’s new state', schema: StepDecisionResult },
      409: { description: 'The step is no longer pending' },
    },
    async handler(ctx) {
      const { deps, principal, params, body, requestId } = ctx;
      // Not `caseInScope`: an approver outside the case's region is told so (403 not_in_region, audited)
      // rather than answered 404, as the approval rules require.
      const row = await getDecisionTarget(deps.db, params.id, params.stepId);
      if (!row) throw notFound('Case');
      const step = row.step;
      if (!step) throw notFound('Step');
      const target = { caseId: row.caseId, region: row.region, stepId: step.id };
      // The region first: an approver outside it learns nothing of the step, not even its state.
      if (!inRegion(principal, row.region)) {
        await auditRefused(ctx as AnyCtx, 'step.decide', target, 'not_in_region');
        throw new HttpError(ErrorType.Forbidden, `The approver does not cover the case's region (${row.region})`, {
          reason: 'not_in_region',
        });
      }
      if (step.status !== 'pending') {
        await auditRefused(ctx as AnyCtx, 'step.decide', target, 'step_closed');
        throw new HttpError(ErrorType.Conflict, `The step is already ${step.status}`, {
          reason: 'step_closed',
          status: step.status,
        });
      }
      const eligible = checkApprover(principal, {
        rule: step.rule,
        requirements: step.requirements,
        requestedBy: step.requestedBy,
        decisions: step.decisions,
      });
      if (!eligible.ok) {
        await auditRefused(ctx as AnyCtx, 'step.decide', target, eligible.reason);
        throw new HttpError(ErrorType.Forbidden, eligible.message, { reason: eligible.reason });
      }
      const handle = deps.temporal.workflow.getHandle(step.workflowId);
      let view;
      try {
        view = await withDeadline(deps, () =>
          handle.executeUpdate(decideStepUpdate, {
            updateId: `decide-${step.id}-${principal.sub}-${requestId}`,
            args: [
              {
                decision: body.decision,
                comment: body.comment,
                actor: {
                  sub: principal.sub,
                  roles: principal.roles,
                  stakeholder: principal.stakeholder,
                  regions: principal.regions,
                  languages: principal.languages,
                  requestId,
                },
              },
            ],
          }),
        );
      } catch (err) {
        const refusal = updateRefusal(err);
        if (refusal) {
          await auditRefused(ctx as AnyCtx, 'step.decide', target, refusal.reason ?? refusal.type);
          throw new HttpError(refusal.type as ErrorType, refusal.message, { reason: refusal.reason });
        }
        if (err instanceof WorkflowNotFoundError) {
          await auditRefused(ctx as AnyCtx, 'step.decide', target, 'step_closed');
          throw new HttpError(ErrorType.Conflict, 'The step is no longer pending', { reason: 'step_closed' });
        }
        throw err;
      }
      // The allowed audit entry was written with the decision, in the projection's transaction.
      return { body: view };
    },
  }),

  route({
    method: 'post',
    path: '/v1/cases/{id}/resolve',
    tag: 'Cases',
    summary: 'Close the case: benign directly, confirmed_violation once its step is approved',
    description: 'Closing resolves the case’s alerts and cancels its pending steps.',
    permission: 'cases:resolve',
    category: 'cases',
    params: CaseParams,
    body: ResolveCaseInput,
    responses: {
      200: { description: 'The closed case', schema: CaseSummary },
      409: { description: 'Already closed, or confirmed_violation without an approved step' },
    },
    async handler(ctx) {
      const { deps, principal, params, body, actor, requestId } = ctx;
      const row = await caseInScope(ctx, params.id, 'case.resolve');
      await assertOpen(ctx as AnyCtx, row, 'case.resolve');
      const handle = deps.temporal.workflow.getHandle(workflowIds.case(row.id));
      const result = await caseUpdate(ctx as AnyCtx, 'case.resolve', row, () =>
        handle.executeUpdate(resolveCaseUpdate, {
          args: [{ outcome: body.outcome, actionTaken: body.actionTaken, actor: actorOf(principal, requestId) }],
        }),
      );
      await appendAudit(deps.db, {
        ...actor,
        action: 'case.resolve',
        category: 'cases',
        targetType: 'case',
        targetId: row.id,
        region: row.region,
        outcome: 'allowed',
        details: { outcome: body.outcome },
      });
      return { body: result };
    },
  }),

  route({
    method: 'get',
    path: '/v1/approvals/inbox',
    tag: 'Approvals',
    summary: 'Steps waiting for the calling approver (oldest first)',
    permission: 'approvals:inbox',
    category: 'approvals',
    query: PageQuery.strict(),
    responses: { 200: { description: 'A page of steps', schema: pageSchema(InboxItem) } },
    async handler({ deps, principal, query }) {
      if (!principal.stakeholder) return { body: { items: [], nextCursor: null } };
      const after = decodeCursor(query.cursor, KeysetCursor);
      const rows = await listInbox(deps.db, {
        approver: { sub: principal.sub, stakeholder: principal.stakeholder, languages: principal.languages },
        scope: regionScope(principal),
        limit: query.limit,
        after,
      });
      const items = rows.map((r) => ({ ...r, requestedAt: iso(r.requestedAt), dueAt: iso(r.dueAt) }));
      return { body: page(items, query.limit, (r) => [r.requestedAt, r.stepId]) };
    },
  }),
];
