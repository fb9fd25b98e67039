import { index, integer, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';

/**
 * People under review, pseudonymized. No identifying value is stored here in clear: the HR
 * external id is kept only as a keyed HMAC (`external_key`), and identity fields live encrypted in
 * `identity_vault`.
 */
export const subjects = pgTable(
  'subjects',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    /** HMAC-SHA256(PSEUDONYM_KEY, "ext:" + externalId), hex: how connectors' ids are matched. */
    externalKey: text('external_key').notNull().unique(),
    /** Stable display pseudonym, e.g. `Anon-7KQ2-M4`, derived with the same keyed HMAC. */
    pseudonym: text('pseudonym').notNull().unique(),
    region: text('region').notNull(),
    department: text('department'),
    groups: text('groups').array().notNull().default([]),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [index('subjects_region_idx').on(t.region), index('subjects_list_idx').on(t.createdAt, t.id)],
);
export type SubjectRow = typeof subjects.$inferSelect;

/** Real identities, AES-256-GCM encrypted with the vault key (`VAULT_KEYS`), key id per row. */
export const identityVault = pgTable('identity_vault', {
  subjectId: uuid('subject_id')
    .primaryKey()
    .references(() => subjects.id),
  keyId: text('key_id').notNull(),
  /** iv ‖ ciphertext ‖ tag of the JSON identity record. */
  ciphertext: text('ciphertext').notNull(),
  /** Hash of the plaintext record under the vault key, so unchanged re-imports are no-ops. */
  fingerprint: text('fingerprint').notNull(),
  version: integer('version').notNull().default(1),
  updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
});
