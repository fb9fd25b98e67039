import { index, pgEnum, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';

export const revealGrantStatus = pgEnum('reveal_grant_status', ['active', 'expired', 'revoked', 'case_closed']);

/**
 * Identity reveal grants, written by the case workflow's activities when a `reveal_identity` step
 * is approved (id = the step id). Only the grantee may read the identity, only while `active`;
 * the workflow's durable timer ends the grant at `expires_at`.
 */
export const revealGrants = pgTable(
  'reveal_grants',
  {
    id: uuid('id').primaryKey(),
    caseId: uuid('case_id').notNull(),
    stepId: uuid('step_id').notNull(),
    grantee: text('grantee').notNull(),
    region: text('region').notNull(),
    status: revealGrantStatus('status').notNull().default('active'),
    grantedAt: timestamp('granted_at', { withTimezone: true, mode: 'date' }).notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date' }).notNull(),
    endedAt: timestamp('ended_at', { withTimezone: true, mode: 'date' }),
    endedBy: text('ended_by'),
  },
  (t) => [index('reveal_grants_case_idx').on(t.caseId, t.grantee)],
);
export type RevealGrantRow = typeof revealGrants.$inferSelect;
