/**
 * Case, step and inbox queries for the API (reads of the read models), and the confirm claim: the
 * one write the API makes to `cases`, because "at most one active case per subject" is a Postgres
 * invariant that must hold atomically with the alert's confirmation.
 */
import { and, arrayContains, arrayOverlaps, asc, eq, inArray, ne, notExists, or, sql, type SQL } from 'drizzle-orm';
import pg, { type CustomTypesConfig } from 'pg';
import { appendAudit, type AuditEntry } from '../audit';
import type { DbOrTx, Db, Tx } from '../index';
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

/** One row of the case list (the columns of `caseListColumns`). */
export interface CaseListRow {
  id: string;
  subjectId: string;
  pseudonym: string;
  region: string;
  status: CaseStatus;
  severity: Severity;
  owner: string | null;
  alertCount: number;
  openedBy: string;
  resolution: CaseRow['resolution'];
  /** The keyset's sort column, for the union's final order: Postgres's text, left unparsed. */
  createdAt: string;
  /** ISO 8601 UTC with milliseconds, like `toISOString()`. */
  openedAt: string;
  updatedAt: string;
}

/** Above this many (region × status × severity) combinations, the list is one plain query. */
const MAX_LIST_BRANCHES = 24;

/** `to_char` pattern of `Date.prototype.toISOString()` (UTC, milliseconds): no Date parsing and formatting per row in Node. */
const ISO_MS = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`;

const TIMESTAMPTZ_OID = 1184;
/** Type parsers that leave timestamptz as Postgres's text (the list formats its dates in SQL). */
const UNPARSED_TIMESTAMPTZ = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === TIMESTAMPTZ_OID ? (v: string) => v : pg.types.getTypeParser(oid, format)) as CustomTypesConfig['getTypeParser'],
};

const LIST_SELECT = `select c.id, c.subject_id as "subjectId", s.pseudonym, c.region, c.status, c.severity, c.owner,
  c.alert_count as "alertCount", c.opened_by as "openedBy", c.resolution, c.created_at as "createdAt",
  to_char(c.created_at at time zone 'UTC', ${ISO_MS}) as "openedAt", to_char(c.updated_at at time zone 'UTC', ${ISO_MS}) as "updatedAt"
  from cases c join subjects s on s.id = c.subject_id`;

/**
 * The case list: newest first, keyset on (created_at, id), limited to the caller's regions.
 *
 * Several values of an equality filter (the caller's regions, `status=open,under_investigation`,
 * `severity=low,high`) would make one query read every matching row to sort them; instead each
 * combination is its own branch that an index on (…, created_at, id) serves already ordered and
 * stops after a page, and the branches' pages are merged (`union all`, then one small sort).
 *
 * The hot read of the API, so plain SQL (no query objects built per request); every value is a
 * parameter.
 */
export async function listCases(
  db: Db,
  opts: { filters: CaseFilters; scope: string[] | null; limit: number; after: [string, string] | null },
): Promise<CaseListRow[]> {
  const f = opts.filters;
  // The regions the list may show: the filter's, within the caller's scope.
  let regions: string[] | null = opts.scope;
  if (f.region) regions = opts.scope === null || opts.scope.includes(f.region) ? [f.region] : [];
  if (regions !== null && regions.length === 0) return [];
  const values: unknown[] = [];
  const param = (v: unknown, type: string) => {
    values.push(v);
    return `$${values.length}::${type}`;
  };
  const common: string[] = [];
  if (f.owner) common.push(`c.owner = ${param(f.owner, 'text')}`);
  if (f.openedFrom) common.push(`c.created_at >= ${param(f.openedFrom, 'timestamptz')}`);
  if (f.openedTo) common.push(`c.created_at <= ${param(f.openedTo, 'timestamptz')}`);
  if (opts.after) {
    // A row comparison, so the btree on (…, created_at, id) serves the keyset directly.
    const [at, id] = opts.after;
    common.push(`(c.created_at, c.id) < (${param(new Date(at), 'timestamptz')}, ${param(id, 'uuid')})`);
  }
  const limit = param(opts.limit + 1, 'int');
  const dims: Array<{ column: string; type: string; values: readonly string[] | null | undefined }> = [
    { column: 'c.region', type: 'text', values: regions },
    { column: 'c.status', type: 'case_status', values: f.status?.length ? f.status : null },
    { column: 'c.severity', type: 'severity', values: f.severity?.length ? f.severity : null },
  ];
  const where = (conds: string[]) => (conds.length ? ` where ${conds.join(' and ')}` : '');
  const order = ' order by c.created_at desc, c.id desc limit ';
  const combinations = dims.reduce((n, d) => n * (d.values?.length ?? 1), 1);
  let text: string;
  if (combinations > MAX_LIST_BRANCHES) {
    const any = dims.filter((d) => d.values).map((d) => `${d.column} = any(${param(d.values, `${d.type}[]`)})`);
    text = LIST_SELECT + where([...common, ...any]) + order + limit;
  } else {
    let branches: string[][] = [[]];
    for (const d of dims) {
      if (!d.values) continue;
      const placeholders = d.values.map((v) => param(v, d.type));
      branches = branches.flatMap((b) => placeholders.map((ph) => [...b, `${d.column} = ${ph}`]));
    }
    text =
      branches.length === 1
        ? LIST_SELECT + where([...common, ...branches[0]!]) + order + limit
        : branches.map((b) => `(${LIST_SELECT}${where([...common, ...b])}${order}${limit})`).join(' union all ') +
          ` order by "createdAt" desc, id desc limit ${limit}`;
  }
  // Unnamed: Postgres plans each list with its values (a cached generic plan could not know how
  // selective a region, status or date range is, nor the page size).
  const result = await db.$client.query<CaseListRow>({ text, values, types: UNPARSED_TIMESTAMPTZ });
  return result.rows;
}

/** What a decision needs to know of its case and step, read in one round trip. */
export interface DecisionTarget {
  caseId: string;
  region: string;
  /** Null when the case has no such step. */
  step: {
    id: string;
    status: StepRow['status'];
    rule: StepRow['rule'];
    requirements: StepRow['requirements'];
    requestedBy: string;
    workflowId: string;
    /** Who has decided so far. */
    decisions: Array<{ approver: string }>;
  } | null;
}

/** The case (its region) and the step with who decided it so far: the decision route's one read. */
export async function getDecisionTarget(db: Db, caseId: string, stepId: string): Promise<DecisionTarget | null> {
  const r = await db.$client.query<{
    caseId: string;
    region: string;
    stepId: string | null;
    status: StepRow['status'];
    rule: StepRow['rule'];
    requirements: StepRow['requirements'];
    requestedBy: string;
    workflowId: string;
    approvers: string[];
  }>(
    `select c.id as "caseId", c.region, s.id as "stepId", s.status, s.rule, s.requirements,
            s.requested_by as "requestedBy", s.workflow_id as "workflowId",
            array(select d.approver from step_decisions d where d.step_id = s.id) as approvers
       from cases c left join steps s on s.id = $2::uuid and s.case_id = c.id
      where c.id = $1::uuid`,
    [caseId, stepId],
  );
  const row = r.rows[0];
  if (!row) return null;
  return {
    caseId: row.caseId,
    region: row.region,
    step: row.stepId
      ? {
          id: row.stepId,
          status: row.status,
          rule: row.rule,
          requirements: row.requirements,
          requestedBy: row.requestedBy,
          workflowId: row.workflowId,
          decisions: row.approvers.map((approver) => ({ approver })),
        }
      : null,
  };
}

/** Everything the case page shows: the case, its alerts, notes, steps with decisions, history. */
export async function getCaseDetail(db: Db, caseId: string) {
  // One snapshot for the whole page: read in parallel on separate connections, a projection
  // committing in between could show an event (say `step_expired`) without the note written with it.
  return db.transaction((tx) => readCaseDetail(tx, caseId), { isolationLevel: 'repeatable read', accessMode: 'read only' });
}

async function readCaseDetail(db: Tx, caseId: string) {
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
