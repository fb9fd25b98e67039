/**
 * Temporal plumbing: connection and client, the data converter (payload encryption and encoded
 * failures), the workflow bundle (built once per process), worker creation, and search attribute
 * registration. Used by the api, the worker and the all-in-one start; never by workflow code.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection, type ConnectionOptions } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import proto from '@temporalio/proto';

const { temporal } = proto;
import {
  bundleWorkflowCode,
  DefaultLogger,
  NativeConnection,
  Runtime,
  Worker,
  makeTelemetryFilterString,
  type WorkflowBundleOption,
} from '@temporalio/worker';
import type { Logger } from 'pino';
import type { Activities } from '../activities';
import { SEARCH_ATTRIBUTES } from '../workflows/definitions';
import type { Config } from './config';
import { EncryptionCodec } from './codec';

const here = path.dirname(fileURLToPath(import.meta.url));
export const WORKFLOWS_PATH = path.join(here, '..', 'workflows', 'index.ts');
export const FAILURE_CONVERTER_PATH = path.join(here, 'failure-converter.cjs');

export function createDataConverter(config: Pick<Config, 'keys'>): DataConverter {
  return {
    payloadCodecs: [new EncryptionCodec(config.keys.payload)],
    failureConverterPath: FAILURE_CONVERTER_PATH,
  };
}

function connectionOptions(config: Config, address: string): ConnectionOptions & { apiKey?: string } {
  const t = config.temporal;
  const tls =
    t.tls || t.tlsCertPath
      ? t.tlsCertPath && t.tlsKeyPath
        ? { clientCertPair: { crt: readFileSync(t.tlsCertPath), key: readFileSync(t.tlsKeyPath) } }
        : true
      : undefined;
  return { address, tls, apiKey: t.apiKey };
}

export async function connectClient(config: Config, address: string): Promise<{ client: Client; connection: Connection }> {
  const connection = await Connection.connect(connectionOptions(config, address));
  return { client: clientOver(config, connection), connection };
}

/**
 * A client over an existing connection. Over the worker's own NativeConnection (a process that
 * runs the API and the worker together) its calls go through the SDK's Rust core instead of
 * grpc-js on the event loop, and a workflow started with `requestEagerStart` gets its first task
 * straight from the start response, without the matching service's round trip.
 */
export function clientOver(config: Config, connection: Connection | NativeConnection): Client {
  return new Client({ connection, namespace: config.temporal.namespace, dataConverter: createDataConverter(config) });
}

let runtimeInstalled = false;
/**
 * Install the Temporal Core runtime once per process, without its own signal handlers: the process
 * entry decides the shutdown order (stop HTTP, drain the worker, close pools).
 */
export function installRuntime(logLevel: string, logger?: Logger): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  const level = logLevel === 'debug' || logLevel === 'trace' ? 'INFO' : 'WARN';
  const sdkLogger = logger?.child({ component: 'temporal-sdk' });
  Runtime.install({
    shutdownSignals: [],
    logger: new DefaultLogger(level, (entry) => {
      const fn = entry.level === 'ERROR' ? 'error' : entry.level === 'WARN' ? 'warn' : 'info';
      sdkLogger?.[fn]({ sdk: entry.meta }, entry.message);
    }),
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: level }), forward: {} } },
  });
}

let bundlePromise: Promise<WorkflowBundleOption> | undefined;
/** The workflow bundle, built once per process (or read from a prebuilt file). */
export function workflowBundle(prebuiltPath?: string): Promise<WorkflowBundleOption> {
  if (prebuiltPath) return Promise.resolve({ codePath: prebuiltPath });
  bundlePromise ??= bundleWorkflowCode({
    workflowsPath: WORKFLOWS_PATH,
    failureConverterPath: FAILURE_CONVERTER_PATH,
    logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} },
  }).then((b) => ({ code: b.code }));
  return bundlePromise;
}

/** A native (Rust core) connection, for a worker and a client sharing it. */
export function connectNative(config: Config, address: string): Promise<NativeConnection> {
  return NativeConnection.connect(connectionOptions(config, address));
}

export async function createWorker(opts: {
  config: Config;
  address: string;
  taskQueue?: string;
  activities: Activities;
  bundlePath?: string;
  logger: Logger;
  /** An existing connection to share (with a client in the same process); else a new one. */
  connection?: NativeConnection;
}): Promise<{ worker: Worker; connection: NativeConnection }> {
  const t = opts.config.temporal;
  const connection = opts.connection ?? (await connectNative(opts.config, opts.address));
  const worker = await Worker.create({
    connection,
    namespace: t.namespace,
    taskQueue: opts.taskQueue ?? t.taskQueue,
    workflowBundle: await workflowBundle(opts.bundlePath),
    activities: opts.activities,
    dataConverter: createDataConverter(opts.config),
    identity: `warden-worker@${process.pid}`,
  });
  return { worker, connection };
}

/**
 * Register Warden's custom search attributes on a namespace (idempotent). The embedded dev server
 * gets them on its command line; an external cluster gets them here when the worker starts.
 */
export async function ensureSearchAttributes(
  connection: Pick<Connection, 'operatorService'>,
  namespace: string,
  logger: Logger,
): Promise<void> {
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const missing = SEARCH_ATTRIBUTES.filter((k) => !(k.name in (existing.customAttributes ?? {})));
  if (missing.length === 0) return;
  try {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(
        missing.map((k) => [k.name, temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD]),
      ),
    });
  } catch (err) {
    // Temporal Cloud manages search attributes outside the operator API: say what is needed.
    logger.warn({ err, missing: missing.map((k) => k.name) }, 'could not register search attributes; register them as Keyword');
  }
}
