/**
 * `npm run api`: the HTTP API alone (stateless; run as many as needed). Uses DATABASE_URL and
 * TEMPORAL_ADDRESS, defaulting to the embedded components of a running `npm start`.
 */
import { runProcess } from '../infra/process';
import { defaultDatabaseUrl, defaultTemporalAddress, openClient, openDatabase, startApi } from '../infra/system';

await runProcess('api', async ({ config, logger, life }) => {
  const database = await openDatabase(config, defaultDatabaseUrl(config), life, false);
  const { client } = await openClient(config, defaultTemporalAddress(config), life, logger);
  const { url } = await startApi({ config, database, client, logger, life });
  logger.info({ url }, 'API listening');
});
