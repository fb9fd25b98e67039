import { bigint, boolean, index, jsonb, pgEnum, pgTable, primaryKey, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { DECISIONS, STEP_STATUSES, type Requirement, type RequirementProgress, type StepRuleSnapshot } from '../../domain/cases';
import { STAKEHOLDERS, STEP_KINDS } from '../../domain/roles';
import { cases } from './cases';

export const stepKind = pgEnum('step_kind', STEP_KINDS);
export const stepStatus = pgEnum('step_status', STEP_STATUSES);
export const stepDecision = pgEnum('step_decision', DECISIONS);
export const stakeholder = pgEnum('stakeholder', STAKEHOLDERS);

/**
 * Approval steps (read model of the step workflows). The rule is the snapshot taken when the step
 * was requested; `requirements` is that rule's requirement list plus any escalation added on expiry.
 * The inbox filters on the denormalized columns (`outstanding`, `languages`, `restricted`).
 */
export const steps = pgTable(
  'steps',
  {
    id: uuid('id').primaryKey(),
    caseId: uuid('case_id')
      .notNull()
      .references(() => cases.id),
    kind: stepKind('kind').notNull(),
    region: text('region').notNull(),
    status: stepStatus('status').notNull().default('pending'),
    requestedBy: text('requested_by').notNull(),
    reason: text('reason').notNull(),
    templateId: text('template_id'),
    rule: jsonb('rule').$type<StepRuleSnapshot>().notNull(),
    requirements: jsonb('requirements').$type<Requirement[]>().notNull(),
    progress: jsonb('progress').$type<RequirementProgress[]>().notNull(),
    outstanding: text('outstanding').array().notNull(),
    languages: text('languages').array().notNull(),
    requireLanguage: boolean('require_language').notNull(),
    restricted: text('restricted').array().notNull(),
    escalated: boolean('escalated').notNull().default(false),
    slaMs: bigint('sla_ms', { mode: 'number' }).notNull(),
    dueAt: timestamp('due_at', { withTimezone: true, mode: 'date' }).notNull(),
    remindAt: jsonb('remind_at').$type<string[]>().notNull(),
    outcomeReason: text('outcome_reason'),
    decidedAt: timestamp('decided_at', { withTimezone: true, mode: 'date' }),
    workflowId: text('workflow_id').notNull(),
    version: bigint('version', { mode: 'number' }).notNull().default(0),
    requestedAt: timestamp('requested_at', { withTimezone: true, mode: 'date' }).notNull(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [
    index('steps_case_idx').on(t.caseId, t.requestedAt),
    index('steps_inbox_idx').on(t.status, t.region, t.requestedAt, t.id),
  ],
);
export type StepRow = typeof steps.$inferSelect;

/** One decision per approver per step (the primary key makes a retried write a no-op). */
export const stepDecisions = pgTable(
  'step_decisions',
  {
    stepId: uuid('step_id')
      .notNull()
      .references(() => steps.id),
    approver: text('approver').notNull(),
    stakeholder: stakeholder('stakeholder').notNull(),
    decision: stepDecision('decision').notNull(),
    comment: text('comment').notNull(),
    requestId: text('request_id'),
    decidedAt: timestamp('decided_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.stepId, t.approver] })],
);
export type StepDecisionRow = typeof stepDecisions.$inferSelect;
