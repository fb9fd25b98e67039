import { index, integer, jsonb, pgEnum, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { stakeholder, steps } from './steps';

export const notificationKind = pgEnum('notification_kind', ['reminder', 'escalation', 'expired']);

/**
 * Notifications recorded by the step workflows' SLA timers: one per stakeholder that still owes
 * approvals, per reminder point. The id is a business key (`<stepId>:<kind>:<n>:<stakeholder>`),
 * so a retried activity records nothing twice. A mail or chat sender reads from here.
 */
export const notifications = pgTable(
  'notifications',
  {
    id: text('id').primaryKey(),
    kind: notificationKind('kind').notNull(),
    stepId: uuid('step_id')
      .notNull()
      .references(() => steps.id),
    caseId: uuid('case_id').notNull(),
    region: text('region').notNull(),
    /** The stakeholder role addressed: every approver of it in the region who has not decided. */
    stakeholder: stakeholder('stakeholder').notNull(),
    /** Approvers of that stakeholder who already decided (excluded from the notice). */
    excluded: text('excluded').array().notNull(),
    remaining: integer('remaining').notNull(),
    dueAt: timestamp('due_at', { withTimezone: true, mode: 'date' }).notNull(),
    details: jsonb('details').$type<Record<string, unknown>>().notNull().default({}),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [
    index('notifications_step_idx').on(t.stepId, t.createdAt),
    index('notifications_stakeholder_idx').on(t.region, t.stakeholder, t.createdAt),
  ],
);
export type NotificationRow = typeof notifications.$inferSelect;
