/**
 * Read-model projections of the case and step workflows. Every write is idempotent: notes, events
 * and notifications are keyed by ids the workflow chose (deterministic across replays and
 * retries), decisions by (step, approver), and case/step rows only move forward in `version`.
 */
import { and, eq, sql } from 'drizzle-orm';
import type { Db, Tx } from '../db';
import type { CaseSnapshot, EventWrite, NoteWrite, StepState } from '../workflows/definitions';
import { recordConfirmedViolation } from '../db/queries/subjects';
import { appendAudit } from '../db/audit';
import { alerts, cases, notifications, steps } from '../db/schema';
import type { DecisionRecord, RequirementProgress, StepRuleSnapshot } from '../domain/cases';
import type { Stakeholder, StepKind } from '../domain/roles';

export interface StepInsert {
  id: string;
  kind: StepKind;
  region: string;
  requestedBy: string;
  reason: string;
  templateId?: string;
  rule: StepRuleSnapshot;
  slaMs: number;
  requestedAt: string;
  dueAt: string;
  remindAt: string[];
  workflowId: string;
}

export interface CaseProjection {
  caseId: string;
  snapshot: CaseSnapshot;
  notes?: NoteWrite[];
  events?: EventWrite[];
  /** A step the case just requested: its row, inserted once. */
  step?: StepInsert;
  /** Closing: resolve the case's confirmed alerts in the same transaction. */
  resolveAlerts?: boolean;
}

export type { CaseSnapshot, EventWrite, NoteWrite, StepState };

export interface StepProjection {
  stepId: string;
  state: StepState;
  decision?: DecisionRecord & { requestId?: string };
  /**
   * The decision's allowed audit entry, written in the same transaction as the decision (so an
   * API that stops after the Update leaves no unaudited decision). Older workflow code omits it.
   */
  audit?: { actorRoles: string[]; caseId: string; region: string };
}

export interface ReminderInput {
  stepId: string;
  caseId: string;
  region: string;
  kind: 'reminder' | 'escalation' | 'expired';
  /** Which reminder point (0-based) or escalation round. */
  index: number;
  dueAt: string;
  progress: RequirementProgress[];
  /** Stakeholders to notify (those still owing approvals). */
  stakeholders: Stakeholder[];
}

export function createCaseActivities(deps: { db: Db }) {
  const { db } = deps;
  return {
    /** Case row, notes and events of one change of a case (with a requested step or a closing), atomically. */
    async projectCase(p: CaseProjection): Promise<{ applied: boolean }> {
      // Most changes (an alert attached, a note, an owner) write the case row, notes and events
      // only: one statement, atomic on its own, one round trip.
      if (!p.step && !p.resolveAlerts) return { applied: await writeCaseChange(db, p) };
      return db.transaction(async (tx) => {
        const s = p.snapshot;
        if (p.step) {
          const st = p.step;
          await tx
            .insert(steps)
            .values({
              id: st.id,
              caseId: p.caseId,
              kind: st.kind,
              region: st.region,
              status: 'pending',
              requestedBy: st.requestedBy,
              reason: st.reason,
              templateId: st.templateId ?? null,
              rule: st.rule,
              requirements: st.rule.require,
              progress: st.rule.require.map((r) => ({
                stakeholder: r.stakeholder,
                required: r.count,
                approvals: 0,
                remaining: r.count,
                approvedBy: [],
              })),
              outstanding: st.rule.require.map((r) => r.stakeholder),
              languages: st.rule.languages,
              requireLanguage: st.rule.requireReviewerLanguage,
              restricted: st.rule.restricted,
              slaMs: st.slaMs,
              dueAt: new Date(st.dueAt),
              remindAt: st.remindAt,
              workflowId: st.workflowId,
              requestedAt: new Date(st.requestedAt),
            })
            .onConflictDoNothing();
        }
        const applied = await writeCaseChange(tx, p);
        if (p.resolveAlerts) {
          await tx
            .update(alerts)
            .set({ status: 'resolved', updatedAt: new Date() })
            .where(and(eq(alerts.caseId, p.caseId), eq(alerts.status, 'confirmed')));
          if (s.resolution?.outcome === 'confirmed_violation') {
            // Scoring's "previous confirmed violation" booster reads this (idempotent by case).
            const [c] = await tx.select({ subjectId: cases.subjectId }).from(cases).where(eq(cases.id, p.caseId));
            if (c)
              await recordConfirmedViolation(tx, {
                subjectId: c.subjectId,
                caseId: p.caseId,
                resolvedAt: new Date(s.resolution.at),
              });
          }
        }
        return { applied };
      });
    },

    /** A step's row (and the decision that changed it), forward-only by version. */
    async projectStep(p: StepProjection): Promise<{ applied: boolean }> {
      // A transition no one audits here: one statement, atomic on its own.
      if (p.state.status !== 'expired' && !(p.decision && p.audit)) {
        return { applied: (await writeStepChange(db, p)).moved !== null };
      }
      return db.transaction(async (tx) => {
        const { moved: row, decided } = await writeStepChange(tx, p);
        // Audited once, with the decision row itself: a retry inserts no decision and no entry. Not
        // tied to the step row moving: two approvers' projections may land out of version order,
        // and the older one's decision (not its step row) is still stored and must be audited.
        if (decided && p.decision && p.audit) {
          await appendAudit(tx, {
            actor: p.decision.approver,
            actorRoles: p.audit.actorRoles,
            requestId: p.decision.requestId ?? null,
            action: 'step.decide',
            category: 'approvals',
            targetType: 'step',
            targetId: p.stepId,
            region: p.audit.region,
            outcome: 'allowed',
            details: { caseId: p.audit.caseId, decision: p.decision.decision, stepStatus: p.state.status },
          });
        }
        if (row && p.state.status === 'expired') {
          // An automatic transition: no person asked for it, so the API never audits it.
          await appendAudit(tx, {
            actor: 'system:sla',
            action: 'step.expire',
            category: 'approvals',
            targetType: 'step',
            targetId: row.id,
            region: row.region,
            outcome: 'allowed',
            details: { caseId: row.caseId, kind: row.kind, reason: p.state.reason },
          });
        }
        return { applied: row !== null };
      });
    },

    /**
     * Record a notification for each stakeholder that still owes approvals on a step (its approvers
     * who have not decided). Keyed `<step>:<kind>:<index>:<stakeholder>`: a retry records nothing twice.
     */
    async recordReminders(r: ReminderInput): Promise<{ recorded: number }> {
      if (r.stakeholders.length === 0) return { recorded: 0 };
      const rows = r.stakeholders.map((st) => {
        const p = r.progress.find((x) => x.stakeholder === st);
        return {
          id: `${r.stepId}:${r.kind}:${r.index}:${st}`,
          kind: r.kind,
          stepId: r.stepId,
          caseId: r.caseId,
          region: r.region,
          stakeholder: st,
          excluded: p?.approvedBy ?? [],
          remaining: p?.remaining ?? 1,
          dueAt: new Date(r.dueAt),
          details: { index: r.index },
        };
      });
      return db.transaction(async (tx) => {
        const inserted = await tx.insert(notifications).values(rows).onConflictDoNothing().returning({ id: notifications.id });
        if (inserted.length > 0) {
          // SLA reminders and escalations are automatic transitions: audited here, once per point.
          await appendAudit(tx, {
            actor: 'system:sla',
            action: `step.${r.kind}`,
            category: 'approvals',
            targetType: 'step',
            targetId: r.stepId,
            region: r.region,
            outcome: 'allowed',
            details: { caseId: r.caseId, index: r.index, stakeholders: r.stakeholders },
          });
        }
        return { recorded: inserted.length };
      });
    },
  };
}

/**
 * The case row (forward-only by version), its new notes and its events, in one statement: the data
 * modifying CTEs all run, atomically, whatever the final select reads. Notes and events are keyed
 * by ids the workflow chose, so a retry inserts nothing twice. True when the row moved forward.
 */
async function writeCaseChange(db: Db | Tx, p: CaseProjection): Promise<boolean> {
  const s = p.snapshot;
  const notes = (p.notes ?? []).map((n) => ({ id: n.id, author: n.author, kind: n.kind, body: n.body, at: n.at }));
  const events = (p.events ?? []).map((e) => ({ id: e.id, type: e.type, actor: e.actor, details: e.details, at: e.at }));
  const r = await db.execute<{ applied: boolean }>(sql`
    with moved as (
      update cases set status = ${s.status}::case_status, owner = ${s.owner}, severity = ${s.severity}::severity,
             alert_count = ${s.alertCount}, resolution = ${s.resolution?.outcome ?? null}::case_resolution,
             action_taken = ${s.resolution?.actionTaken ?? null}, resolved_by = ${s.resolution?.by ?? null},
             resolved_at = ${s.resolution?.at ?? null}::timestamptz, version = ${s.version}, updated_at = ${new Date().toISOString()}::timestamptz
       where id = ${p.caseId}::uuid and version < ${s.version}
      returning 1),
    new_notes as (
      insert into case_notes (id, case_id, author, kind, body, created_at)
      select n.id, ${p.caseId}::uuid, n.author, n.kind, n.body, n.at
        from jsonb_to_recordset(${JSON.stringify(notes)}::jsonb) as n(id uuid, author text, kind note_kind, body text, at timestamptz)
      on conflict do nothing),
    new_events as (
      insert into case_events (id, case_id, type, actor, details, at)
      select e.id, ${p.caseId}::uuid, e.type, e.actor, e.details, e.at
        from jsonb_to_recordset(${JSON.stringify(events)}::jsonb) as e(id uuid, type text, actor text, details jsonb, at timestamptz)
      on conflict do nothing)
    select exists (select 1 from moved) as applied`);
  return r.rows[0]!.applied;
}

/**
 * A step's row (forward-only by version) and the decision that changed it (once per approver), in
 * one statement. `moved`: the step's ids when the row moved forward, else null; `decided`: whether
 * this call stored the decision (false on a retry, or without one).
 */
async function writeStepChange(
  db: Db | Tx,
  p: StepProjection,
): Promise<{ moved: { id: string; caseId: string; kind: StepKind; region: string } | null; decided: boolean }> {
  const s = p.state;
  const d = p.decision;
  const r = await db.execute<{ id: string | null; caseId: string; kind: StepKind; region: string; decided: boolean }>(sql`
    with decided as (
      insert into step_decisions (step_id, approver, stakeholder, decision, comment, request_id, decided_at)
      select ${p.stepId}::uuid, ${d?.approver ?? null}, ${d?.stakeholder ?? null}::stakeholder, ${d?.decision ?? null}::step_decision,
             ${d?.comment ?? null}, ${d?.requestId ?? null}, ${d?.at ?? null}::timestamptz
       where ${d !== undefined}::boolean
      on conflict do nothing
      returning 1),
    moved as (
    update steps set status = ${s.status}::step_status, outcome_reason = ${s.reason}, requirements = ${JSON.stringify(s.requirements)}::jsonb,
           progress = ${JSON.stringify(s.progress)}::jsonb, outstanding = ${sql.param(s.outstanding)}::text[], escalated = ${s.escalated},
           due_at = ${s.dueAt}::timestamptz, decided_at = ${s.decidedAt ?? null}::timestamptz, version = ${s.version},
           updated_at = ${new Date().toISOString()}::timestamptz
     where id = ${p.stepId}::uuid and version < ${s.version}
    returning id, case_id as "caseId", kind, region)
    select m.id, m."caseId", m.kind, m.region, exists (select 1 from decided) as decided
      from (select 1) one left join moved m on true`);
  const { id, caseId, kind, region, decided } = r.rows[0]!;
  return { moved: id ? { id, caseId, kind, region } : null, decided };
}
