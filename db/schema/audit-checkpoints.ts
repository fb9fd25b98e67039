import { bigint, bigserial, pgTable, text, timestamp } from 'drizzle-orm/pg-core';

/**
 * Signed checkpoints of the audit chain: "entry `seq` had hash `hash`", signed with the Ed25519
 * audit key (`AUDIT_SIGNING_KEY`). A chain that ends before a signed checkpoint lost its tail.
 * Append-only like the log itself (trigger in the migration that creates this table).
 */
export const auditCheckpoints = pgTable('audit_checkpoints', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  seq: bigint('seq', { mode: 'number' }).notNull().unique(),
  hash: text('hash').notNull(),
  signedAt: timestamp('signed_at', { withTimezone: true, mode: 'date' }).notNull(),
  /** sha256 of the signing public key (SPKI DER), first 16 hex digits. */
  keyId: text('key_id').notNull(),
  /** base64 Ed25519 signature over the canonical checkpoint statement. */
  signature: text('signature').notNull(),
  /** `schedule` (periodic) or the token subject that asked for it. */
  createdBy: text('created_by').notNull(),
});

export type AuditCheckpointRow = typeof auditCheckpoints.$inferSelect;
