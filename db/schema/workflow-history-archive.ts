import { customType, index, integer, pgTable, primaryKey, text, timestamp } from 'drizzle-orm/pg-core';

const bytea = customType<{ data: Buffer; driverData: Buffer }>({ dataType: () => 'bytea' });

/**
 * Closed workflow runs archived for auditors, because Temporal deletes closed histories after the
 * namespace retention. One row per run: the raw history as Temporal returned it (protobuf, payloads
 * still encrypted by the payload codec), plus the facts needed to join runs and children without
 * decoding. `root_workflow_id` groups a case workflow with its step workflows.
 */
export const workflowHistoryArchive = pgTable(
  'workflow_history_archive',
  {
    workflowId: text('workflow_id').notNull(),
    runId: text('run_id').notNull(),
    rootWorkflowId: text('root_workflow_id').notNull(),
    workflowType: text('workflow_type').notNull(),
    /** completed | failed | canceled | terminated | continued_as_new | timed_out */
    status: text('status').notNull(),
    parentWorkflowId: text('parent_workflow_id'),
    parentRunId: text('parent_run_id'),
    firstExecutionRunId: text('first_execution_run_id').notNull(),
    continuedFromRunId: text('continued_from_run_id'),
    newExecutionRunId: text('new_execution_run_id'),
    startedAt: timestamp('started_at', { withTimezone: true, mode: 'date' }).notNull(),
    closedAt: timestamp('closed_at', { withTimezone: true, mode: 'date' }).notNull(),
    eventCount: integer('event_count').notNull(),
    /** `temporal.api.history.v1.History`, protobuf-encoded. */
    history: bytea('history').notNull(),
    archivedAt: timestamp('archived_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.workflowId, t.runId] }), index('workflow_history_archive_root_idx').on(t.rootWorkflowId)],
);

export type WorkflowHistoryArchiveRow = typeof workflowHistoryArchive.$inferSelect;
