import { boolean, integer, jsonb, pgTable, real, text, timestamp } from 'drizzle-orm/pg-core';
import type { ApprovalRules } from '../../domain/regions';

/** Regions and their approval rules, written by administrators. */
export const regions = pgTable('regions', {
  code: text('code').primaryKey(),
  name: text('name').notNull(),
  languages: text('languages').array().notNull(),
  requireReviewerLanguage: boolean('require_reviewer_language').notNull().default(false),
  allowDeanonymization: boolean('allow_deanonymization').notNull().default(true),
  revealGrantHours: real('reveal_grant_hours').notNull().default(24),
  approvalRules: jsonb('approval_rules').$type<ApprovalRules>().notNull(),
  restricted: jsonb('restricted').$type<Array<{ sub: string; stepKinds: string[] }>>().notNull(),
  version: integer('version').notNull().default(1),
  updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  updatedBy: text('updated_by').notNull(),
});

export type RegionRow = typeof regions.$inferSelect;
