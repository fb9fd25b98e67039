import { index, integer, pgTable, primaryKey, text, timestamp } from 'drizzle-orm/pg-core';

/**
 * Notice templates. The row holds what lists and the default choice need (latest version, name,
 * language); the content lives in `notice_template_versions`, immutable once written (a trigger
 * refuses UPDATE and DELETE), so a notice can always show the exact version it was sent with.
 */
export const noticeTemplates = pgTable(
  'notice_templates',
  {
    /** Chosen by the administrator, e.g. `eu-en-first-notice`. */
    id: text('id').primaryKey(),
    name: text('name').notNull(),
    language: text('language').notNull(),
    latestVersion: integer('latest_version').notNull(),
    createdBy: text('created_by').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [
    index('notice_templates_list_idx').on(t.createdAt, t.id),
    index('notice_templates_language_idx').on(t.language, t.updatedAt),
  ],
);
export type NoticeTemplateRow = typeof noticeTemplates.$inferSelect;

export const noticeTemplateVersions = pgTable(
  'notice_template_versions',
  {
    templateId: text('template_id')
      .notNull()
      .references(() => noticeTemplates.id),
    version: integer('version').notNull(),
    name: text('name').notNull(),
    language: text('language').notNull(),
    fromAddress: text('from_address').notNull(),
    fromName: text('from_name'),
    cc: text('cc').array().notNull(),
    bcc: text('bcc').array().notNull(),
    subject: text('subject').notNull(),
    /** Sanitized when saved: no scripts, no event handlers, no javascript: URLs. */
    htmlBody: text('html_body').notNull(),
    textBody: text('text_body').notNull(),
    /** Days from the notice date to the response deadline (`{{response.deadline}}`). */
    responseDays: integer('response_days').notNull(),
    /** Placeholders the version uses (all on the whitelist). */
    placeholders: text('placeholders').array().notNull(),
    createdBy: text('created_by').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.templateId, t.version] })],
);
export type NoticeTemplateVersionRow = typeof noticeTemplateVersions.$inferSelect;
