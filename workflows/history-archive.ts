import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { ArchiveHistoryInput, ArchiveHistoryResult } from './definitions';
import { awaitRunClose } from './presets';

const { archiveWorkflowHistory } = proxyActivities<Activities>({
  ...awaitRunClose,
  summary: 'archive workflow history once closed',
});

/**
 * Archives one workflow run once it has closed (see activities/archive.ts): its activity answers
 * "not closed yet" until then and is retried with backoff by Temporal, so waiting costs nothing.
 */
export async function archiveHistoryWorkflow(input: ArchiveHistoryInput): Promise<ArchiveHistoryResult> {
  return archiveWorkflowHistory(input);
}
