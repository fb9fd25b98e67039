/**
 * Workflow histories for auditors: collect a workflow's whole tree — every run of its
 * continue-as-new chain and every child workflow (each with its own chain) — from the archive
 * (Postgres) or, while still retained, from Temporal; then render events readably, decoding
 * payloads and failures with the data converter (the payload codec decrypts).
 *
 * Used by the API (reading) and by the archive activity (collecting closed runs). Never imported
 * by workflow code.
 */
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter, type LoadedDataConverter, type Payload } from '@temporalio/common';
import {
  decodeArrayFromPayloads,
  decodeOptionalFailureToOptionalError,
  decodeUserMetadata,
} from '@temporalio/common/lib/internal-non-workflow/codec-helpers';
import { optionalTsToMs } from '@temporalio/common/lib/time';
import proto from '@temporalio/proto';

const { temporal } = proto;
export type History = proto.temporal.api.history.v1.IHistory;
type HistoryEvent = proto.temporal.api.history.v1.IHistoryEvent;
// Event attributes are read loosely: each event type has its own attribute message.
type Attrs = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** How a run ended, from its closing event (`running` when it has none yet). */
export type RunStatus = 'running' | 'completed' | 'failed' | 'canceled' | 'terminated' | 'continued_as_new' | 'timed_out';

const CLOSING: Record<string, RunStatus> = {
  workflowExecutionCompletedEventAttributes: 'completed',
  workflowExecutionFailedEventAttributes: 'failed',
  workflowExecutionCanceledEventAttributes: 'canceled',
  workflowExecutionTerminatedEventAttributes: 'terminated',
  workflowExecutionContinuedAsNewEventAttributes: 'continued_as_new',
  workflowExecutionTimedOutEventAttributes: 'timed_out',
};

/** The facts of one run that joining and archiving need, read from its events without decoding. */
export interface RunFacts {
  workflowId: string;
  runId: string;
  workflowType: string;
  status: RunStatus;
  startedAt: Date;
  closedAt: Date | null;
  firstExecutionRunId: string;
  continuedFromRunId: string | null;
  newExecutionRunId: string | null;
  parentWorkflowId: string | null;
  parentRunId: string | null;
  eventCount: number;
  /** Children started by this run, in start order. */
  children: Array<{ workflowId: string; runId: string }>;
}

const attrsOf = (e: HistoryEvent): { key: string; attrs: Attrs } => {
  const key = (e as { attributes?: string }).attributes ?? '';
  return { key, attrs: ((e as Attrs)[key] ?? {}) as Attrs };
};

const eventMs = (e: HistoryEvent) => optionalTsToMs(e.eventTime) ?? 0;

export function runFacts(workflowId: string, runId: string, history: History): RunFacts {
  const events = history.events ?? [];
  const first = events[0];
  const started = (first?.workflowExecutionStartedEventAttributes ?? {}) as Attrs;
  const last = events[events.length - 1];
  const closing = last ? attrsOf(last) : { key: '', attrs: {} };
  const status = CLOSING[closing.key] ?? 'running';
  const children: RunFacts['children'] = [];
  for (const e of events) {
    const c = e.childWorkflowExecutionStartedEventAttributes;
    if (c?.workflowExecution?.workflowId && c.workflowExecution.runId) {
      children.push({ workflowId: c.workflowExecution.workflowId, runId: c.workflowExecution.runId });
    }
  }
  return {
    workflowId,
    runId,
    workflowType: started.workflowType?.name ?? 'unknown',
    status,
    startedAt: new Date(first ? eventMs(first) : 0),
    closedAt: status === 'running' || !last ? null : new Date(eventMs(last)),
    firstExecutionRunId: started.firstExecutionRunId || runId,
    continuedFromRunId: started.continuedExecutionRunId || null,
    newExecutionRunId: (closing.attrs.newExecutionRunId as string | undefined) || null,
    parentWorkflowId: started.parentWorkflowExecution?.workflowId || null,
    parentRunId: started.parentWorkflowExecution?.runId || null,
    eventCount: events.length,
    children,
  };
}

/** A run as an auditor's view uses it: its history and where it came from. */
export interface CollectedRun {
  facts: RunFacts;
  history: History;
  source: 'archive' | 'temporal';
  /** 1-based position of the run in its workflow's continue-as-new chain. */
  run: number;
}

export interface MissingRun {
  workflowId: string;
  runId: string | null;
  reason: string;
}

export interface HistorySource {
  /** An archived run, if any. */
  archived(workflowId: string, runId: string): Promise<History | null>;
  /** The final (not continued-as-new) archived run of a workflow, if the archive has it. */
  archivedFinalRunId?(workflowId: string): Promise<string | null>;
  client?: Client;
}

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; code?: number; message?: string };
  return e?.name === 'WorkflowNotFoundError' || e?.code === 5 || /not found/i.test(e?.message ?? '');
}

/**
 * Collect a workflow tree: the root's continue-as-new chain (oldest run first) and, recursively,
 * every child started by any of those runs with the child's own chain. Each run comes from the
 * archive when archived, else from Temporal. Runs neither has (deleted after retention and never
 * archived) are reported in `missing`, so a gap is visible rather than silent.
 */
export async function collectWorkflowTree(
  source: HistorySource,
  rootWorkflowId: string,
): Promise<{ runs: CollectedRun[]; missing: MissingRun[] } | null> {
  const runs: CollectedRun[] = [];
  const missing: MissingRun[] = [];
  const seen = new Set<string>();

  const getRun = async (
    workflowId: string,
    runId: string,
  ): Promise<{ history: History; source: 'archive' | 'temporal' } | null> => {
    const archived = await source.archived(workflowId, runId);
    if (archived) return { history: archived, source: 'archive' };
    if (!source.client) return null;
    try {
      return { history: await source.client.workflow.getHandle(workflowId, runId).fetchHistory(), source: 'temporal' };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  };

  /** The latest run id of a workflow: the archive's final run, else Temporal's current run. */
  const latestRunId = async (workflowId: string): Promise<string | null> => {
    const final = await source.archivedFinalRunId?.(workflowId);
    if (final) return final;
    if (!source.client) return null;
    try {
      return (await source.client.workflow.getHandle(workflowId).describe()).runId;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  };

  /** A chain known by one of its runs: walk back to its first run, then forward to its last. */
  const chain = async (workflowId: string, knownRunId: string): Promise<CollectedRun[] | null> => {
    const known = await getRun(workflowId, knownRunId);
    if (!known) {
      missing.push({ workflowId, runId: knownRunId, reason: 'not archived and no longer retained by Temporal' });
      return null;
    }
    const list: Array<Omit<CollectedRun, 'run'>> = [{ facts: runFacts(workflowId, knownRunId, known.history), ...known }];
    // Backwards through continued-from links.
    for (let prev = list[0]!.facts.continuedFromRunId; prev;) {
      const r = await getRun(workflowId, prev);
      if (!r) {
        missing.push({ workflowId, runId: prev, reason: 'earlier run not archived and no longer retained by Temporal' });
        break;
      }
      const facts = runFacts(workflowId, prev, r.history);
      list.unshift({ facts, ...r });
      prev = facts.continuedFromRunId;
    }
    // Forwards through continued-as-new links.
    for (let next = list[list.length - 1]!.facts.newExecutionRunId; next;) {
      const r = await getRun(workflowId, next);
      if (!r) {
        missing.push({ workflowId, runId: next, reason: 'later run not archived and no longer retained by Temporal' });
        break;
      }
      const facts = runFacts(workflowId, next, r.history);
      list.push({ facts, ...r });
      next = facts.newExecutionRunId;
    }
    const firstRunIndex = missing.some((m) => m.workflowId === workflowId && m.reason.startsWith('earlier')) ? null : 1;
    return list.map((r, i) => ({ ...r, run: firstRunIndex === null ? 0 : i + 1 }));
  };

  const visit = async (workflowId: string, knownRunId: string) => {
    const key = `${workflowId}/${knownRunId}`;
    if (seen.has(key)) return;
    const list = await chain(workflowId, knownRunId);
    if (!list) return;
    for (const r of list) seen.add(`${workflowId}/${r.facts.runId}`);
    runs.push(...list);
    for (const r of list) for (const c of r.facts.children) await visit(c.workflowId, c.runId);
  };

  const latest = await latestRunId(rootWorkflowId);
  if (!latest) return null;
  await visit(rootWorkflowId, latest);
  return { runs, missing };
}

// ---------------------------------------------------------------------------------------------
// Readable events

/** Who caused an event, when the workflow's typed inputs say it (an `Actor`). */
export interface EventActor {
  sub: string;
  roles: string[];
  stakeholder?: string;
}

export interface ReadableEvent {
  /** 1-based position in the merged, time-ordered list (the cursor key). */
  position: number;
  at: string;
  workflowId: string;
  runId: string;
  run: number;
  workflowType: string;
  eventId: number;
  type: string;
  summary: string;
  /** The person or process behind the event, read from the typed actor in its input. */
  actor: EventActor | null;
  /** The Temporal client or worker identity that sent the command, when recorded. */
  identity: string | null;
  details: Record<string, unknown>;
}

/** Events that only record Temporal's own bookkeeping; `include=all` shows them. */
const BOOKKEEPING = new Set(['WorkflowTaskScheduled', 'WorkflowTaskStarted', 'WorkflowTaskCompleted', 'ActivityTaskStarted']);

export interface IndexedEvent {
  run: CollectedRun;
  event: HistoryEvent;
  type: string;
  ms: number;
}

/**
 * Every event of the tree, merged by time (ties: the tree order, then event id), optionally
 * without Temporal's bookkeeping events. Cheap: nothing is decoded here.
 */
export function mergeEvents(runs: CollectedRun[], opts: { includeBookkeeping?: boolean } = {}): IndexedEvent[] {
  const all: Array<IndexedEvent & { order: number }> = [];
  runs.forEach((run, order) => {
    for (const event of run.history.events ?? []) {
      const type = typeName(attrsOf(event).key);
      if (!opts.includeBookkeeping && BOOKKEEPING.has(type)) continue;
      all.push({ run, event, type, ms: eventMs(event), order });
    }
  });
  all.sort((a, b) => a.ms - b.ms || a.order - b.order || Number(a.event.eventId) - Number(b.event.eventId));
  return all;
}

function typeName(attributesKey: string): string {
  const base = attributesKey.replace(/EventAttributes$/, '');
  return base.charAt(0).toUpperCase() + base.slice(1);
}

/** A typed actor found in a decoded input: `actor`, `requestedBy`, `openedBy`, `decidedBy` or `by`. */
export function findActor(value: unknown): EventActor | null {
  if (!value || typeof value !== 'object') return null;
  const v = value as Record<string, unknown>;
  for (const key of ['actor', 'requestedBy', 'openedBy', 'decidedBy', 'by']) {
    const a = v[key] as Record<string, unknown> | undefined;
    if (a && typeof a === 'object' && typeof a.sub === 'string') {
      return {
        sub: a.sub,
        roles: Array.isArray(a.roles) ? (a.roles as string[]) : [],
        ...(typeof a.stakeholder === 'string' ? { stakeholder: a.stakeholder } : {}),
      };
    }
  }
  return null;
}

const durationMs = (d: { seconds?: unknown; nanos?: number | null } | null | undefined) =>
  d ? Number(d.seconds ?? 0) * 1000 + Math.round((d.nanos ?? 0) / 1e6) : null;

function humanDuration(ms: number | null): string {
  if (ms === null) return '?';
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  if (ms % 1000 === 0) return `${ms / 1000} s`;
  return `${ms} ms`;
}

/**
 * Render events readably: decode inputs, results, failures and memos with the data converter;
 * name activities, timers, children, signals and Updates; say who acted. Completion events are
 * joined to their scheduling event so they carry its name.
 */
export async function renderEvents(
  slice: IndexedEvent[],
  all: IndexedEvent[],
  converter: LoadedDataConverter,
  positionOffset: number,
): Promise<ReadableEvent[]> {
  // Names by (workflow, run, scheduling event id), for completion events.
  const byId = new Map<string, HistoryEvent>();
  for (const e of all) byId.set(`${e.run.facts.workflowId}/${e.run.facts.runId}/${Number(e.event.eventId)}`, e.event);
  const scheduling = (e: IndexedEvent, id: unknown) => byId.get(`${e.run.facts.workflowId}/${e.run.facts.runId}/${Number(id)}`);

  const decodeArgs = async (payloads: { payloads?: Payload[] | null } | null | undefined) =>
    payloads?.payloads?.length ? decodeArrayFromPayloads(converter, payloads.payloads) : [];
  const decodeOne = async (payloads: { payloads?: Payload[] | null } | null | undefined) => (await decodeArgs(payloads))[0];
  const failure = async (f: unknown) => {
    if (!f) return null;
    const err = (await decodeOptionalFailureToOptionalError(converter, f as never)) as (Error & { type?: string }) | undefined;
    return err ? { message: err.message, ...(err.type ? { type: err.type } : {}) } : null;
  };

  const out: ReadableEvent[] = [];
  for (const [i, e] of slice.entries()) {
    const { attrs } = attrsOf(e.event);
    const facts = e.run.facts;
    let actor: EventActor | null = null;
    const identity: string | null = (attrs.identity as string) || (attrs.acceptedRequest?.meta?.identity as string) || null;
    let summary: string = e.type;
    const details: Record<string, unknown> = {};
    const note = e.event.userMetadata ? (await decodeUserMetadata(converter, e.event.userMetadata)).staticSummary : undefined;
    if (note) details.note = note;

    switch (e.type) {
      case 'WorkflowExecutionStarted': {
        const args = await decodeArgs(attrs.input);
        actor = findActor(args[0]);
        details.input = args;
        if (facts.continuedFromRunId) details.continuedFromRunId = facts.continuedFromRunId;
        if (facts.parentWorkflowId) details.parent = { workflowId: facts.parentWorkflowId, runId: facts.parentRunId };
        const memo = attrs.memo?.fields
          ? Object.fromEntries(
              await Promise.all(
                Object.entries(attrs.memo.fields as Record<string, Payload>).map(async ([k, p]) => [
                  k,
                  (await decodeArrayFromPayloads(converter, [p]))[0],
                ]),
              ),
            )
          : null;
        if (memo && Object.keys(memo).length) details.memo = memo;
        const sa = searchAttributes(attrs.searchAttributes);
        if (sa) details.searchAttributes = sa;
        summary = facts.continuedFromRunId
          ? `${facts.workflowType} run ${e.run.run || '?'} started (continued as new from the previous run)`
          : `${facts.workflowType} started${actor ? ` by ${actor.sub}` : ''}${facts.parentWorkflowId ? ` as a child of ${facts.parentWorkflowId}` : ''}`;
        break;
      }
      case 'WorkflowExecutionCompleted':
        details.result = await decodeOne(attrs.result);
        summary = `${facts.workflowType} completed`;
        break;
      case 'WorkflowExecutionFailed':
        details.failure = await failure(attrs.failure);
        summary = `${facts.workflowType} failed: ${(details.failure as { message?: string } | null)?.message ?? 'unknown'}`;
        break;
      case 'WorkflowExecutionContinuedAsNew':
        details.newExecutionRunId = attrs.newExecutionRunId;
        summary = `${facts.workflowType} continued as new (next run ${attrs.newExecutionRunId})`;
        break;
      case 'WorkflowExecutionTerminated':
        details.reason = attrs.reason;
        summary = `${facts.workflowType} terminated${identity ? ` by ${identity}` : ''}${attrs.reason ? `: ${attrs.reason}` : ''}`;
        break;
      case 'WorkflowExecutionCanceled':
        summary = `${facts.workflowType} canceled`;
        break;
      case 'WorkflowExecutionTimedOut':
        summary = `${facts.workflowType} timed out`;
        break;
      case 'ActivityTaskScheduled':
        details.activity = attrs.activityType?.name;
        details.input = await decodeArgs(attrs.input);
        actor = findActor((details.input as unknown[])[0]);
        summary = `activity ${attrs.activityType?.name} scheduled`;
        break;
      case 'ActivityTaskStarted':
        details.attempt = attrs.attempt;
        summary = `activity ${scheduling(e, attrs.scheduledEventId)?.activityTaskScheduledEventAttributes?.activityType?.name ?? '?'} started (attempt ${attrs.attempt})`;
        break;
      case 'ActivityTaskCompleted': {
        const name = scheduling(e, attrs.scheduledEventId)?.activityTaskScheduledEventAttributes?.activityType?.name ?? '?';
        details.activity = name;
        details.result = await decodeOne(attrs.result);
        summary = `activity ${name} completed`;
        break;
      }
      case 'ActivityTaskFailed':
      case 'ActivityTaskTimedOut': {
        const name = scheduling(e, attrs.scheduledEventId)?.activityTaskScheduledEventAttributes?.activityType?.name ?? '?';
        details.activity = name;
        details.failure = await failure(attrs.failure);
        summary = `activity ${name} ${e.type === 'ActivityTaskFailed' ? 'failed' : 'timed out'}: ${(details.failure as { message?: string } | null)?.message ?? ''}`;
        break;
      }
      case 'TimerStarted': {
        const ms = durationMs(attrs.startToFireTimeout);
        details.timerId = attrs.timerId;
        details.durationMs = ms;
        details.firesAt = new Date(e.ms + (ms ?? 0)).toISOString();
        summary = `timer ${attrs.timerId} started for ${humanDuration(ms)}${note ? ` (${note})` : ''}`;
        break;
      }
      case 'TimerFired': {
        const startedNote = scheduling(e, attrs.startedEventId)?.userMetadata;
        const label = startedNote ? (await decodeUserMetadata(converter, startedNote)).staticSummary : undefined;
        details.timerId = attrs.timerId;
        summary = `timer ${attrs.timerId} fired${label ? ` (${label})` : ''}`;
        break;
      }
      case 'TimerCanceled':
        details.timerId = attrs.timerId;
        summary = `timer ${attrs.timerId} canceled`;
        break;
      case 'MarkerRecorded': {
        const d = (attrs.details ?? {}) as Record<string, { payloads?: Payload[] }>;
        if (attrs.markerName === 'core_local_activity') {
          const data = (await decodeOne(d.data)) as { activity_type?: string; attempt?: number } | undefined;
          details.activity = data?.activity_type;
          details.attempt = data?.attempt;
          details.result = d.result ? await decodeOne(d.result) : undefined;
          if (attrs.failure) details.failure = await failure(attrs.failure);
          summary = `local activity ${data?.activity_type ?? '?'} ${attrs.failure ? 'failed' : 'completed'}`;
        } else {
          details.marker = attrs.markerName;
          summary = `marker ${attrs.markerName}`;
        }
        break;
      }
      case 'WorkflowExecutionSignaled': {
        const args = await decodeArgs(attrs.input);
        actor = findActor(args[0]);
        details.signal = attrs.signalName;
        details.input = args;
        summary = `signal ${attrs.signalName} received${actor ? ` from ${actor.sub}` : ''}`;
        break;
      }
      case 'SignalExternalWorkflowExecutionInitiated': {
        const args = await decodeArgs(attrs.input);
        actor = findActor(args[0]);
        details.signal = attrs.signalName;
        details.target = attrs.workflowExecution?.workflowId;
        details.input = args;
        summary = `signal ${attrs.signalName} sent to ${attrs.workflowExecution?.workflowId}`;
        break;
      }
      case 'ExternalWorkflowExecutionSignaled':
        details.target = attrs.workflowExecution?.workflowId;
        summary = `signal delivered to ${attrs.workflowExecution?.workflowId}`;
        break;
      case 'WorkflowExecutionUpdateAdmitted':
      case 'WorkflowExecutionUpdateAccepted': {
        const req = (attrs.acceptedRequest ?? attrs.request) as Attrs | undefined;
        const args = await decodeArgs(req?.input?.args);
        actor = findActor(args[0]);
        details.update = req?.input?.name;
        details.updateId = req?.meta?.updateId;
        details.input = args;
        summary = `${actor?.sub ?? identity ?? 'someone'} called ${req?.input?.name} (${e.type === 'WorkflowExecutionUpdateAccepted' ? 'accepted' : 'admitted'})`;
        break;
      }
      case 'WorkflowExecutionUpdateCompleted': {
        const accepted = scheduling(e, attrs.acceptedEventId)?.workflowExecutionUpdateAcceptedEventAttributes as
          Attrs | undefined;
        const name = accepted?.acceptedRequest?.input?.name ?? '?';
        details.update = name;
        details.updateId = attrs.meta?.updateId;
        if (attrs.outcome?.failure) {
          details.failure = await failure(attrs.outcome.failure);
          summary = `update ${name} failed: ${(details.failure as { message?: string } | null)?.message ?? ''}`;
        } else {
          details.result = await decodeOne(attrs.outcome?.success);
          summary = `update ${name} completed`;
        }
        break;
      }
      case 'StartChildWorkflowExecutionInitiated': {
        const args = await decodeArgs(attrs.input);
        actor = findActor(args[0]);
        details.child = { workflowId: attrs.workflowId, workflowType: attrs.workflowType?.name };
        details.input = args;
        summary = `child workflow ${attrs.workflowType?.name} ${attrs.workflowId} requested`;
        break;
      }
      case 'ChildWorkflowExecutionStarted':
        details.child = { workflowId: attrs.workflowExecution?.workflowId, runId: attrs.workflowExecution?.runId };
        summary = `child workflow ${attrs.workflowExecution?.workflowId} started`;
        break;
      case 'ChildWorkflowExecutionCompleted':
        details.child = { workflowId: attrs.workflowExecution?.workflowId, runId: attrs.workflowExecution?.runId };
        details.result = await decodeOne(attrs.result);
        summary = `child workflow ${attrs.workflowExecution?.workflowId} completed`;
        break;
      case 'ChildWorkflowExecutionFailed':
        details.child = { workflowId: attrs.workflowExecution?.workflowId, runId: attrs.workflowExecution?.runId };
        details.failure = await failure(attrs.failure);
        summary = `child workflow ${attrs.workflowExecution?.workflowId} failed`;
        break;
      case 'ChildWorkflowExecutionCanceled':
      case 'ChildWorkflowExecutionTerminated':
      case 'ChildWorkflowExecutionTimedOut':
        details.child = { workflowId: attrs.workflowExecution?.workflowId, runId: attrs.workflowExecution?.runId };
        summary = `child workflow ${attrs.workflowExecution?.workflowId} ${e.type.replace('ChildWorkflowExecution', '').toLowerCase()}`;
        break;
      case 'StartChildWorkflowExecutionFailed':
        details.child = { workflowId: attrs.workflowId };
        summary = `child workflow ${attrs.workflowId} could not start`;
        break;
      case 'UpsertWorkflowSearchAttributes': {
        const sa = searchAttributes(attrs.searchAttributes) ?? {};
        details.searchAttributes = sa;
        summary = `search attributes set: ${Object.entries(sa)
          .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('|') : String(v)}`)
          .join(', ')}`;
        break;
      }
      case 'WorkflowPropertiesModified':
        summary = 'memo updated';
        break;
      case 'RequestCancelExternalWorkflowExecutionInitiated':
        details.target = attrs.workflowExecution?.workflowId;
        summary = `cancellation requested for ${attrs.workflowExecution?.workflowId}`;
        break;
      case 'WorkflowExecutionCancelRequested':
        summary = `cancellation requested${identity ? ` by ${identity}` : ''}`;
        break;
      case 'WorkflowTaskFailed':
        details.failure = await failure(attrs.failure);
        summary = `workflow task failed: ${(details.failure as { message?: string } | null)?.message ?? attrs.cause}`;
        break;
      default:
        summary = e.type.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
    }
    out.push({
      position: positionOffset + i + 1,
      at: new Date(e.ms).toISOString(),
      workflowId: facts.workflowId,
      runId: facts.runId,
      run: e.run.run,
      workflowType: facts.workflowType,
      eventId: Number(e.event.eventId),
      type: e.type,
      summary,
      actor,
      identity,
      details,
    });
  }
  return out;
}

/** Search attributes are plain JSON payloads (never codec-encoded): ids and statuses only. */
function searchAttributes(sa: { indexedFields?: Record<string, Payload> } | null | undefined): Record<string, unknown> | null {
  if (!sa?.indexedFields) return null;
  const out: Record<string, unknown> = {};
  for (const [k, p] of Object.entries(sa.indexedFields)) {
    try {
      out[k] = defaultPayloadConverter.fromPayload(p);
    } catch {
      out[k] = '(undecodable)';
    }
  }
  return out;
}

/** Encode a history for storage (protobuf) and back. */
export function encodeHistory(history: History): Buffer {
  return Buffer.from(temporal.api.history.v1.History.encode(history as proto.temporal.api.history.v1.History).finish());
}

export function decodeHistory(bytes: Uint8Array): History {
  return temporal.api.history.v1.History.decode(bytes);
}
