/**
 * The workflow bundle of the case benchmark: every production workflow, plus the two baselines the
 * figures are compared with (an empty workflow, and a workflow with a no-op Update).
 */
import { condition, setHandler } from '@temporalio/workflow';
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
