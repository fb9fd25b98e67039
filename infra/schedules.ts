/**
 * Temporal schedules Warden relies on, created (or brought up to date) idempotently when a worker
 * starts. Several workers may race here: the first creates, the others update to the same spec.
 */
import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client, type ScheduleOptionsAction } from '@temporalio/client';
import type { Logger } from 'pino';
import type { Config } from './config';

export const AUDIT_CHECKPOINT_SCHEDULE_ID = 'warden-audit-checkpoint';

/** Periodic signed audit checkpoints (`AUDIT_CHECKPOINT_INTERVAL_MINUTES`). */
export async function ensureAuditCheckpointSchedule(
  client: Client,
  opts: { config: Pick<Config, 'audit'>; taskQueue: string; logger: Logger; scheduleId?: string },
): Promise<void> {
  const scheduleId = opts.scheduleId ?? AUDIT_CHECKPOINT_SCHEDULE_ID;
  const spec = { intervals: [{ every: `${opts.config.audit.checkpointIntervalMinutes} minutes` as const }] };
  const action: ScheduleOptionsAction = {
    type: 'startWorkflow',
    workflowType: 'auditCheckpointWorkflow',
    workflowId: `${scheduleId}-run`,
    taskQueue: opts.taskQueue,
    workflowExecutionTimeout: '5 minutes',
  };
  const policies = { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '10 minutes' as const };
  try {
    await client.schedule.create({ scheduleId, spec, action, policies });
    opts.logger.info(
      { scheduleId, everyMinutes: opts.config.audit.checkpointIntervalMinutes },
      'audit checkpoint schedule created',
    );
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    await client.schedule.getHandle(scheduleId).update((previous) => ({ ...previous, spec, action, policies }));
  }
}
