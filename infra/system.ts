/**
 * Composition of a running Warden: database, Temporal client, worker and HTTP app, with the
 * embedded components when no external ones are configured. Used by `npm start`, `npm run api`,
 * `npm run worker` and the test harness, so they all run the same code.
 */
import path from 'node:path';
import type { Server } from 'node:http';
import type { Client } from '@temporalio/client';
import type { NativeConnection, Worker } from '@temporalio/worker';
import type { Logger } from 'pino';
import { createActivities } from '../activities';
import { configureHttpServer, createApp, type App } from '../api/app';
import { createAuthenticator } from '../api/middleware/auth';
import { createDatabase, type Database } from '../db';
import { migrateDatabase } from '../db/migrate';
import type { Config } from './config';
import { ensureTemporalCli, startEmbeddedPostgres, startTemporalDevServer } from './dev-services';
import { startSmtpSink, type SmtpSink } from './smtp';
import { clientOver, connectNative, createWorker, ensureSearchAttributes, installRuntime } from './temporal';

type Stop = () => Promise<void>;

/** Runs stops in reverse order of registration, each once, logging failures. */
export class Lifecycle {
  private readonly stops: Array<{ name: string; stop: Stop }> = [];
  constructor(private readonly logger: Logger) {}
  add(name: string, stop: Stop) {
    this.stops.push({ name, stop });
  }
  async stopAll() {
    while (this.stops.length) {
      const { name, stop } = this.stops.pop()!;
      try {
        await stop();
        this.logger.debug({ component: name }, 'stopped');
      } catch (err) {
        this.logger.error({ err, component: name }, 'failed to stop cleanly');
      }
    }
  }
}

export function defaultDatabaseUrl(config: Config): string {
  return config.database.url ?? `postgres://warden:warden-embedded@127.0.0.1:${config.database.embeddedPort}/warden`;
}

export function defaultTemporalAddress(config: Config): string {
  return config.temporal.address ?? `127.0.0.1:${config.temporal.devPort}`;
}

/** Embedded PostgreSQL and Temporal dev server, unless external ones are configured. */
export async function startEmbedded(config: Config, life: Lifecycle, logger: Logger, opts: { codecEndpoint?: string } = {}) {
  let databaseUrl = config.database.url;
  if (!databaseUrl) {
    const pg = await startEmbeddedPostgres({
      dataDir: path.join(config.dataDir, 'postgres'),
      port: config.database.embeddedPort,
    });
    life.add('embedded-postgres', pg.stop);
    databaseUrl = pg.url;
    logger.info({ port: config.database.embeddedPort }, 'embedded PostgreSQL started');
  }
  let temporalAddress = config.temporal.address;
  let temporalUi: string | null = null;
  if (!temporalAddress) {
    const cli = await ensureTemporalCli({ cliPath: config.temporal.cliPath, log: (m) => logger.info(m) });
    const dev = await startTemporalDevServer({
      cli,
      port: config.temporal.devPort,
      uiPort: config.temporal.uiPort,
      dbFile: path.join(config.dataDir, 'temporal', 'temporal.db'),
      logFile: path.join(config.dataDir, 'temporal', 'server.log'),
      namespace: config.temporal.namespace,
      codecEndpoint: opts.codecEndpoint,
    });
    life.add('temporal-dev-server', dev.stop);
    temporalAddress = dev.address;
    temporalUi = dev.uiUrl;
    logger.info({ address: dev.address }, 'Temporal dev server started');
  }
  return { databaseUrl, temporalAddress, temporalUi };
}

export async function openDatabase(config: Config, url: string, life: Lifecycle, migrate: boolean): Promise<Database> {
  const database = createDatabase(url, config.database.poolSize);
  life.add('postgres-pool', database.close);
  if (migrate) await migrateDatabase(database.db);
  return database;
}

export async function startWorker(opts: {
  config: Config;
  database: Database;
  address: string;
  logger: Logger;
  life: Lifecycle;
  taskQueue?: string;
  bundlePath?: string;
  /** The client's native connection, shared (its opener closes it); else the worker opens its own. */
  connection?: NativeConnection;
}): Promise<{ worker: Worker; connection: NativeConnection; running: Promise<void> }> {
  installRuntime(opts.config.logLevel, opts.logger);
  const activities = createActivities({ db: opts.database.db, logger: opts.logger, config: opts.config });
  const { worker, connection } = await createWorker({
    config: opts.config,
    address: opts.address,
    taskQueue: opts.taskQueue,
    activities,
    bundlePath: opts.bundlePath,
    logger: opts.logger,
    connection: opts.connection,
  });
  const running = worker.run();
  if (!opts.connection) opts.life.add('temporal-connection(worker)', () => connection.close());
  opts.life.add('worker', async () => {
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await running;
  });
  return { worker, connection, running };
}

export async function startApi(opts: {
  config: Config;
  database: Database;
  client: Client;
  logger: Logger;
  life: Lifecycle;
  taskQueue?: string;
  listen?: boolean;
  devMail?: SmtpSink;
  /** A worker of the same task queue shares the client's native connection (see AppDeps.eagerStart). */
  eagerStart?: boolean;
}): Promise<{ app: App; server?: Server; url?: string }> {
  const authenticator = await createAuthenticator(opts.config);
  const app = createApp({
    config: opts.config,
    db: opts.database.db,
    temporal: opts.client,
    taskQueue: opts.taskQueue ?? opts.config.temporal.taskQueue,
    logger: opts.logger,
    authenticator,
    devMail: opts.devMail,
    eagerStart: opts.eagerStart,
  });
  if (opts.listen === false) return { app };
  const server = await new Promise<Server>((resolve, reject) => {
    const s = configureHttpServer(app.app.listen(opts.config.http.port, opts.config.http.host, () => resolve(s)));
    s.once('error', reject);
  });
  opts.life.add(
    'http',
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  );
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : opts.config.http.port;
  return { app, server, url: `http://${opts.config.http.host}:${port}` };
}

/**
 * The development SMTP sink: started when no SMTP_URL is configured on development defaults, so
 * notices sent by `npm start` are captured in the process (`GET /v1/dev/outbox`) and never leave it.
 */
export async function startDevMailSink(config: Config, life: Lifecycle, logger: Logger): Promise<SmtpSink | null> {
  if (config.smtpUrl || !config.isDevelopmentDefaults) return null;
  const sink = await startSmtpSink({ logger: logger.child({ component: 'smtp-sink' }) });
  life.add('smtp-sink', sink.stop);
  logger.info({ url: sink.url }, 'development SMTP sink started; captured mail: GET /v1/dev/outbox');
  return sink;
}

export async function openClient(
  config: Config,
  address: string,
  life: Lifecycle,
  logger: Logger,
): Promise<{ client: Client; connection: NativeConnection }> {
  // A native (SDK core) connection: a worker started in this process shares it (startWorker's
  // `connection`), so the API's calls skip grpc-js and its workflow starts can be eager.
  installRuntime(config.logLevel, logger);
  const connection = await connectNative(config, address);
  life.add('temporal-connection(client)', () => connection.close());
  await ensureSearchAttributes(connection, config.temporal.namespace, logger);
  return { client: clientOver(config, connection), connection };
}
