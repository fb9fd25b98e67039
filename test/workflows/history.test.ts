/**
 * The history machinery auditors rely on, against a real Temporal server: joining continue-as-new
 * runs and child workflows, decoding (the payload codec decrypts) and rendering events readably
 * with who did what, archiving each run once it has closed, serving from the archive after
 * Temporal deleted the histories, and replaying the archived raw history.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadDataConverter } from '@temporalio/common/lib/internal-non-workflow/data-converter-helpers';
import { historyFromJSON, historyToJSON } from '@temporalio/common/lib/proto-utils';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities';
import { archiveHistorySource } from '../../db/queries/history-archive';
import { workflowHistoryArchive } from '../../db/schema';
import { createLogger } from '../../infra/logger';
import { createDataConverter, createWorker, FAILURE_CONVERTER_PATH } from '../../infra/temporal';
import { collectWorkflowTree, mergeEvents, renderEvents, type ReadableEvent } from '../../infra/workflow-history';
import { workflowIds } from '../../workflows/definitions';
import { fixtureDoneSignal, fixtureNoteUpdate, type historyFixtureParent } from '../fixtures/history-workflows';
import { startTestSystem, type TestSystem } from '../helpers/system';
import { inject } from 'vitest';

let sys: TestSystem;
let bundlePath: string;
let taskQueue: string;
let stopWorker: () => Promise<void>;
const investigator = { sub: 'investigator-1', roles: ['investigator'], requestId: 'req-upd' };
const approver = { sub: 'legal-1', roles: ['approver'], requestId: 'req-sig' };
const converter = () => loadDataConverter(createDataConverter(sys.config));

beforeAll(async () => {
  sys = await startTestSystem({ worker: false });
  const bundle = await bundleWorkflowCode({
    workflowsPath: path.resolve(__dirname, '../fixtures/history-workflows.ts'),
    failureConverterPath: FAILURE_CONVERTER_PATH,
    logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} },
  });
  bundlePath = path.join(mkdtempSync(path.join(os.tmpdir(), 'history-bundle-')), 'bundle.js');
  writeFileSync(bundlePath, bundle.code);
  taskQueue = `history-${randomBytes(6).toString('hex')}`;
  const logger = createLogger({ level: 'silent' });
  const { worker, connection } = await createWorker({
    config: sys.config,
    address: inject('temporalAddress'),
    taskQueue,
    activities: createActivities({ db: sys.db, logger, config: sys.config }),
    bundlePath,
    logger,
  });
  const running = worker.run();
  stopWorker = async () => {
    worker.shutdown();
    await running;
    await connection.close();
  };
});
afterAll(async () => {
  await stopWorker?.();
  await sys?.close();
});

async function waitFor<T>(probe: () => Promise<T | undefined | null | false>, ms = 30_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Run the fixture to completion: an Update in run 1, continue-as-new, a signal in run 2. */
async function runFixture(): Promise<{ workflowId: string; firstRunId: string; result: { notes: string[] } }> {
  const workflowId = `history-fixture-${randomUUID()}`;
  const handle = await sys.client.workflow.start<typeof historyFixtureParent>('historyFixtureParent', {
    taskQueue,
    workflowId,
    args: [{ requestedBy: { sub: 'analyst-1', roles: ['analyst'], requestId: 'req-start' }, checkId: randomUUID() }],
  });
  await handle.executeUpdate(fixtureNoteUpdate, { args: [{ text: 'first note', actor: investigator }] });
  await waitFor(async () => (await sys.client.workflow.getHandle(workflowId).describe()).runId !== handle.firstExecutionRunId);
  await sys.client.workflow.getHandle(workflowId).signal(fixtureDoneSignal, { actor: approver });
  const result = await sys.client.workflow.getHandle(workflowId).result();
  return { workflowId, firstRunId: handle.firstExecutionRunId, result };
}

async function readable(workflowId: string, fromArchive: boolean) {
  const source = archiveHistorySource(sys.db, { client: fromArchive ? undefined : sys.client });
  const tree = await collectWorkflowTree(fromArchive ? source : { archived: async () => null, client: sys.client }, workflowId);
  expect(tree).not.toBeNull();
  const merged = mergeEvents(tree!.runs);
  return { tree: tree!, events: await renderEvents(merged, merged, converter(), 0) };
}

const find = (events: ReadableEvent[], pred: (e: ReadableEvent) => boolean, what: string) => {
  const e = events.find(pred);
  expect(e, what).toBeDefined();
  return e!;
};

let fixture: Awaited<ReturnType<typeof runFixture>>;

describe('a workflow tree with continue-as-new and child workflows, read from Temporal', () => {
  it('joins both runs of the chain and both children, oldest first', async () => {
    fixture = await runFixture();
    expect(fixture.result.notes).toEqual(['first note']);
    const { tree } = await readable(fixture.workflowId, false);
    expect(tree.missing).toEqual([]);
    expect(tree.runs.map((r) => [r.facts.workflowId.replace(fixture.workflowId, 'W'), r.run, r.facts.status, r.source])).toEqual([
      ['W', 1, 'continued_as_new', 'temporal'],
      ['W', 2, 'completed', 'temporal'],
      ['W-child-1', 1, 'completed', 'temporal'],
      ['W-child-2', 1, 'completed', 'temporal'],
    ]);
    expect(tree.runs[0]!.facts.runId).toBe(fixture.firstRunId);
    expect(tree.runs[1]!.facts.continuedFromRunId).toBe(fixture.firstRunId);
  });

  it('renders each event readably: who started it, who called the Update, who signalled, timers, activities, children', async () => {
    const { events } = await readable(fixture.workflowId, false);
    expect(events.map((e) => e.position)).toEqual(events.map((_, i) => i + 1));
    const times = events.map((e) => e.at);
    expect([...times].sort()).toEqual(times);

    const started = find(
      events,
      (e) => e.type === 'WorkflowExecutionStarted' && e.workflowId === fixture.workflowId && e.run === 1,
      'start',
    );
    expect(started.actor).toEqual({ sub: 'analyst-1', roles: ['analyst'] });
    expect(started.summary).toBe('historyFixtureParent started by analyst-1');
    expect((started.details.input as Array<{ checkId: string }>)[0]!.checkId).toMatch(/^[0-9a-f-]{36}$/);

    const update = find(events, (e) => e.type === 'WorkflowExecutionUpdateAccepted', 'update');
    expect(update).toMatchObject({
      actor: { sub: 'investigator-1', roles: ['investigator'] },
      summary: 'investigator-1 called fixtureNote (accepted)',
    });
    expect(update.details.input).toEqual([{ text: 'first note', actor: investigator }]);
    const updateDone = find(events, (e) => e.type === 'WorkflowExecutionUpdateCompleted', 'update completed');
    expect(updateDone).toMatchObject({ summary: 'update fixtureNote completed', details: { result: { notes: 1 } } });

    const signal = find(events, (e) => e.type === 'WorkflowExecutionSignaled', 'signal');
    expect(signal).toMatchObject({ run: 2, actor: { sub: 'legal-1' }, summary: 'signal fixtureDone received from legal-1' });

    expect(events.filter((e) => e.type === 'TimerStarted').map((e) => e.summary)).toContain('timer 1 started for 50 ms');
    expect(events.some((e) => e.type === 'TimerFired' && e.workflowId === fixture.workflowId)).toBe(true);
    const activity = find(
      events,
      (e) => e.type === 'ActivityTaskCompleted' && e.details.activity === 'recordSystemCheck',
      'activity',
    );
    expect(activity.summary).toBe('activity recordSystemCheck completed');
    expect(activity.details.result).toMatchObject({ attempt: 1 });

    expect(events.filter((e) => e.type === 'ChildWorkflowExecutionCompleted').map((e) => e.summary)).toEqual([
      `child workflow ${fixture.workflowId}-child-1 completed`,
      `child workflow ${fixture.workflowId}-child-2 completed`,
    ]);
    const childStart = find(
      events,
      (e) => e.type === 'WorkflowExecutionStarted' && e.workflowId.endsWith('-child-2'),
      'child start',
    );
    expect(childStart.summary).toBe(`historyFixtureChild started by analyst-1 as a child of ${fixture.workflowId}`);
    expect(find(events, (e) => e.type === 'WorkflowExecutionContinuedAsNew', 'can').summary).toMatch(
      /continued as new \(next run /,
    );
    const second = find(
      events,
      (e) => e.type === 'WorkflowExecutionStarted' && e.workflowId === fixture.workflowId && e.run === 2,
      'run 2',
    );
    expect(second.summary).toBe('historyFixtureParent run 2 started (continued as new from the previous run)');
    expect(second.details.input).toMatchObject([{ carriedNotes: ['first note'] }]);
    const completed = find(events, (e) => e.type === 'WorkflowExecutionCompleted' && e.workflowId === fixture.workflowId, 'done');
    expect(completed.details.result).toEqual({ notes: ['first note'], runs: 2 });
    // Bookkeeping events are left out unless asked for.
    expect(events.some((e) => e.type.startsWith('WorkflowTask'))).toBe(false);
    // Nothing encrypted leaks through: payloads were decoded, not shown as ciphertext.
    expect(JSON.stringify(events)).not.toContain('binary/encrypted');
  });
});

describe('the archive', () => {
  it('each run is archived once it has closed, complete with its closing event, by the archiver the workflow started', async () => {
    const runs = await waitFor(async () => {
      const rows = await sys.db
        .select()
        .from(workflowHistoryArchive)
        .where(eq(workflowHistoryArchive.rootWorkflowId, fixture.workflowId));
      return rows.length === 4 ? rows : null;
    });
    const byKey = Object.fromEntries(runs.map((r) => [`${r.workflowId.replace(fixture.workflowId, 'W')}:${r.status}`, r]));
    expect(Object.keys(byKey).sort()).toEqual([
      'W-child-1:completed',
      'W-child-2:completed',
      'W:completed',
      'W:continued_as_new',
    ]);
    expect(byKey['W:continued_as_new']!.runId).toBe(fixture.firstRunId);
    expect(byKey['W:completed']!.continuedFromRunId).toBe(fixture.firstRunId);
    const liveFinal = await sys.client.workflow.getHandle(fixture.workflowId, byKey['W:completed']!.runId).fetchHistory();
    expect(byKey['W:completed']!.eventCount).toBe(liveFinal.events!.length);
    // The archivers themselves ran as workflows with deterministic ids.
    for (const r of [byKey['W:continued_as_new']!, byKey['W:completed']!]) {
      // The row is written by the archiver's activity; the archiver completes right after it.
      const archiver = sys.client.workflow.getHandle(workflowIds.historyArchive(fixture.workflowId, r.runId));
      await archiver.result();
      expect((await archiver.describe()).status.name).toBe('COMPLETED');
    }
    // Stored still encrypted: the raw bytes do not contain the note's text.
    expect(Buffer.from(byKey['W:continued_as_new']!.history).toString('latin1')).not.toContain('first note');
  });

  it('after Temporal deleted the histories, the tree is served from the archive with the same readable events', async () => {
    const before = (await readable(fixture.workflowId, false)).events;
    const ns = sys.config.temporal.namespace;
    for (const r of (await readable(fixture.workflowId, false)).tree.runs) {
      await sys.client.workflowService.deleteWorkflowExecution({
        namespace: ns,
        workflowExecution: { workflowId: r.facts.workflowId, runId: r.facts.runId },
      });
    }
    // Deletion is a background task of the server, queued behind the run's visibility tasks: on a
    // server shared by a whole parallel test run it has taken longer than 30 s.
    await waitFor(async () => {
      try {
        await sys.client.workflow.getHandle(fixture.workflowId, fixture.firstRunId).fetchHistory();
        return false;
      } catch {
        return true;
      }
    }, 150_000);
    const { tree, events } = await readable(fixture.workflowId, true);
    expect(tree.runs.every((r) => r.source === 'archive')).toBe(true);
    expect(events.map((e) => [e.type, e.summary, e.actor?.sub ?? null])).toEqual(
      before.map((e) => [e.type, e.summary, e.actor?.sub ?? null]),
    );
  }, 180_000);

  it('the archived raw history round-trips through JSON and replays against the workflow code', async () => {
    const [row] = await sys.db.select().from(workflowHistoryArchive).where(eq(workflowHistoryArchive.runId, fixture.firstRunId));
    const { decodeHistory } = await import('../../infra/workflow-history');
    const json = historyToJSON(decodeHistory(row!.history));
    // Payloads stay encrypted in the download: their metadata names the codec's encoding.
    expect(json).toContain(Buffer.from('binary/encrypted').toString('base64'));
    expect(json).not.toContain('first note');
    const history = historyFromJSON(JSON.parse(json));
    await Worker.runReplayHistory(
      { workflowBundle: { codePath: bundlePath }, dataConverter: createDataConverter(sys.config), replayName: 'archived' },
      history,
      fixture.workflowId,
    );
  });
});
