/**
 * Case, step and inbox queries for the API (reads of the read models), and the confirm claim: the
 * one write the API makes to `cases`, because "at most one active case per subject" is a Postgres
 * invariant that must hold atomically with the alert's confirmation.
 */
import {
  and,
  arrayContains,
  arrayOverlaps,
  asc,
  desc,
  eq,
  gte,
  inArray,
  lte,
  ne,
  notExists,
  or,
  sql,
  type SQL,
} from 'drizzle-orm';
import { unionAll } from 'drizzle-orm/pg-core';
import { appendAudit, type AuditEntry } from '../audit';
import type { DbOrTx, Db } from '../index';
import { alerts, caseEvents, caseNotes, cases, stepDecisions, steps, subjects, type CaseRow, type StepRow } from '../schema';
import type { CaseStatus, Severity } from '../../domain/cases';
import type { Stakeholder } from '../../domain/roles';

export type ConfirmOutcome =
  | { kind: 'not_found' }
  /** The alert exists, in a region outside the caller's scope (answered like `not_found`, audited as denied). */
  | { kind: 'outside_scope'; region: string }
  | { kind: 'dismissed' }
  | {
      kind: 'confirmed';
      caseId: string;
      /** A new case was opened for this confirm. */
      created: boolean;
      /** The alert had been confirmed before: nothing changed. */
      repeated: boolean;
      /** The alert's case is closed (its alerts are resolved): nothing to deliver to a workflow. */
      caseClosed: boolean;
      alert: { id: string; severity: Severity; region: string; subjectId: string };
      caseRow: { id: string; subjectId: string; region: string; severity: Severity; createdAt: Date; openedBy: string };
    };

/**
 * Confirm an alert into its subject's active case, opening one if there is none. Concurrent confirms
 * for one subject meet at the partial unique index `cases_one_active_per_subject`: one INSERT wins,
 * the others attach to its row. Confirming an alert twice returns the same case.
 */
export async function confirmAlertIntoCase(
  db: Db,
  opts: {
    alertId: string;
    scope: string[] | null;
    newCaseId: string;
    actor: string;
    audit: Omit<AuditEntry, 'action' | 'category' | 'outcome'>;
  },
): Promise<ConfirmOutcome> {
  for (let attempt = 0; ; attempt++) {
    const result = await db.transaction(async (tx): Promise<ConfirmOutcome | 'retry'> => {
      const [alert] = await tx
        .select({
          id: alerts.id,
          subjectId: alerts.subjectId,
          region: alerts.region,
          status: alerts.status,
          severity: alerts.severity,
          caseId: alerts.caseId,
        })
        .from(alerts)
        .where(eq(alerts.id, opts.alertId))
        .for('update');
      if (!alert) return { kind: 'not_found' };
      if (opts.scope !== null && !opts.scope.includes(alert.region)) return { kind: 'outside_scope', region: alert.region };
      if (alert.status === 'dismissed') return { kind: 'dismissed' };
      const alertInfo = { id: alert.id, severity: alert.severity, region: alert.region, subjectId: alert.subjectId };
      if ((alert.status === 'confirmed' || alert.status === 'resolved') && alert.caseId) {
        const [row] = await tx.select().from(cases).where(eq(cases.id, alert.caseId));
        if (!row) return { kind: 'not_found' };
        return {
          kind: 'confirmed',
          caseId: row.id,
          created: false,
          repeated: true,
          caseClosed: row.status === 'closed',
          alert: alertInfo,
          caseRow: row,
        };
      }
      const now = new Date();
      const inserted = await tx
        .insert(cases)
        .values({
          id: opts.newCaseId,
          subjectId: alert.subjectId,
          region: alert.region,
          status: 'open',
          severity: alert.severity,
          openedBy: opts.actor,
          workflowId: `case-${opts.newCaseId}`,
          createdAt: now,
          updatedAt: now,
        })
        .onConflictDoNothing({ target: cases.subjectId, where: sql`${cases.status} <> 'closed'` })
        .returning();
      let row: CaseRow | undefined = inserted[0];
      const created = row !== undefined;
      if (!row) {
        // Lock the active case so a concurrent close waits for this attach (and then resolves it).
        [row] = await tx
          .select()
          .from(cases)
          .where(and(eq(cases.subjectId, alert.subjectId), ne(cases.status, 'closed')))
          .for('update');
        if (!row) return 'retry'; // it closed between our insert and our read: try again
      }
      await tx.update(alerts).set({ status: 'confirmed', caseId: row.id, updatedAt: now }).where(eq(alerts.id, alert.id));
      await appendAudit(tx, {
        ...opts.audit,
        action: 'alert.confirm',
        category: 'alerts',
        outcome: 'allowed',
        targetType: 'alert',
        targetId: alert.id,
        region: alert.region,
        details: { caseId: row.id, caseCreated: created },
      });
      return { kind: 'confirmed', caseId: row.id, created, repeated: false, caseClosed: false, alert: alertInfo, caseRow: row };
    });
    if (result !== 'retry') return result;
    if (attempt >= 5) throw new Error('confirm: the subject’s active case kept changing');
  }
}

export async function getCaseRow(db: DbOrTx, caseId: string): Promise<CaseRow | null> {
  const [row] = await db.select().from(cases).where(eq(cases.id, caseId));
  return row ?? null;
}

export interface CaseFilters {
  status?: CaseStatus[];
  region?: string;
  owner?: string;
  severity?: Severity[];
  openedFrom?: Date;
  openedTo?: Date;
}

const caseListColumns = {
  id: cases.id,
  subjectId: cases.subjectId,
  pseudonym: subjects.pseudonym,
  region: cases.region,
  status: cases.status,
  severity: cases.severity,
  owner: cases.owner,
  alertCount: cases.alertCount,
  openedBy: cases.openedBy,
  resolution: cases.resolution,
  createdAt: cases.createdAt,
  updatedAt: cases.updatedAt,
};

/** Above this many (region × status × severity) combinations, the list is one plain query. */
const MAX_LIST_BRANCHES = 24;

/**
 * The case list: newest first, keyset on (created_at, id), limited to the caller's regions.
 *
 * Several values of an equality filter (the caller's regions, `status=open,under_investigation`,
 * `severity=low,high`) would make one query read every matching row to sort them; instead each
 * combination is its own branch that an index on (…, created_at, id) serves already ordered and
 * stops after a page, and the branches' pages are merged (`union all`, then one small sort).
 */
export function listCases(
  db: DbOrTx,
  opts: { filters: CaseFilters; scope: string[] | null; limit: number; after: [string, string] | null },
) {
  const f = opts.filters;
  // The regions the list may show: the filter's, within the caller's scope.
  let regions: string[] | null = opts.scope;
  if (f.region) regions = opts.scope === null || opts.scope.includes(f.region) ? [f.region] : [];
  if (regions !== null && regions.length === 0) regions = [''];
  const common: (SQL | undefined)[] = [];
  if (f.owner) common.push(eq(cases.owner, f.owner));
  if (f.openedFrom) common.push(gte(cases.createdAt, f.openedFrom));
  if (f.openedTo) common.push(lte(cases.createdAt, f.openedTo));
  if (opts.after) {
    const [at, id] = opts.after;
    // A row comparison, so the btree on (…, created_at, id) serves the keyset directly.
    common.push(sql`(${cases.createdAt}, ${cases.id}) < (${new Date(at)}, ${id}::uuid)`);
  }
  const dims: Array<{ values: readonly string[] | null | undefined; cond: (v: string) => SQL; all: (vs: string[]) => SQL }> = [
    { values: regions, cond: (v) => eq(cases.region, v), all: (vs) => inArray(cases.region, vs) },
    {
      values: f.status?.length ? f.status : null,
      cond: (v) => eq(cases.status, v as CaseStatus),
      all: (vs) => inArray(cases.status, vs as CaseStatus[]),
    },
    {
      values: f.severity?.length ? f.severity : null,
      cond: (v) => eq(cases.severity, v as Severity),
      all: (vs) => inArray(cases.severity, vs as Severity[]),
    },
  ];
  const query = (where: (SQL | undefined)[]) =>
    db
      .select(caseListColumns)
      .from(cases)
      .innerJoin(subjects, eq(subjects.id, cases.subjectId))
      .where(and(...common, ...where))
      .orderBy(desc(cases.createdAt), desc(cases.id))
      .limit(opts.limit + 1);

  let branches: SQL[][] = [[]];
  for (const d of dims) if (d.values) branches = branches.flatMap((b) => d.values!.map((v) => [...b, d.cond(v)]));
  if (branches.length === 1 || branches.length > MAX_LIST_BRANCHES) {
    return query(
      dims.filter((d) => d.values).map((d) => (d.values!.length === 1 ? d.cond(d.values![0]!) : d.all([...d.values!]))),
    );
  }
  const [first, second, ...rest] = branches.map(query);
  return unionAll(first!, second!, ...rest)
    .orderBy(desc(cases.createdAt), desc(cases.id))
    .limit(opts.limit + 1);
}

export type StepWithDecisions = StepRow & {
  decisions: Array<{
    approver: string;
    stakeholder: Stakeholder;
    decision: 'approve' | 'reject';
    comment: string;
    decidedAt: Date;
  }>;
};

export async function getStep(db: DbOrTx, caseId: string, stepId: string): Promise<StepWithDecisions | null> {
  const [row] = await db
    .select()
    .from(steps)
    .where(and(eq(steps.id, stepId), eq(steps.caseId, caseId)));
  if (!row) return null;
  const decisions = await db
    .select({
      approver: stepDecisions.approver,
      stakeholder: stepDecisions.stakeholder,
      decision: stepDecisions.decision,
      comment: stepDecisions.comment,
      decidedAt: stepDecisions.decidedAt,
    })
    .from(stepDecisions)
    .where(eq(stepDecisions.stepId, stepId))
    .orderBy(asc(stepDecisions.decidedAt));
  return { ...row, decisions };
}

/** Everything the case page shows: the case, its alerts, notes, steps with decisions, history. */
export async function getCaseDetail(db: DbOrTx, caseId: string) {
  const [row] = await db
    .select({
      ...caseListColumns,
      actionTaken: cases.actionTaken,
      resolvedBy: cases.resolvedBy,
      resolvedAt: cases.resolvedAt,
      version: cases.version,
    })
    .from(cases)
    .innerJoin(subjects, eq(subjects.id, cases.subjectId))
    .where(eq(cases.id, caseId));
  if (!row) return null;
  const [alertRows, notes, stepRows, decisions, events] = await Promise.all([
    db
      .select({
        id: alerts.id,
        policyId: alerts.policyId,
        status: alerts.status,
        severity: alerts.severity,
        score: alerts.score,
        triggeredAt: alerts.triggeredAt,
      })
      .from(alerts)
      .where(eq(alerts.caseId, caseId))
      .orderBy(asc(alerts.triggeredAt), asc(alerts.id)),
    db.select().from(caseNotes).where(eq(caseNotes.caseId, caseId)).orderBy(asc(caseNotes.createdAt), asc(caseNotes.id)),
    db.select().from(steps).where(eq(steps.caseId, caseId)).orderBy(asc(steps.requestedAt), asc(steps.id)),
    db
      .select({
        stepId: stepDecisions.stepId,
        approver: stepDecisions.approver,
        stakeholder: stepDecisions.stakeholder,
        decision: stepDecisions.decision,
        comment: stepDecisions.comment,
        decidedAt: stepDecisions.decidedAt,
      })
      .from(stepDecisions)
      .innerJoin(steps, eq(steps.id, stepDecisions.stepId))
      .where(eq(steps.caseId, caseId))
      .orderBy(asc(stepDecisions.decidedAt)),
    db.select().from(caseEvents).where(eq(caseEvents.caseId, caseId)).orderBy(asc(caseEvents.at), asc(caseEvents.id)),
  ]);
  return {
    case: row,
    alerts: alertRows,
    notes,
    steps: stepRows.map((s) => ({ ...s, decisions: decisions.filter((d) => d.stepId === s.id) })),
    events,
  };
}

/**
 * Steps waiting for this approver: pending, in their regions, still short of their stakeholder,
 * not requested by them, not decided by them, not restricted for them, in a language they speak
 * where the region requires it. Oldest first (closest to its deadline), keyset (requested_at, id).
 */
export async function listInbox(
  db: DbOrTx,
  opts: {
    approver: { sub: string; stakeholder: Stakeholder; languages: string[] };
    scope: string[] | null;
    limit: number;
    after: [string, string] | null;
  },
) {
  const a = opts.approver;
  const where: (SQL | undefined)[] = [
    eq(steps.status, 'pending'),
    arrayContains(steps.outstanding, [a.stakeholder]),
    ne(steps.requestedBy, a.sub),
    sql`not (${steps.restricted} @> array[${a.sub}]::text[])`,
    or(eq(steps.requireLanguage, false), a.languages.length ? arrayOverlaps(steps.languages, a.languages) : sql`false`),
    notExists(
      db
        .select({ one: sql`1` })
        .from(stepDecisions)
        .where(and(eq(stepDecisions.stepId, steps.id), eq(stepDecisions.approver, a.sub))),
    ),
  ];
  if (opts.scope !== null) where.push(inArray(steps.region, opts.scope.length ? opts.scope : ['']));
  if (opts.after) {
    const [at, id] = opts.after;
    const ts = new Date(at);
    where.push(sql`(${steps.requestedAt}, ${steps.id}) > (${ts}, ${id}::uuid)`);
  }
  return db
    .select({
      stepId: steps.id,
      caseId: steps.caseId,
      kind: steps.kind,
      region: steps.region,
      requestedBy: steps.requestedBy,
      reason: steps.reason,
      requestedAt: steps.requestedAt,
      dueAt: steps.dueAt,
      requirements: steps.requirements,
      progress: steps.progress,
      outstanding: steps.outstanding,
      caseSeverity: cases.severity,
      caseStatus: cases.status,
    })
    .from(steps)
    .innerJoin(cases, eq(cases.id, steps.caseId))
    .where(and(...where))
    .orderBy(asc(steps.requestedAt), asc(steps.id))
    .limit(opts.limit + 1);
}
