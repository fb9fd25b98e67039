import { z } from 'zod';
import { appendAudit } from '../../db/audit';
import { alertStatuses, assignAlert, dismissAlerts, getAlert, listAlerts, type AlertListRow } from '../../db/queries/alerts';
import { inRegion, regionScope } from '../../domain/authz';
import { ErrorType } from '../../domain/errors';
import { POLICY_TEMPLATES } from '../../domain/policies';
import { RegionCode } from '../../domain/regions';
import { SEVERITIES } from '../../domain/signals';
import { HttpError, notFound, outsideRegion } from '../errors';
import { auditDeniedPerRegion, route } from '../http';
import { CreatedCursor, decodeCursor, page, PageQuery, pageSchema } from '../pagination';
import { SubjectRef, subjectRefs } from '../subject-view';

export const ALERT_STATUSES = ['needs_review', 'confirmed', 'dismissed', 'resolved'] as const;
/** Why an analyst dismisses an alert: a fixed list, so dismissals can be counted and tuned on. */
export const DISMISS_REASONS = [
  'false_positive',
  'benign_activity',
  'authorized_business_activity',
  'insufficient_evidence',
  'duplicate',
  'policy_needs_tuning',
  'other',
] as const;
export const MAX_BULK_DISMISS = 400;

const RiskFactorSchema = z
  .object({
    kind: z.enum(['trigger', 'indicator', 'booster']),
    name: z.string(),
    points: z.number().int(),
    signalIds: z
      .array(z.string())
      .optional()
      .describe('The signals behind the points (first 50; `detail.events` counts them all)'),
    detail: z.record(z.unknown()).optional(),
  })
  .openapi('RiskFactor');

export const AlertSchema = z
  .object({
    id: z.string().uuid(),
    subject: SubjectRef,
    policy: z.object({ id: z.string().uuid(), name: z.string().nullable(), template: z.enum(POLICY_TEMPLATES).nullable() }),
    region: z.string(),
    status: z.enum(ALERT_STATUSES),
    severity: z.enum(SEVERITIES),
    score: z.number().int(),
    assignee: z.string().nullable(),
    caseId: z.string().uuid().nullable(),
    triggeredAt: z.string().datetime().describe('When the policy’s trigger event happened'),
    createdAt: z.string().datetime(),
    updatedAt: z.string().datetime(),
    dismissal: z
      .object({
        reason: z.string(),
        comment: z.string().nullable(),
        by: z.string().nullable(),
        at: z.string().datetime().nullable(),
      })
      .nullable(),
  })
  .openapi('Alert');

export const AlertDetailSchema = AlertSchema.extend({
  riskFactors: z.array(RiskFactorSchema).describe('What made up the score: score = min(100, sum of points)'),
}).openapi('AlertDetail');

const AlertParams = z.object({ id: z.string().uuid() });

const AlertListQuery = PageQuery.extend({
  status: z.enum(ALERT_STATUSES).optional(),
  severity: z.enum(SEVERITIES).optional(),
  policyId: z.string().uuid().optional(),
  region: RegionCode.optional(),
  subjectId: z.string().uuid().optional(),
  assignee: z.string().min(1).max(200).optional(),
  unassigned: z
    .enum(['true', 'false'])
    .transform((v) => v === 'true')
    .optional()
    .describe('true: alerts nobody is assigned to; false: alerts somebody is assigned to'),
  createdFrom: z.string().datetime({ offset: true }).optional().describe('Created at or after (ISO 8601)'),
  createdTo: z.string().datetime({ offset: true }).optional().describe('Created before (ISO 8601)'),
}).strict();

const Comment = z.string().trim().min(1, 'a comment is required').max(2000);
const DismissBody = z.object({ reason: z.enum(DISMISS_REASONS), comment: Comment }).strict();
const BulkDismissBody = z
  .object({
    ids: z.array(z.string().uuid()).min(1).max(MAX_BULK_DISMISS, `at most ${MAX_BULK_DISMISS} alerts per bulk dismissal`),
    reason: z.enum(DISMISS_REASONS),
    comment: Comment,
  })
  .strict();
const AssignBody = z
  .object({ assignee: z.string().trim().min(1).max(200).nullable().describe('A user id (token subject), or null to unassign') })
  .strict();

const BulkDismissResult = z
  .object({
    dismissed: z.array(z.string().uuid()),
    failed: z.array(
      z.object({
        id: z.string().uuid(),
        reason: z.enum(['not_found', 'not_needs_review']),
        status: z.enum(ALERT_STATUSES).optional(),
      }),
    ),
  })
  .openapi('BulkDismissResult');

function present(row: AlertListRow, refs: Map<string, SubjectRef>) {
  const a = row.alert;
  return {
    id: a.id,
    subject: refs.get(a.subjectId) ?? { id: a.subjectId, pseudonym: row.pseudonym },
    policy: { id: a.policyId, name: row.policyName ?? null, template: row.template ?? null },
    region: a.region,
    status: a.status,
    severity: a.severity,
    score: a.score,
    assignee: a.assignee,
    caseId: a.caseId,
    triggeredAt: a.triggeredAt.toISOString(),
    createdAt: a.createdAt.toISOString(),
    updatedAt: a.updatedAt.toISOString(),
    dismissal: a.dismissReason
      ? { reason: a.dismissReason, comment: a.dismissComment, by: a.dismissedBy, at: a.dismissedAt?.toISOString() ?? null }
      : null,
  };
}

const refInputs = (rows: AlertListRow[]) =>
  rows.map((r) => ({ id: r.alert.subjectId, pseudonym: r.pseudonym, region: r.alert.region }));

export const alertRoutes = [
  route({
    method: 'get',
    path: '/v1/alerts',
    tag: 'Alerts',
    summary: 'The alert queue, newest first, with filters',
    description:
      'Only alerts of the caller’s regions. Filters: status, severity, policyId, region, subjectId, assignee / unassigned, createdFrom / createdTo.',
    permission: 'alerts:read',
    category: 'alerts',
    query: AlertListQuery,
    responses: { 200: { description: 'Alerts', schema: pageSchema(AlertSchema) } },
    async handler({ deps, principal, query, requestId }) {
      const before = decodeCursor(query.cursor, CreatedCursor);
      const rows = await listAlerts(deps.db, { ...query, regions: regionScope(principal), before, limit: query.limit });
      const p = page(rows, query.limit, (r) => [r.cursorAt, r.alert.id]);
      const refs = await subjectRefs(deps, principal, refInputs(p.items), requestId);
      return { body: { items: p.items.map((r) => present(r, refs)), nextCursor: p.nextCursor } };
    },
  }),
  route({
    method: 'get',
    path: '/v1/alerts/{id}',
    tag: 'Alerts',
    summary: 'One alert with the risk factors that make up its score',
    permission: 'alerts:read',
    category: 'alerts',
    params: AlertParams,
    responses: { 200: { description: 'The alert', schema: AlertDetailSchema } },
    async handler({ deps, principal, params, requestId }) {
      const row = await getAlert(deps.db, params.id);
      if (!row) throw notFound('Alert');
      if (!inRegion(principal, row.alert.region)) throw outsideRegion('Alert', 'alert.read', row.alert);
      const refs = await subjectRefs(deps, principal, refInputs([row]), requestId);
      return { body: { ...present(row, refs), riskFactors: row.alert.riskFactors } };
    },
  }),
  route({
    method: 'post',
    path: '/v1/alerts/{id}/dismiss',
    tag: 'Alerts',
    summary: 'Dismiss an alert that needs review, with a reason from the fixed list and a comment',
    description: `Reasons: ${DISMISS_REASONS.join(', ')}. Only alerts in needs_review can be dismissed (409 otherwise).`,
    permission: 'alerts:triage',
    category: 'alerts',
    params: AlertParams,
    body: DismissBody,
    responses: { 200: { description: 'The dismissed alert', schema: AlertSchema } },
    async handler({ deps, principal, params, body, actor, requestId }) {
      const scope = regionScope(principal);
      await deps.db.transaction(async (tx) => {
        const [done] = await dismissAlerts(tx, [params.id], { ...body, by: principal.sub, regions: scope });
        if (!done) {
          const [current] = await alertStatuses(tx, [params.id]);
          if (!current) throw notFound('Alert');
          if (!inRegion(principal, current.region)) throw outsideRegion('Alert', 'alert.dismiss', current);
          throw new HttpError(
            ErrorType.Conflict,
            `Only an alert that needs review can be dismissed; this one is ${current.status}`,
            {
              status: current.status,
            },
          );
        }
        await appendAudit(tx, {
          ...actor,
          action: 'alert.dismiss',
          category: 'alerts',
          targetType: 'alert',
          targetId: params.id,
          region: done.region,
          outcome: 'allowed',
          details: { reason: body.reason },
        });
      });
      const row = (await getAlert(deps.db, params.id))!;
      const refs = await subjectRefs(deps, principal, refInputs([row]), requestId);
      return { body: present(row, refs) };
    },
  }),
  route({
    method: 'post',
    path: '/v1/alerts/dismiss',
    tag: 'Alerts',
    summary: `Dismiss up to ${MAX_BULK_DISMISS} alerts at once, with one reason and comment`,
    description:
      'Alerts that need review are dismissed together; the others are listed in `failed` (not found / outside the caller’s ' +
      'regions, or not in needs_review). One audit entry per region lists the dismissed ids.',
    permission: 'alerts:triage',
    category: 'alerts',
    body: BulkDismissBody,
    responses: { 200: { description: 'What was dismissed, and what was not', schema: BulkDismissResult } },
    async handler({ deps, principal, body, actor }) {
      const ids = [...new Set(body.ids)];
      const scope = regionScope(principal);
      const result = await deps.db.transaction(async (tx) => {
        const done = await dismissAlerts(tx, ids, {
          reason: body.reason,
          comment: body.comment,
          by: principal.sub,
          regions: scope,
        });
        const doneIds = new Set(done.map((d) => d.id));
        const rest = await alertStatuses(
          tx,
          ids.filter((id) => !doneIds.has(id)),
        );
        const found = new Map(rest.filter((r) => inRegion(principal, r.region)).map((r) => [r.id, r]));
        // Alerts of other regions are answered `not_found` like missing ones, and audited as denied.
        const outside = new Map<string, string[]>();
        for (const r of rest) if (!inRegion(principal, r.region)) outside.set(r.region, [...(outside.get(r.region) ?? []), r.id]);
        await auditDeniedPerRegion(tx, actor, 'alerts', outside, (list) => ({
          action: 'alerts.bulk_dismiss',
          reason: 'outside_region',
          targetType: 'alert',
          targetId: list.length === 1 ? list[0] : null,
          details: { count: list.length, alertIds: list.sort() },
        }));
        const failed = ids
          .filter((id) => !doneIds.has(id))
          .map((id) => {
            const r = found.get(id);
            return r ? { id, reason: 'not_needs_review' as const, status: r.status } : { id, reason: 'not_found' as const };
          });
        const byRegion = new Map<string, string[]>();
        for (const d of done) byRegion.set(d.region, [...(byRegion.get(d.region) ?? []), d.id]);
        for (const [region, list] of [...byRegion.entries()].sort()) {
          await appendAudit(tx, {
            ...actor,
            action: 'alerts.bulk_dismiss',
            category: 'alerts',
            targetType: 'alert',
            region,
            outcome: 'allowed',
            details: { reason: body.reason, count: list.length, alertIds: list.sort() },
          });
        }
        return { dismissed: ids.filter((id) => doneIds.has(id)), failed };
      });
      return { body: result };
    },
  }),
  route({
    method: 'post',
    path: '/v1/alerts/{id}/assign',
    tag: 'Alerts',
    summary: 'Assign an open alert to a user (or unassign it with null)',
    permission: 'alerts:triage',
    category: 'alerts',
    params: AlertParams,
    body: AssignBody,
    responses: { 200: { description: 'The alert', schema: AlertSchema } },
    async handler({ deps, principal, params, body, actor, requestId }) {
      await deps.db.transaction(async (tx) => {
        const [current] = await alertStatuses(tx, [params.id]);
        if (!current) throw notFound('Alert');
        if (!inRegion(principal, current.region)) throw outsideRegion('Alert', 'alert.assign', current);
        if (!(await assignAlert(tx, params.id, body.assignee))) {
          // Its state now, not the one read before the update (a dismissal may have won the race).
          const [now] = await alertStatuses(tx, [params.id]);
          const status = now?.status ?? current.status;
          throw new HttpError(ErrorType.Conflict, `Only an open alert can be assigned; this one is ${status}`, { status });
        }
        await appendAudit(tx, {
          ...actor,
          action: 'alert.assign',
          category: 'alerts',
          targetType: 'alert',
          targetId: params.id,
          region: current.region,
          outcome: 'allowed',
          details: { assignee: body.assignee },
        });
      });
      const row = (await getAlert(deps.db, params.id))!;
      const refs = await subjectRefs(deps, principal, refInputs([row]), requestId);
      return { body: present(row, refs) };
    },
  }),
];
