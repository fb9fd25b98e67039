import { integer, pgTable, text, timestamp } from 'drizzle-orm/pg-core';

/** Rows written by the system-check workflow's activity: proof that API → Temporal → worker → Postgres works. */
export const systemChecks = pgTable('system_checks', {
  id: text('id').primaryKey(),
  requestedBy: text('requested_by').notNull(),
  attempt: integer('attempt').notNull(),
  workflowId: text('workflow_id').notNull(),
  completedAt: timestamp('completed_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
});
