import { index, integer, pgEnum, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { NOTICE_STATUSES, OUTBOX_STATUSES } from '../../domain/notices';
import { cases } from './cases';
import { steps } from './steps';

export const noticeStatus = pgEnum('notice_status', NOTICE_STATUSES);
export const outboxStatus = pgEnum('notice_outbox_status', OUTBOX_STATUSES);

/**
 * Notices to the person under review (the read model the case shows). One per approved
 * send_notice step. Nothing here identifies the person: the address and name are read from the
 * vault inside the sending activity, and the server's replies are stored with them redacted.
 */
export const notices = pgTable(
  'notices',
  {
    id: uuid('id').primaryKey(),
    caseId: uuid('case_id')
      .notNull()
      .references(() => cases.id),
    stepId: uuid('step_id')
      .notNull()
      .unique()
      .references(() => steps.id),
    region: text('region').notNull(),
    templateId: text('template_id').notNull(),
    templateVersion: integer('template_version').notNull(),
    language: text('language').notNull(),
    status: noticeStatus('status').notNull().default('queued'),
    messageId: text('message_id').notNull().unique(),
    /** The values of the non-personal placeholders, frozen when the notice is queued. */
    caseReference: text('case_reference').notNull(),
    policyName: text('policy_name').notNull(),
    responseDeadline: timestamp('response_deadline', { withTimezone: true, mode: 'date' }).notNull(),
    requestedBy: text('requested_by').notNull(),
    /** The server's reason (redacted) when the notice failed. */
    failureReason: text('failure_reason'),
    queuedAt: timestamp('queued_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    sentAt: timestamp('sent_at', { withTimezone: true, mode: 'date' }),
    failedAt: timestamp('failed_at', { withTimezone: true, mode: 'date' }),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [index('notices_case_idx').on(t.caseId, t.queuedAt)],
);
export type NoticeRow = typeof notices.$inferSelect;

/**
 * The delivery outbox, keyed by the notice id: the claim an attempt takes before talking to the
 * SMTP server, and the server's acceptance recorded right after it. An attempt that finds the row
 * `accepted` sends nothing.
 */
export const noticeOutbox = pgTable('notice_outbox', {
  noticeId: uuid('notice_id')
    .primaryKey()
    .references(() => notices.id),
  messageId: text('message_id').notNull(),
  status: outboxStatus('status').notNull().default('pending'),
  /** Which activity execution holds the claim (`workflowId/runId/activityId`) and its attempt. */
  claimedBy: text('claimed_by'),
  claimAttempt: integer('claim_attempt'),
  claimedAt: timestamp('claimed_at', { withTimezone: true, mode: 'date' }),
  /** SMTP transactions started for this notice (more than one only after a deferral or a lost outcome). */
  transmissions: integer('transmissions').notNull().default(0),
  /** The server's reply (redacted) to the message: `250 …` when accepted, the last 4xx/5xx otherwise. */
  smtpResponse: text('smtp_response'),
  smtpCode: integer('smtp_code'),
  acceptedAt: timestamp('accepted_at', { withTimezone: true, mode: 'date' }),
  lastError: text('last_error'),
  updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
});
export type NoticeOutboxRow = typeof noticeOutbox.$inferSelect;
