import { sql } from 'drizzle-orm';
import { bigserial, index, jsonb, pgEnum, pgTable, text, timestamp } from 'drizzle-orm/pg-core';

export const auditOutcome = pgEnum('audit_outcome', ['allowed', 'denied']);

/**
 * Append-only, hash-chained audit log. A trigger (migration 0001) refuses UPDATE, DELETE and
 * TRUNCATE. No personal data: actors are token subjects, targets are opaque ids.
 */
export const auditLog = pgTable(
  'audit_log',
  {
    seq: bigserial('seq', { mode: 'number' }).primaryKey(),
    at: timestamp('at', { withTimezone: true, mode: 'date' }).notNull(),
    actor: text('actor').notNull(),
    actorRoles: text('actor_roles').array().notNull(),
    action: text('action').notNull(),
    category: text('category').notNull(),
    targetType: text('target_type'),
    targetId: text('target_id'),
    region: text('region'),
    outcome: auditOutcome('outcome').notNull(),
    reason: text('reason'),
    requestId: text('request_id'),
    details: jsonb('details').$type<Record<string, unknown>>(),
    prevHash: text('prev_hash').notNull(),
    hash: text('hash').notNull().unique(),
  },
  (t) => [
    index('audit_log_at_idx').on(t.at),
    index('audit_log_actor_idx').on(t.actor, t.seq),
    index('audit_log_target_idx').on(t.targetType, t.targetId, t.seq),
    index('audit_log_category_idx').on(t.category, t.seq),
    index('audit_log_region_idx').on(t.region, t.seq),
    index('audit_log_action_idx').on(t.action, t.seq),
    // `GET /v1/audit?caseId=` matches entries whose target is the case or whose details name it.
    index('audit_log_details_case_idx').on(sql`(${t.details}->>'caseId')`, t.seq),
  ],
);

export type AuditRow = typeof auditLog.$inferSelect;
