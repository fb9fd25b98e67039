/**
 * The workflow history archive: closed runs stored with their raw (still encrypted) history, so
 * auditors can read a case's history after Temporal's namespace retention deleted it.
 */
import { and, eq, ne } from 'drizzle-orm';
import type { History, HistorySource, RunFacts } from '../../infra/workflow-history';
import { decodeHistory, encodeHistory } from '../../infra/workflow-history';
import type { Db } from '../index';
import { workflowHistoryArchive, type WorkflowHistoryArchiveRow } from '../schema';

/** Store a closed run once; a retried or repeated archive changes nothing. */
export async function saveArchivedRun(db: Db, rootWorkflowId: string, facts: RunFacts, history: History): Promise<boolean> {
  if (!facts.closedAt)
    throw new Error(`run ${facts.runId} of ${facts.workflowId} is still running: only closed runs are archived`);
  const inserted = await db
    .insert(workflowHistoryArchive)
    .values({
      workflowId: facts.workflowId,
      runId: facts.runId,
      rootWorkflowId,
      workflowType: facts.workflowType,
      status: facts.status,
      parentWorkflowId: facts.parentWorkflowId,
      parentRunId: facts.parentRunId,
      firstExecutionRunId: facts.firstExecutionRunId,
      continuedFromRunId: facts.continuedFromRunId,
      newExecutionRunId: facts.newExecutionRunId,
      startedAt: facts.startedAt,
      closedAt: facts.closedAt,
      eventCount: facts.eventCount,
      history: encodeHistory(history),
    })
    .onConflictDoNothing()
    .returning({ runId: workflowHistoryArchive.runId });
  return inserted.length > 0;
}

export async function isArchived(db: Db, workflowId: string, runId: string): Promise<boolean> {
  const [row] = await db
    .select({ runId: workflowHistoryArchive.runId })
    .from(workflowHistoryArchive)
    .where(and(eq(workflowHistoryArchive.workflowId, workflowId), eq(workflowHistoryArchive.runId, runId)));
  return !!row;
}

/** Metadata of every archived run of a tree (no history bytes). */
export async function archivedRunsOf(db: Db, rootWorkflowId: string): Promise<Omit<WorkflowHistoryArchiveRow, 'history'>[]> {
  return db
    .select({
      workflowId: workflowHistoryArchive.workflowId,
      runId: workflowHistoryArchive.runId,
      rootWorkflowId: workflowHistoryArchive.rootWorkflowId,
      workflowType: workflowHistoryArchive.workflowType,
      status: workflowHistoryArchive.status,
      parentWorkflowId: workflowHistoryArchive.parentWorkflowId,
      parentRunId: workflowHistoryArchive.parentRunId,
      firstExecutionRunId: workflowHistoryArchive.firstExecutionRunId,
      continuedFromRunId: workflowHistoryArchive.continuedFromRunId,
      newExecutionRunId: workflowHistoryArchive.newExecutionRunId,
      startedAt: workflowHistoryArchive.startedAt,
      closedAt: workflowHistoryArchive.closedAt,
      eventCount: workflowHistoryArchive.eventCount,
      archivedAt: workflowHistoryArchive.archivedAt,
    })
    .from(workflowHistoryArchive)
    .where(eq(workflowHistoryArchive.rootWorkflowId, rootWorkflowId));
}

/** A history source reading the archive first (one query per tree), then the given client. */
export function archiveHistorySource(db: Db, opts: { client?: HistorySource['client'] } = {}): HistorySource {
  return {
    client: opts.client,
    async archived(workflowId, runId) {
      const [row] = await db
        .select({ history: workflowHistoryArchive.history })
        .from(workflowHistoryArchive)
        .where(and(eq(workflowHistoryArchive.workflowId, workflowId), eq(workflowHistoryArchive.runId, runId)));
      return row ? decodeHistory(row.history) : null;
    },
    async archivedFinalRunId(workflowId) {
      const [row] = await db
        .select({ runId: workflowHistoryArchive.runId })
        .from(workflowHistoryArchive)
        .where(and(eq(workflowHistoryArchive.workflowId, workflowId), ne(workflowHistoryArchive.status, 'continued_as_new')))
        .limit(1);
      return row?.runId ?? null;
    },
  };
}
