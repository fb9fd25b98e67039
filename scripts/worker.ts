/**
 * `npm run worker`: a Temporal worker alone (scale out on the task queue). Applies migrations
 * before polling, so a new worker version never runs against an old schema.
 */
import { runProcess } from '../infra/process';
import { ensureAuditCheckpointSchedule } from '../infra/schedules';
import { defaultDatabaseUrl, defaultTemporalAddress, openClient, openDatabase, startWorker } from '../infra/system';

await runProcess('worker', async ({ config, logger, life }) => {
  const database = await openDatabase(config, defaultDatabaseUrl(config), life, true);
  const address = defaultTemporalAddress(config);
  const { client, connection } = await openClient(config, address, life, logger);
  await startWorker({ config, database, address, logger, life, connection });
  await ensureAuditCheckpointSchedule(client, { config, taskQueue: config.temporal.taskQueue, logger });
  logger.info({ taskQueue: config.temporal.taskQueue }, 'worker polling');
});
