/**
 * The workflow bundle of the benchmarks: every production workflow, plus the baselines their figures
 * are compared with (an empty workflow, a workflow with a no-op Update, the bare shapes of a case
 * workflow and of a batch's scoring workflow).
 */
import { condition, proxyLocalActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { projection } from '../workflows/presets';
import { noopUpdate, stopSignal } from './case-bench-defs';

export * from '../workflows';

export async function emptyWorkflow(): Promise<void> {}

export async function updateBaselineWorkflow(): Promise<void> {
  let done = false;
  setHandler(noopUpdate, (n) => n);
  setHandler(stopSignal, () => {
    done = true;
  });
  await condition(() => done);
}

const { recordSystemCheck } = proxyLocalActivities<Activities>(projection);

/**
 * The smallest workflow a case can be under the design, with no Warden logic: started per
 * case with the case's three search attributes, one local activity writing one row to Postgres (the
 * read-model projection every case needs), then running until stopped. Its throughput on the
 * benchmark's machine bounds any confirm's.
 */
export async function caseShapeWorkflow(id: string): Promise<void> {
  let done = false;
  setHandler(stopSignal, () => {
    done = true;
  });
  await recordSystemCheck({ checkId: id, requestedBy: 'bench', workflowId: workflowInfo().workflowId });
  await condition(() => done);
}

/**
 * The smallest scoring workflow a batch can have under the design ("a workflow per batch"),
 * with no scoring: one local activity writing one row, then done. bench:ingest runs it after a raw
 * INSERT of each batch: the two parts every ingested batch needs, and nothing else.
 */
export async function batchShapeWorkflow(id: string): Promise<void> {
  await recordSystemCheck({ checkId: id, requestedBy: 'bench-batch', workflowId: workflowInfo().workflowId });
}
