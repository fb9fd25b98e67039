/**
 * `npm start`: the whole system on one machine — Temporal dev server (data under ./data, Web UI),
 * embedded PostgreSQL (data under ./data), migrations, a worker and the HTTP API — then prints the
 * URLs and a development token per role. Ctrl-C stops everything in order.
 */
import { mintDevToken, type Claims } from '../api/middleware/auth';
import { runProcess } from '../infra/process';
import { ensureAuditCheckpointSchedule } from '../infra/schedules';
import { openClient, openDatabase, startApi, startDevMailSink, startEmbedded, startWorker } from '../infra/system';

const DEV_PRINCIPALS: Claims[] = [
  { sub: 'admin', roles: ['admin'], regions: ['*'], languages: ['en'] },
  { sub: 'connector', roles: ['connector'], regions: ['*'], languages: [] },
  { sub: 'analyst', roles: ['analyst'], regions: ['eu', 'us'], languages: ['en'] },
  { sub: 'investigator', roles: ['investigator'], regions: ['eu', 'us'], languages: ['en'] },
  { sub: 'auditor', roles: ['auditor'], regions: ['*'], languages: ['en'] },
  { sub: 'legal', roles: ['approver'], stakeholder: 'legal', regions: ['eu', 'us'], languages: ['en'] },
  { sub: 'hr', roles: ['approver'], stakeholder: 'hr', regions: ['eu', 'us'], languages: ['en'] },
  { sub: 'privacy', roles: ['approver'], stakeholder: 'privacy', regions: ['eu', 'us'], languages: ['en'] },
];

await runProcess('start', async ({ config, logger, life }) => {
  const apiBase = config.http.publicUrl ?? `http://${config.http.host}:${config.http.port}`;
  const { databaseUrl, temporalAddress, temporalUi } = await startEmbedded(config, life, logger, {
    codecEndpoint: `${apiBase}/codec`,
  });
  const database = await openDatabase(config, databaseUrl, life, true);
  const { client, connection } = await openClient(config, temporalAddress, life, logger);
  // No SMTP_URL on development defaults: notices go to an SMTP sink in this process.
  const devMail = await startDevMailSink(config, life, logger);
  await startWorker({
    config: devMail ? { ...config, smtpUrl: devMail.url } : config,
    database,
    address: temporalAddress,
    logger,
    life,
    connection, // one native connection for the worker and the API's client
  });
  await ensureAuditCheckpointSchedule(client, { config, taskQueue: config.temporal.taskQueue, logger });
  const { url } = await startApi({ config, database, client, logger, life, devMail: devMail ?? undefined, eagerStart: true });

  const lines = [
    '',
    'Warden is running.',
    `  API           ${url ?? apiBase}`,
    `  API docs      ${url ?? apiBase}/docs`,
    `  Temporal UI   ${temporalUi ?? '(external Temporal: ' + temporalAddress + ')'}`,
    `  Data          ${config.dataDir}`,
    `  SMTP          ${devMail ? devMail.url + ' (development sink; captured mail: GET /v1/dev/outbox as admin)' : config.smtpUrl ? 'SMTP_URL' : '(none)'}`,
    '',
    'Development tokens (valid 12 h; mint more with `npm run token -- --sub … --roles …`):',
  ];
  if (config.env !== 'production') {
    for (const p of DEV_PRINCIPALS) {
      const label = p.stakeholder ? `${p.roles.join(',')}/${p.stakeholder}` : p.roles.join(',');
      lines.push(`  ${label.padEnd(16)} ${await mintDevToken(config.auth.devSecret, p)}`);
    }
  }
  lines.push(
    '',
    'The Temporal Web UI shows payloads encrypted. To read them as an auditor, open',
    `  ${apiBase}/codec/session?token=<auditor token>&redirect=${encodeURIComponent(temporalUi ?? '')}`,
    'and enable "Include cross-origin credentials" in the UI\'s codec settings.',
  );
  lines.push('', `Try: curl -H "Authorization: Bearer <admin token>" ${url}/v1/regions`, 'Press Ctrl-C to stop.', '');
  process.stdout.write(lines.join('\n') + '\n');
});
