/**
 * Workflow code: deterministic only. May import `@temporalio/workflow`, `domain/` and
 * `./definitions`; sees activities only as a type. Never imports `node:*`, `db/`, `api/` or
 * anything with I/O (a test enforces it).
 */
export { systemCheckWorkflow } from './system-check';
export { auditCheckpointWorkflow } from './audit-checkpoint';
export { archiveHistoryWorkflow } from './history-archive';
export { caseWorkflow } from './case-workflow';
export { stepWorkflow } from './step-workflow';
export { noticeWorkflow } from './notice-workflow';
export { scoreSignalBatchWorkflow, policyBackfillWorkflow } from './scoring';
