/**
 * Replay of committed histories (test/fixtures/histories, written by `npm run histories:record`)
 * with the current workflow bundle: a change to the case, step, scoring, policy backfill or notice
 * delivery workflows that would make running workflows non-deterministic fails here, in CI, before
 * it reaches a worker.
 *
 * The histories' payloads are encrypted by our codec with the development key; the replayer gets
 * the same data converter, as a production worker would.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { METADATA_ENCODING_KEY, type Payload } from '@temporalio/common';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { installRuntime, createDataConverter, FAILURE_CONVERTER_PATH } from '../../infra/temporal';
import { EncryptionCodec, ENCODING } from '../../infra/codec';
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

type Loaded = ReturnType<typeof load>[number];
type HistoryEvent = NonNullable<Loaded['history']['events']>[number];

const typeOf = (h: Loaded) => h.history.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name;
const events = (h: Loaded): HistoryEvent[] => h.history.events ?? [];
const scheduled = (h: Loaded) =>
  events(h)
    .map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name)
    .filter((n): n is string => !!n);

/** Every payload object in a history, with where it is (path of field names). */
function payloadsOf(v: unknown, at: string[] = [], out: Array<{ at: string[]; payload: Payload }> = []) {
  if (!v || typeof v !== 'object' || v instanceof Uint8Array) return out;
  const o = v as Record<string, unknown>;
  if (o.metadata && o.data instanceof Uint8Array) out.push({ at, payload: o as Payload });
  for (const [k, x] of Object.entries(o)) payloadsOf(x, [...at, k], out);
  return out;
}

const encodingOf = (p: Payload) => Buffer.from(p.metadata?.[METADATA_ENCODING_KEY] ?? new Uint8Array()).toString();

/** The JSON value of an encrypted payload, decrypted with the development key the recording used. */
async function decrypt(p: Payload | null | undefined): Promise<unknown> {
  if (!p) return undefined;
  const [plain] = await new EncryptionCodec(testConfig().keys.payload).decode([p]);
  return JSON.parse(Buffer.from(plain!.data ?? new Uint8Array()).toString('utf8'));
}

const resultOf = (h: Loaded) => decrypt(events(h).at(-1)?.workflowExecutionCompletedEventAttributes?.result?.payloads?.[0]);

beforeAll(() => installRuntime('warn', createLogger({ level: 'warn' })));

describe('replay of committed workflow histories', () => {
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

  it('covers a case opened by a start carrying its first alert, with a later alert signalled', async () => {
    const cases = histories.filter((h) => typeOf(h) === 'caseWorkflow');
    const inputs = (await Promise.all(
      cases.map((h) => decrypt(events(h)[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0])),
    )) as Array<{ firstAlert?: { alertId: string } }>;
    const opened = cases.filter((_, i) => inputs[i]?.firstAlert);
    expect(opened.length).toBeGreaterThanOrEqual(1);
    expect(opened.some((h) => events(h).some((e) => e.workflowExecutionSignaledEventAttributes))).toBe(true);
  });

  it('covers batch scoring and a policy backfill of more than one page', async () => {
    const scoring = histories.filter((h) => typeOf(h) === 'scoreSignalBatchWorkflow');
    expect(scoring.length).toBeGreaterThanOrEqual(2);
    // Scoring runs as a local activity: its marker is what a changed workflow would no longer match.
    for (const h of scoring) {
      expect(events(h).filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity')).toHaveLength(1);
      expect(events(h).at(-1)?.workflowExecutionCompletedEventAttributes).toBeTruthy();
    }
    // One of the batches raised an alert's severity.
    const results = (await Promise.all(scoring.map((h) => resultOf(h)))) as Array<{ alertsRaised: string[] }>;
    expect(results.some((r) => r.alertsRaised.length === 1)).toBe(true);

    const backfills = histories.filter((h) => typeOf(h) === 'policyBackfillWorkflow');
    expect(backfills.length).toBeGreaterThanOrEqual(1);
    const paged = backfills.filter((h) => scheduled(h).filter((n) => n === 'listPolicyCandidates').length >= 2);
    expect(paged.length, 'a backfill that read more than one page of candidates').toBeGreaterThanOrEqual(1);
    expect(scheduled(paged[0]!)).toEqual(['listPolicyCandidates', 'scoreSubjects', 'listPolicyCandidates', 'scoreSubjects']);
    expect(await resultOf(paged[0]!)).toMatchObject({ subjects: 502, alertsCreated: 1 });
  });

  it('covers notice delivery: started by a case on an approved send_notice step, one notice sent, one refused', async () => {
    const notices = histories.filter((h) => typeOf(h) === 'noticeWorkflow');
    expect(notices.length).toBeGreaterThanOrEqual(2);
    const outcomes = await Promise.all(notices.map((h) => resultOf(h)));
    expect(outcomes).toEqual(
      expect.arrayContaining([expect.objectContaining({ status: 'sent' }), expect.objectContaining({ status: 'failed' })]),
    );
    for (const h of notices) expect(scheduled(h)).toEqual(['queueNotice', 'sendNotice']);
    // The case workflow that started them, from the same recording.
    const parents = histories.filter(
      (h) =>
        typeOf(h) === 'caseWorkflow' &&
        events(h).some((e) => e.startChildWorkflowExecutionInitiatedEventAttributes?.workflowType?.name === 'noticeWorkflow'),
    );
    expect(parents.length).toBeGreaterThanOrEqual(1);
    const children = new Set(
      parents.flatMap((h) =>
        events(h)
          .map((e) => e.startChildWorkflowExecutionInitiatedEventAttributes?.workflowId)
          .filter((id): id is string => !!id),
      ),
    );
    expect(notices.filter((h) => children.has(h.workflowId))).toHaveLength(notices.length);
  });

  it('holds workflow data only as payloads encrypted by our codec (plain: search attributes and SDK marker bookkeeping)', () => {
    const plain = histories.flatMap((h) =>
      payloadsOf(h.history)
        .filter(({ payload }) => encodingOf(payload) !== ENCODING)
        .map(({ at }) => `${typeOf(h)} ${at.filter((k) => !/^\d+$/.test(k)).join('.')}`),
    );
    const allowed = (where: string) =>
      /\.searchAttributes\.indexedFields\.(WardenCaseId|WardenRegion|WardenStatus|TemporalChangeVersion)$/.test(where) ||
      /\.markerRecordedEventAttributes\.details\.(data|patch-data)\.payloads$/.test(where);
    expect([...new Set(plain.filter((w) => !allowed(w)))]).toEqual([]);
    const encrypted = histories.flatMap((h) => payloadsOf(h.history)).filter(({ payload }) => encodingOf(payload) === ENCODING);
    expect(encrypted.length).toBeGreaterThan(100);
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
