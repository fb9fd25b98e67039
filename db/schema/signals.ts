import { sql } from 'drizzle-orm';
import {
  bigint,
  customType,
  index,
  integer,
  jsonb,
  pgEnum,
  pgTable,
  primaryKey,
  text,
  timestamp,
  unique,
  uuid,
} from 'drizzle-orm/pg-core';
import { SIGNAL_SOURCES } from '../../domain/signals';
import { severity } from './alerts';
import { subjects } from './subjects';

export const signalSource = pgEnum('signal_source', SIGNAL_SOURCES);

/** A 64-bit transaction id (`pg_current_xact_id()`), as text. */
const xid8 = customType<{ data: string; driverData: string }>({ dataType: () => 'xid8' });

/**
 * Every accepted signal, once: `(source, external_id)` is the connector's idempotency key, so a
 * replayed event is a duplicate, never a second row. Subjects are referenced by opaque id only;
 * free-text HR remarks are stored sealed with the vault key (`sealed`), never in `attributes`.
 */
export const signals = pgTable(
  'signals',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    source: signalSource('source').notNull(),
    externalId: text('external_id').notNull(),
    subjectId: uuid('subject_id')
      .notNull()
      .references(() => subjects.id),
    type: text('type').notNull(),
    severity: severity('severity'),
    occurredAt: timestamp('occurred_at', { withTimezone: true, mode: 'date' }).notNull(),
    /** Activity events: the number of operations the event stands for; 1 for the others. */
    count: integer('count').notNull().default(1),
    attributes: jsonb('attributes').$type<Record<string, unknown>>().notNull(),
    /** AES-256-GCM (vault key) of the event's free-text fields, `keyId:base64`. */
    sealed: text('sealed'),
    batchId: uuid('batch_id').notNull(),
    receivedAt: timestamp('received_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    /**
     * The inserting transaction. With a snapshot taken earlier (`pg_current_snapshot()`), the rows
     * a later snapshot sees and that one did not are exactly those whose transaction it does not
     * see: what lets scoring keep a subject's signals per process and read only what is new.
     */
    xid: xid8('xid')
      .notNull()
      .default(sql`pg_current_xact_id()`),
  },
  (t) => [
    unique('signals_source_external_id_key').on(t.source, t.externalId),
    // Serves every scoring look-up: a subject's triggers (by type), the signals committed after a
    // snapshot (by xid, skipping over the types) and its windows (the subject's rows). One index:
    // each one more costs every insert.
    index('signals_subject_type_xid_idx').on(t.subjectId, t.type, t.xid),
  ],
);
export type SignalRow = typeof signals.$inferSelect;

/** One row per ingested batch: what was received, and what its scoring workflow did. */
export const signalBatches = pgTable('signal_batches', {
  id: uuid('id').primaryKey(),
  receivedBy: text('received_by').notNull(),
  accepted: integer('accepted').notNull(),
  duplicates: integer('duplicates').notNull(),
  rejected: integer('rejected').notNull(),
  subjects: integer('subjects').notNull(),
  /** The opaque ids of those subjects (duplicates' included): what the batch's scoring reads. */
  subjectIds: uuid('subject_ids').array(),
  scoringWorkflowId: text('scoring_workflow_id'),
  receivedAt: timestamp('received_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  scoredAt: timestamp('scored_at', { withTimezone: true, mode: 'date' }),
  /** Counts and alert ids only. */
  result: jsonb('result').$type<Record<string, unknown>>(),
});

/** Which kinds of connector data have arrived: what policy activation checks its prerequisites against. */
export const connectorData = pgTable(
  'connector_data',
  {
    source: signalSource('source').notNull(),
    type: text('type').notNull(),
    firstReceivedAt: timestamp('first_received_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.source, t.type] })],
);
