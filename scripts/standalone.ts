/**
 * A throwaway Warden for scripts (history recording, benchmarks): its own Temporal dev server and
 * embedded PostgreSQL in a temporary folder on free ports, migrated, with a worker and the HTTP API
 * listening on loopback. Everything is stopped and removed by `close()`.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http, { type Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { bundleWorkflowCode, type Worker } from '@temporalio/worker';
import { createActivities } from '../activities';
import { configureHttpServer, createApp } from '../api/app';
import { createAuthenticator, mintDevToken, type Claims } from '../api/middleware/auth';
import { createDatabase, type Database } from '../db';
import { migrateDatabase } from '../db/migrate';
import { loadConfig, type Config } from '../infra/config';
import { ensureTemporalCli, freePort, startEmbeddedPostgres, startTemporalDevServer } from '../infra/dev-services';
import { createLogger } from '../infra/logger';
import {
  clientOver,
  connectClient,
  connectNative,
  createWorker,
  FAILURE_CONVERTER_PATH,
  installRuntime,
  WORKFLOWS_PATH,
} from '../infra/temporal';

export interface Standalone {
  config: Config;
  database: Database;
  client: Client;
  worker: Worker;
  taskQueue: string;
  url: string;
  temporalAddress: string;
  auth(claims: Partial<Claims> & Pick<Claims, 'sub' | 'roles'>): Promise<string>;
  close(): Promise<void>;
}

export async function startStandalone(
  opts: {
    env?: Record<string, string>;
    workflowsPath?: string;
    poolSize?: number;
    log?: (m: string) => void;
    /** Extra PostgreSQL server flags (benchmarks: pg_stat_statements). */
    postgresFlags?: string[];
    /**
     * The client uses the worker's native connection and the API asks for eager workflow starts, as
     * in `npm start` (default); false: a grpc-js connection of its own, no eager starts (the wiring before).
     */
    shareConnection?: boolean;
  } = {},
): Promise<Standalone> {
  const log = opts.log ?? (() => undefined);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'warden-standalone-'));
  chmodSync(dir, 0o755); // PostgreSQL runs as its own user when we are root
  const stops: Array<() => Promise<void>> = [async () => rmSync(dir, { recursive: true, force: true })];
  const close = async () => {
    while (stops.length) await stops.pop()!().catch(() => undefined);
  };
  try {
    const cli = await ensureTemporalCli({ cliPath: process.env.TEMPORAL_CLI_PATH, log });
    const [temporalPort, pgPort, httpPort] = await Promise.all([freePort(), freePort(), freePort()]);
    log('starting Temporal dev server and embedded PostgreSQL');
    const [temporal, postgres] = await Promise.all([
      startTemporalDevServer({ cli, port: temporalPort, logFile: path.join(dir, 'temporal.log') }),
      startEmbeddedPostgres({ dataDir: path.join(dir, 'pg'), port: pgPort, flags: opts.postgresFlags }),
    ]);
    stops.push(temporal.stop, postgres.stop);

    const config = loadConfig({
      WARDEN_ENV: 'test',
      LOG_LEVEL: 'warn',
      DATABASE_URL: postgres.url,
      TEMPORAL_ADDRESS: temporal.address,
      PORT: String(httpPort),
      ...opts.env,
    });
    const logger = createLogger({ level: 'warn' });
    const database = createDatabase(postgres.url, opts.poolSize ?? 20);
    stops.push(database.close);
    await migrateDatabase(database.db);

    installRuntime('warn', logger);
    const shared = opts.shareConnection !== false ? await connectNative(config, temporal.address) : undefined;
    const { client, connection } = shared
      ? { client: clientOver(config, shared), connection: shared }
      : await connectClient(config, temporal.address);
    stops.push(() => connection.close());

    let bundlePath: string | undefined;
    if (opts.workflowsPath && opts.workflowsPath !== WORKFLOWS_PATH) {
      const bundle = await bundleWorkflowCode({
        workflowsPath: opts.workflowsPath,
        failureConverterPath: FAILURE_CONVERTER_PATH,
        logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} },
      });
      bundlePath = path.join(dir, 'bundle.js');
      writeFileSync(bundlePath, bundle.code);
    }
    const taskQueue = 'standalone';
    const w = await createWorker({
      config,
      address: temporal.address,
      taskQueue,
      activities: createActivities({ db: database.db, logger, config }),
      bundlePath,
      logger,
      connection: shared,
    });
    const running = w.worker.run();
    if (!shared) stops.push(() => w.connection.close());
    stops.push(async () => {
      if (w.worker.getState() === 'RUNNING') w.worker.shutdown();
      await running;
    });

    const app = createApp({
      config,
      db: database.db,
      temporal: client,
      taskQueue,
      logger,
      authenticator: await createAuthenticator(config),
      eagerStart: shared !== undefined,
    });
    const server = await new Promise<Server>((resolve, reject) => {
      const s = configureHttpServer(app.app.listen(httpPort, '127.0.0.1', () => resolve(s)));
      s.once('error', reject);
    });
    stops.push(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    );
    return {
      config,
      database,
      client,
      worker: w.worker,
      taskQueue,
      url: `http://127.0.0.1:${httpPort}`,
      temporalAddress: temporal.address,
      auth: async (claims) =>
        `Bearer ${await mintDevToken(config.auth.devSecret, { regions: ['*'], languages: ['en'], ...claims })}`,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** A small JSON client for the standalone API: keep-alive, at most 64 sockets (like a proxy in front). */
export function apiClient(base: string) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const url = new URL(base);
  return function call<T = unknown>(
    method: string,
    p: string,
    authorization: string,
    body?: unknown,
  ): Promise<{ status: number; body: T }> {
    const payload = body !== undefined ? JSON.stringify(body) : undefined;
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          agent,
          host: url.hostname,
          port: url.port,
          method,
          path: p,
          headers: {
            authorization,
            ...(payload !== undefined
              ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
              : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            resolve({ status: res.statusCode ?? 0, body: (text ? JSON.parse(text) : undefined) as T });
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  };
}
