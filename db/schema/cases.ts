import { sql } from 'drizzle-orm';
import { index, integer, jsonb, pgEnum, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { CASE_STATUSES, RESOLUTIONS } from '../../domain/cases';
import { severity } from './alerts';
import { subjects } from './subjects';

export const caseStatus = pgEnum('case_status', CASE_STATUSES);
export const caseResolution = pgEnum('case_resolution', RESOLUTIONS);

/**
 * The cases read model. A row is claimed by the confirm command (the one-active-case-per-subject
 * invariant lives in the partial unique index below); every later change is projected by the case
 * workflow's activities, guarded by `version` so a late or retried projection never goes back.
 */
export const cases = pgTable(
  'cases',
  {
    id: uuid('id').primaryKey(),
    subjectId: uuid('subject_id')
      .notNull()
      .references(() => subjects.id),
    region: text('region').notNull(),
    status: caseStatus('status').notNull().default('open'),
    severity: severity('severity').notNull(),
    owner: text('owner'),
    openedBy: text('opened_by').notNull(),
    alertCount: integer('alert_count').notNull().default(0),
    resolution: caseResolution('resolution'),
    actionTaken: text('action_taken'),
    resolvedBy: text('resolved_by'),
    resolvedAt: timestamp('resolved_at', { withTimezone: true, mode: 'date' }),
    workflowId: text('workflow_id').notNull(),
    /** Projection version: the case workflow's state version last written. */
    version: integer('version').notNull().default(0),
    /** When the case was opened (the list's "opened between" filter and its keyset). */
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('cases_one_active_per_subject')
      .on(t.subjectId)
      .where(sql`${t.status} <> 'closed'`),
    index('cases_list_idx').on(t.createdAt, t.id),
    // A region's own list (an investigator of a small region) without walking every region's cases.
    index('cases_region_idx').on(t.region, t.createdAt, t.id),
    index('cases_region_status_idx').on(t.region, t.status, t.createdAt, t.id),
    index('cases_region_severity_idx').on(t.region, t.severity, t.createdAt, t.id),
    index('cases_status_idx').on(t.status, t.createdAt, t.id),
    index('cases_owner_idx').on(t.owner, t.createdAt, t.id),
  ],
);
export type CaseRow = typeof cases.$inferSelect;

export const noteKind = pgEnum('note_kind', ['comment', 'system']);

/**
 * Notes of a case, immutable once written (a trigger refuses UPDATE and DELETE). Ids come from the
 * command or the workflow, so a retried activity inserts nothing twice.
 */
export const caseNotes = pgTable(
  'case_notes',
  {
    id: uuid('id').primaryKey(),
    caseId: uuid('case_id')
      .notNull()
      .references(() => cases.id),
    author: text('author').notNull(),
    kind: noteKind('kind').notNull(),
    body: text('body').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [index('case_notes_case_idx').on(t.caseId, t.createdAt, t.id)],
);
export type CaseNoteRow = typeof caseNotes.$inferSelect;

/** The case's history as its workflow recorded it: alerts attached, steps, stage changes, closure. */
export const caseEvents = pgTable(
  'case_events',
  {
    id: uuid('id').primaryKey(),
    caseId: uuid('case_id')
      .notNull()
      .references(() => cases.id),
    type: text('type').notNull(),
    actor: text('actor').notNull(),
    /** Ids and statuses only. */
    details: jsonb('details').$type<Record<string, unknown>>().notNull().default({}),
    at: timestamp('at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [index('case_events_case_idx').on(t.caseId, t.at, t.id)],
);
export type CaseEventRow = typeof caseEvents.$inferSelect;
