/**
 * One real Temporal dev server and one real embedded PostgreSQL for the whole test run. Each test
 * file then creates its own database from a migrated template and its own task queue.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { createDatabase } from '../db';
import { migrateDatabase } from '../db/migrate';
import { ensureTemporalCli, freePort, startEmbeddedPostgres, startTemporalDevServer } from '../infra/dev-services';
import { FAILURE_CONVERTER_PATH, WORKFLOWS_PATH } from '../infra/temporal';

export const TEMPLATE_DB = 'warden_template';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    pgAdminUrl: string;
    pgBaseUrl: string;
    workflowBundlePath: string;
    temporalCli: string;
  }
}

export default async function setup(project: TestProject) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'warden-test-'));
  // When run as root, PostgreSQL runs as a separate user that must be able to enter this folder.
  chmodSync(dir, 0o755);
  const cli = await ensureTemporalCli({ cliPath: process.env.TEMPORAL_CLI_PATH, log: (m) => console.log(m) });
  const [temporalPort, pgPort] = await Promise.all([freePort(), freePort()]);
  const [temporal, postgres, bundle] = await Promise.all([
    startTemporalDevServer({ cli, port: temporalPort, logFile: path.join(dir, 'temporal.log') }),
    startEmbeddedPostgres({ dataDir: path.join(dir, 'pg'), port: pgPort, database: TEMPLATE_DB }),
    bundleWorkflowCode({
      workflowsPath: WORKFLOWS_PATH,
      failureConverterPath: FAILURE_CONVERTER_PATH,
      logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} },
    }),
  ]);
  const template = createDatabase(postgres.url, 2);
  await migrateDatabase(template.db);
  await template.close();
  // A template database cannot be copied while anyone is connected to it.
  const admin = new pg.Client({ connectionString: postgres.adminUrl });
  await admin.connect();
  await admin.query(`alter database ${TEMPLATE_DB} with is_template true`);
  await admin.end();

  const bundlePath = path.join(dir, 'workflow-bundle.js');
  writeFileSync(bundlePath, bundle.code);

  project.provide('temporalAddress', temporal.address);
  project.provide('pgAdminUrl', postgres.adminUrl);
  project.provide('pgBaseUrl', postgres.adminUrl.replace(/\/postgres$/, ''));
  project.provide('workflowBundlePath', bundlePath);
  project.provide('temporalCli', cli);

  return async () => {
    await temporal.stop();
    await postgres.stop();
    rmSync(dir, { recursive: true, force: true });
  };
}
