/**
 * Replay of committed histories (test/fixtures/histories, written by `npm run histories:record`)
 * with the current workflow bundle: a change to the case or step workflows that would make running
 * cases non-deterministic fails here, in CI, before it reaches a worker.
 *
 * The histories' payloads are encrypted by our codec with the development key; the replayer gets
 * the same data converter, as a production worker would.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { installRuntime, createDataConverter, FAILURE_CONVERTER_PATH } from '../../infra/temporal';
import { createLogger } from '../../infra/logger';
import { testConfig } from '../helpers/system';

const DIR = path.resolve(__dirname, '../fixtures/histories');

interface Recorded {
  workflows: Array<{ workflowId: string; runId?: string; history: unknown }>;
}

function load() {
  return readdirSync(DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .flatMap((file) =>
      (JSON.parse(readFileSync(path.join(DIR, file), 'utf8')) as Recorded).workflows.map((w) => ({
        file,
        workflowId: w.workflowId,
        history: historyFromJSON(w.history),
      })),
    );
}

beforeAll(() => installRuntime('warn', createLogger({ level: 'warn' })));

describe('replay of committed case histories', () => {
  const histories = load();

  it('covers case and step workflows, SLA timers and a continue-as-new chain', () => {
    const types = histories.map((h) => h.history.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name);
    expect(types.filter((t) => t === 'caseWorkflow').length).toBeGreaterThanOrEqual(5);
    expect(types.filter((t) => t === 'stepWorkflow').length).toBeGreaterThanOrEqual(6);
    const continued = histories.filter((h) => h.history.events?.some((e) => e.workflowExecutionContinuedAsNewEventAttributes));
    expect(continued.length).toBeGreaterThanOrEqual(1);
    const timers = histories.filter((h) => h.history.events?.some((e) => e.timerFiredEventAttributes));
    expect(timers.length).toBeGreaterThanOrEqual(2);
  });

  it('the current workflow code replays every recorded history without a non-determinism error', async () => {
    const results = [];
    for await (const r of Worker.runReplayHistories(
      {
        workflowBundle: { codePath: inject('workflowBundlePath') },
        dataConverter: createDataConverter(testConfig()),
      },
      histories.map((h) => ({ workflowId: h.workflowId, history: h.history })),
    )) {
      results.push(r);
    }
    expect(results).toHaveLength(histories.length);
    const failures = results.filter((r) => r.error).map((r) => `${r.workflowId}: ${String(r.error)}`);
    expect(failures).toEqual([]);
  });

  it('would catch a breaking change: a step workflow that schedules a new activity first does not replay', async () => {
    // A deliberately changed copy of the workflows, bundled from a string: reminders removed.
    const bundle = await bundleWorkflowCode({
      workflowsPath: path.resolve(__dirname, '../fixtures/broken-workflows.ts'),
      failureConverterPath: FAILURE_CONVERTER_PATH,
      logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} },
    });
    const sla = histories.filter(
      (h) =>
        h.file === 'sla-expiry-escalation.json' &&
        h.history.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name === 'stepWorkflow',
    );
    expect(sla.length).toBeGreaterThan(0);
    const results = [];
    for await (const r of Worker.runReplayHistories(
      { workflowBundle: { code: bundle.code }, dataConverter: createDataConverter(testConfig()) },
      sla.map((h) => ({ workflowId: h.workflowId, history: h.history })),
    )) {
      results.push(r);
    }
    expect(results.some((r) => r.error)).toBe(true);
  });
});
