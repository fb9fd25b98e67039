/**
 * Read-model projections of the case and step workflows. Every write is idempotent: notes, events
 * and notifications are keyed by ids the workflow chose (deterministic across replays and
 * retries), decisions by (step, approver), and case/step rows only move forward in `version`.
 */
import { and, eq, lt } from 'drizzle-orm';
import type { Db } from '../db';
import type { CaseSnapshot, EventWrite, NoteWrite, StepState } from '../workflows/definitions';
import { recordConfirmedViolation } from '../db/queries/subjects';
import { appendAudit } from '../db/audit';
import { alerts, caseEvents, caseNotes, cases, notifications, stepDecisions, steps } from '../db/schema';
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
    /** Case row, notes and events of one change of a case, in one transaction. */
    async projectCase(p: CaseProjection): Promise<{ applied: boolean }> {
      return db.transaction(async (tx) => {
        const s = p.snapshot;
        const updated = await tx
          .update(cases)
          .set({
            status: s.status,
            owner: s.owner,
            severity: s.severity,
            alertCount: s.alertCount,
            resolution: s.resolution?.outcome ?? null,
            actionTaken: s.resolution?.actionTaken ?? null,
            resolvedBy: s.resolution?.by ?? null,
            resolvedAt: s.resolution ? new Date(s.resolution.at) : null,
            version: s.version,
            updatedAt: new Date(),
          })
          .where(and(eq(cases.id, p.caseId), lt(cases.version, s.version)))
          .returning({ id: cases.id });
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
        if (p.notes?.length) {
          await tx
            .insert(caseNotes)
            .values(
              p.notes.map((n) => ({
                id: n.id,
                caseId: p.caseId,
                author: n.author,
                kind: n.kind,
                body: n.body,
                createdAt: new Date(n.at),
              })),
            )
            .onConflictDoNothing();
        }
        if (p.events?.length) {
          await tx
            .insert(caseEvents)
            .values(
              p.events.map((e) => ({
                id: e.id,
                caseId: p.caseId,
                type: e.type,
                actor: e.actor,
                details: e.details,
                at: new Date(e.at),
              })),
            )
            .onConflictDoNothing();
        }
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
        return { applied: updated.length > 0 };
      });
    },

    /** A step's row (and the decision that changed it), forward-only by version. */
    async projectStep(p: StepProjection): Promise<{ applied: boolean }> {
      return db.transaction(async (tx) => {
        if (p.decision) {
          const d = p.decision;
          await tx
            .insert(stepDecisions)
            .values({
              stepId: p.stepId,
              approver: d.approver,
              stakeholder: d.stakeholder,
              decision: d.decision,
              comment: d.comment,
              requestId: d.requestId ?? null,
              decidedAt: new Date(d.at),
            })
            .onConflictDoNothing();
        }
        const s = p.state;
        const updated = await tx
          .update(steps)
          .set({
            status: s.status,
            outcomeReason: s.reason,
            requirements: s.requirements,
            progress: s.progress,
            outstanding: s.outstanding,
            escalated: s.escalated,
            dueAt: new Date(s.dueAt),
            decidedAt: s.decidedAt ? new Date(s.decidedAt) : null,
            version: s.version,
            updatedAt: new Date(),
          })
          .where(and(eq(steps.id, p.stepId), lt(steps.version, s.version)))
          .returning({ id: steps.id, caseId: steps.caseId, kind: steps.kind, region: steps.region });
        const row = updated[0];
        if (row && s.status === 'expired') {
          // An automatic transition: no person asked for it, so the API never audits it. Once per
          // step: the version guard above lets a retry through only if nothing was written.
          await appendAudit(tx, {
            actor: 'system:sla',
            action: 'step.expire',
            category: 'approvals',
            targetType: 'step',
            targetId: row.id,
            region: row.region,
            outcome: 'allowed',
            details: { caseId: row.caseId, kind: row.kind, reason: s.reason },
          });
        }
        return { applied: updated.length > 0 };
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
