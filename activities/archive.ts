/**
 * `archiveWorkflowHistory`: copy closed workflow runs — a run, the earlier runs of its
 * continue-as-new chain, and its child workflows — into `workflow_history_archive`, payloads still
 * encrypted. Temporal deletes closed histories after the namespace retention; auditors read the
 * archive instead (api/routes/history.ts).
 *
 * How a workflow uses it: call it with its own id as its last step (and before continuing as new).
 * The calling run is still open at that moment, so the activity starts `archiveHistoryWorkflow`
 * for it (id `history-archive-<workflowId>-<runId>`, idempotent), whose own call of this activity
 * is retried until the run has closed, so the archive holds the complete history including its
 * closing event. Children still running are deferred the same way.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { WorkflowIdConflictPolicy, type Client } from '@temporalio/client';
import { isArchived, saveArchivedRun } from '../db/queries/history-archive';
import { ErrorType } from '../domain/errors';
import { runFacts } from '../infra/workflow-history';
import { workflowIds, type ArchiveHistoryInput, type ArchiveHistoryResult } from '../workflows/definitions';
import type { ActivityDeps } from './index';

export function createArchiveActivities(deps: Pick<ActivityDeps, 'db' | 'logger'>) {
  /** Start (or find) the archiver that waits for a run to close. */
  async function defer(client: Client, taskQueue: string, input: Required<ArchiveHistoryInput>): Promise<string> {
    const archiverWorkflowId = workflowIds.historyArchive(input.workflowId, input.runId);
    await client.workflow.start('archiveHistoryWorkflow', {
      workflowId: archiverWorkflowId,
      taskQueue,
      args: [input],
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    });
    return archiverWorkflowId;
  }

  return {
    async archiveWorkflowHistory(input: ArchiveHistoryInput): Promise<ArchiveHistoryResult> {
      const ctx = Context.current();
      const client = ctx.client;
      const taskQueue = ctx.info.taskQueue;
      const self = ctx.info.workflowExecution ?? { workflowId: '', runId: '' };
      const rootWorkflowId = input.rootWorkflowId ?? input.workflowId;
      const runId =
        input.runId ??
        (self.workflowId === input.workflowId
          ? self.runId
          : (await client.workflow.getHandle(input.workflowId).describe()).runId);
      const target = { workflowId: input.workflowId, runId, rootWorkflowId };

      const described = await client.workflow.getHandle(input.workflowId, runId).describe();
      if (described.status.name === 'RUNNING') {
        if (self.workflowId === input.workflowId && self.runId === runId) {
          return { status: 'deferred', archiverWorkflowId: await defer(client, taskQueue, target) };
        }
        throw ApplicationFailure.create({
          type: ErrorType.Unavailable,
          message: `run ${runId} of ${input.workflowId} has not closed yet; archiving it when it has`,
        });
      }

      let runs = 0;
      let events = 0;
      const deferred: string[] = [];
      const visited = new Set<string>();
      /** Children first, then earlier and later runs, the run itself last: a stored run implies its dependants were handled. */
      const archiveRun = async (workflowId: string, rid: string): Promise<void> => {
        const key = `${workflowId}/${rid}`;
        if (visited.has(key) || (await isArchived(deps.db, workflowId, rid))) return;
        visited.add(key);
        ctx.heartbeat({ workflowId, runId: rid });
        const history = await client.workflow.getHandle(workflowId, rid).fetchHistory();
        const facts = runFacts(workflowId, rid, history);
        if (!facts.closedAt) {
          deferred.push(await defer(client, taskQueue, { workflowId, runId: rid, rootWorkflowId }));
          return;
        }
        for (const child of facts.children) await archiveRun(child.workflowId, child.runId);
        if (facts.continuedFromRunId) {
          try {
            await archiveRun(workflowId, facts.continuedFromRunId);
          } catch (err) {
            // An earlier run already deleted by retention: archive what is still there.
            deps.logger.warn({ err, workflowId, runId: facts.continuedFromRunId }, 'earlier run not available for archiving');
          }
        }
        if (facts.newExecutionRunId) await archiveRun(workflowId, facts.newExecutionRunId);
        if (await saveArchivedRun(deps.db, rootWorkflowId, facts, history)) {
          runs++;
          events += facts.eventCount;
        }
      };
      await archiveRun(input.workflowId, runId);
      deps.logger.info(
        { workflowId: input.workflowId, runId, runs, events, deferred: deferred.length },
        'workflow history archived',
      );
      return { status: 'archived', runs, events, deferred };
    },
  };
}
