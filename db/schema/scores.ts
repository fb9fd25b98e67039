import { bigint, boolean, date, integer, jsonb, pgTable, primaryKey, timestamp, uuid, index } from 'drizzle-orm/pg-core';
import type { RiskFactor } from './alerts';
import { severity } from './alerts';
import { policies } from './policies';
import { subjects } from './subjects';

/**
 * The current score of each triggered (subject, policy) pair, recomputed from stored signals by
 * the scoring activity. Rows exist only for triggered pairs: what the users view shows.
 */
export const subjectPolicyScores = pgTable(
  'subject_policy_scores',
  {
    subjectId: uuid('subject_id')
      .notNull()
      .references(() => subjects.id),
    policyId: uuid('policy_id')
      .notNull()
      .references(() => policies.id),
    policyVersion: integer('policy_version').notNull(),
    triggerSignalId: bigint('trigger_signal_id', { mode: 'number' }).notNull(),
    triggeredAt: timestamp('triggered_at', { withTimezone: true, mode: 'date' }).notNull(),
    windowEnd: timestamp('window_end', { withTimezone: true, mode: 'date' }).notNull(),
    score: integer('score').notNull(),
    rawScore: integer('raw_score').notNull(),
    severity: severity('severity').notNull(),
    riskFactors: jsonb('risk_factors').$type<RiskFactor[]>().notNull(),
    /** The pair's open alert, if any. */
    alertId: uuid('alert_id'),
    /**
     * How many signals of the pair's range (from its first trigger's baseline to its last trigger's
     * window end) the computation saw. Signals are append-only and a later snapshot sees a superset,
     * so a stored score is only replaced by one that saw at least as many: concurrent scorings
     * converge on the freshest without locks.
     */
    signalsSeen: integer('signals_seen').notNull().default(0),
    /** The score reached the threshold but the policy's daily alert cap was used up. */
    suppressedByCap: boolean('suppressed_by_cap').notNull().default(false),
    computedAt: timestamp('computed_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.subjectId, t.policyId] }), index('subject_policy_scores_policy_idx').on(t.policyId, t.score)],
);
export type SubjectPolicyScoreRow = typeof subjectPolicyScores.$inferSelect;

/** New alerts per policy per UTC day, for the daily alert cap (row-locked counter). */
export const policyDailyAlerts = pgTable(
  'policy_daily_alerts',
  {
    policyId: uuid('policy_id')
      .notNull()
      .references(() => policies.id),
    day: date('day', { mode: 'string' }).notNull(),
    count: integer('count').notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.policyId, t.day] })],
);

/**
 * Confirmed violations per subject (a case resolved as `confirmed_violation`): the "previous
 * confirmed violation" booster. Written by the case side through `recordConfirmedViolation`.
 */
export const subjectViolations = pgTable(
  'subject_violations',
  {
    subjectId: uuid('subject_id')
      .notNull()
      .references(() => subjects.id),
    caseId: uuid('case_id').notNull(),
    resolvedAt: timestamp('resolved_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.subjectId, t.caseId] })],
);
