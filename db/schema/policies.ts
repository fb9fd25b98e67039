import { integer, jsonb, pgEnum, pgTable, text, timestamp, uuid, index } from 'drizzle-orm/pg-core';
import {
  POLICY_STATUSES,
  POLICY_TEMPLATES,
  type Boosters,
  type Indicators,
  type PolicyScope,
  type Thresholds,
} from '../../domain/policies';

export const policyTemplate = pgEnum('policy_template', POLICY_TEMPLATES);
export const policyStatus = pgEnum('policy_status', POLICY_STATUSES);

/**
 * Detection policies created from the four templates. Only `active` policies score. `version` is
 * bumped on every change so scores and backfills can tell which configuration they used.
 */
export const policies = pgTable(
  'policies',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    name: text('name').notNull(),
    description: text('description'),
    template: policyTemplate('template').notNull(),
    status: policyStatus('status').notNull().default('draft'),
    scope: jsonb('scope').$type<PolicyScope>().notNull(),
    priorityGroups: text('priority_groups').array().notNull().default([]),
    indicators: jsonb('indicators').$type<Indicators>().notNull(),
    thresholds: jsonb('thresholds').$type<Thresholds>().notNull(),
    boosters: jsonb('boosters').$type<Boosters>().notNull(),
    activationWindowDays: integer('activation_window_days').notNull(),
    dailyAlertCap: integer('daily_alert_cap').notNull(),
    version: integer('version').notNull().default(1),
    activatedAt: timestamp('activated_at', { withTimezone: true, mode: 'date' }),
    createdBy: text('created_by').notNull(),
    updatedBy: text('updated_by').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [index('policies_list_idx').on(t.createdAt, t.id), index('policies_status_idx').on(t.status)],
);
export type PolicyRow = typeof policies.$inferSelect;
