import { sql } from 'drizzle-orm';
import { bigint, index, integer, jsonb, pgEnum, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { subjects } from './subjects';

export const alertStatus = pgEnum('alert_status', ['needs_review', 'confirmed', 'dismissed', 'resolved']);
export const severity = pgEnum('severity', ['low', 'medium', 'high']);

/** A risk factor: which indicator or booster contributed how many points, traced to signals. */
export interface RiskFactor {
  kind: 'trigger' | 'indicator' | 'booster';
  name: string;
  points: number;
  signalIds?: string[];
  detail?: Record<string, unknown>;
}

/**
 * Alerts raised by scoring. At most one open (needs_review or confirmed) alert per
 * (subject, policy); a later, higher score raises the open alert's score and severity.
 */
export const alerts = pgTable(
  'alerts',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    subjectId: uuid('subject_id')
      .notNull()
      .references(() => subjects.id),
    policyId: uuid('policy_id').notNull(),
    region: text('region').notNull(),
    status: alertStatus('status').notNull().default('needs_review'),
    severity: severity('severity').notNull(),
    score: integer('score').notNull(),
    riskFactors: jsonb('risk_factors').$type<RiskFactor[]>().notNull(),
    assignee: text('assignee'),
    caseId: uuid('case_id'),
    dismissReason: text('dismiss_reason'),
    dismissComment: text('dismiss_comment'),
    dismissedBy: text('dismissed_by'),
    dismissedAt: timestamp('dismissed_at', { withTimezone: true, mode: 'date' }),
    /** The signal whose activation window produced the score (scoring's idempotency key after a dismissal). */
    triggerSignalId: bigint('trigger_signal_id', { mode: 'number' }),
    triggeredAt: timestamp('triggered_at', { withTimezone: true, mode: 'date' }).notNull(),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('alerts_one_open_per_subject_policy')
      .on(t.subjectId, t.policyId)
      .where(sql`${t.status} in ('needs_review', 'confirmed')`),
    index('alerts_queue_idx').on(t.status, t.region, t.createdAt, t.id),
    index('alerts_case_idx').on(t.caseId),
    index('alerts_subject_policy_idx').on(t.subjectId, t.policyId),
    index('alerts_list_idx').on(t.createdAt, t.id),
  ],
);
export type AlertRow = typeof alerts.$inferSelect;
