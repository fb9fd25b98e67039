/**
 * A real Warden for one test file: its own database (copied from the migrated template), its own
 * task queue on the shared Temporal dev server, a worker, the Express app driven by supertest, and
 * the log lines it wrote (for the personal-data checks).
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import type { Client } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import pg from 'pg';
import supertest from 'supertest';
import { inject } from 'vitest';
import { createActivities } from '../../activities';
import { createApp, type App } from '../../api/app';
import { createAuthenticator, mintDevToken, type Claims } from '../../api/middleware/auth';
import { createDatabase, type Database } from '../../db';
import { loadConfig, type Config } from '../../infra/config';
import { createLogger } from '../../infra/logger';
import { Lifecycle } from '../../infra/system';
import { clientOver, connectNative, createWorker, installRuntime } from '../../infra/temporal';
import { TEMPLATE_DB } from '../global-setup';

export interface TestSystem {
  config: Config;
  database: Database;
  db: Database['db'];
  client: Client;
  worker: Worker;
  taskQueue: string;
  app: App;
  http: supertest.Agent;
  /** Every log line written by the API, worker and activities of this system. */
  logs: string[];
  token(claims: Partial<Claims> & Pick<Claims, 'sub' | 'roles'>): Promise<string>;
  /** `Authorization` header value for the given claims. */
  auth(claims: Partial<Claims> & Pick<Claims, 'sub' | 'roles'>): Promise<string>;
  close(): Promise<void>;
}

/** A fresh database copied from the migrated template. */
export async function createTestDatabase(): Promise<string> {
  const name = `t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: inject('pgAdminUrl') });
  await admin.connect();
  try {
    await admin.query(`create database ${name} template ${TEMPLATE_DB}`);
  } finally {
    await admin.end();
  }
  return `${inject('pgBaseUrl')}/${name}`;
}

export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({ WARDEN_ENV: 'test', LOG_LEVEL: 'info', ...env });
}

export async function startTestSystem(opts: { env?: Record<string, string>; worker?: boolean } = {}): Promise<TestSystem> {
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs.push(chunk.toString());
      cb();
    },
  });
  const url = await createTestDatabase();
  const config = testConfig({ DATABASE_URL: url, TEMPORAL_ADDRESS: inject('temporalAddress'), ...opts.env });
  const logger = createLogger({ level: config.logLevel, destination: sink });
  const life = new Lifecycle(logger);
  const database = createDatabase(url, 5);
  life.add('pool', database.close);
  const taskQueue = `test-${randomBytes(6).toString('hex')}`;

  installRuntime('warn', logger);
  // As in `npm start`: the client and the worker share one native connection, so the API's workflow
  // starts are eager (opts.worker === false: no worker here, starts are not eager).
  const connection = await connectNative(config, inject('temporalAddress'));
  life.add('client', () => connection.close());
  const client = clientOver(config, connection);

  let worker: Worker | undefined;
  if (opts.worker !== false) {
    const created = await createWorker({
      config,
      address: inject('temporalAddress'),
      taskQueue,
      activities: createActivities({ db: database.db, logger, config }),
      bundlePath: inject('workflowBundlePath'),
      logger,
      connection,
    });
    worker = created.worker;
    const running = worker.run();
    life.add('worker', async () => {
      if (created.worker.getState() === 'RUNNING') created.worker.shutdown();
      await running;
    });
  }

  const app = createApp({
    config,
    db: database.db,
    temporal: client,
    taskQueue,
    logger,
    authenticator: await createAuthenticator(config),
    eagerStart: opts.worker !== false,
  });
  const token = (claims: Partial<Claims> & Pick<Claims, 'sub' | 'roles'>) =>
    mintDevToken(config.auth.devSecret, { regions: ['eu', 'us'], languages: ['en'], ...claims });
  return {
    config,
    database,
    db: database.db,
    client,
    worker: worker as Worker,
    taskQueue,
    app,
    http: supertest.agent(app.app),
    logs,
    token,
    auth: async (claims) => `Bearer ${await token(claims)}`,
    close: () => life.stopAll(),
  };
}

/** Common principals. */
export const principals = {
  admin: { sub: 'admin-1', roles: ['admin'], regions: ['*'] },
  adminEu: { sub: 'admin-eu', roles: ['admin'], regions: ['eu'] },
  connector: { sub: 'connector-1', roles: ['connector'], regions: ['*'] },
  analyst: { sub: 'analyst-1', roles: ['analyst'], regions: ['eu', 'us'] },
  investigator: { sub: 'investigator-1', roles: ['investigator'], regions: ['eu', 'us'] },
  auditor: { sub: 'auditor-1', roles: ['auditor'], regions: ['*'] },
  legal: { sub: 'legal-1', roles: ['approver'], stakeholder: 'legal', regions: ['eu', 'us'], languages: ['en'] },
  hr: { sub: 'hr-1', roles: ['approver'], stakeholder: 'hr', regions: ['eu', 'us'], languages: ['en'] },
  privacy: { sub: 'privacy-1', roles: ['approver'], stakeholder: 'privacy', regions: ['eu', 'us'], languages: ['en'] },
} satisfies Record<string, Partial<Claims> & Pick<Claims, 'sub' | 'roles'>>;
