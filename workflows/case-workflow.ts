/**
 * One workflow per case (`case-<caseId>`): the lifecycle state machine. Alerts arrive by signal
 * (signalWithStart from the confirm command), commands by Update with synchronous validators,
 * step outcomes by signal from the step workflows. Every change is projected to Postgres by an
 * idempotent (local) activity before the Update answers, so the API's reads follow its writes.
 *
 * Steps are child workflows started with ParentClosePolicy ABANDON and report back by signal to
 * the case's workflow id, so they keep running across continue-as-new.
 */
import {
  allHandlersFinished,
  ApplicationFailure,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  ParentClosePolicy,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  startChild,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
  WorkflowIdReusePolicy,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { canRequestStep, canResolve, maxSeverity, reminderOffsets, STAGE_OF_STEP, stageAfterApproval } from '../domain/cases';
import { ErrorType } from '../domain/errors';
import type { StepKind } from '../domain/roles';
import {
  addNoteUpdate,
  assignCaseUpdate,
  attachAlertSignal,
  cancelStepSignal,
  getCaseQuery,
  requestStepUpdate,
  resolveCaseUpdate,
  revokeGrantUpdate,
  stepFinishedSignal,
  WardenCaseId,
  WardenRegion,
  WardenStatus,
  workflowIds,
  type AttachAlertInput,
  type CaseResult,
  type CaseState,
  type CaseSummary,
  type CaseWorkflowInput,
  type ResolveCaseInput,
  type StepFinished,
  type CaseSnapshot,
  type EventWrite,
  type NoteWrite,
} from './definitions';
import { archiveSelf, dbWrite, projection } from './presets';
import { noticeWorkflow } from './notice-workflow';
import { stepWorkflow } from './step-workflow';

const { projectCase } = proxyLocalActivities<Activities>(projection);
const { grantReveal, endRevealGrant } = proxyActivities<Activities>(dbWrite);

/** The actor recorded when a grant's durable timer ends it. */
const GRANT_TIMER_ACTOR = 'system:grant-timer';
const { archiveWorkflowHistory } = proxyActivities<Activities>({ ...archiveSelf, summary: 'archive this run for auditors' });

const STEP_LABEL: Record<StepKind, string> = {
  escalate_investigation: 'Escalation to investigation',
  escalate_hr_action: 'Escalation to HR action',
  resolve_confirmed_violation: 'Resolution as confirmed violation',
  reveal_identity: 'Identity reveal',
  send_notice: 'User notice',
};

function conflict(message: string, reason: string): ApplicationFailure {
  return ApplicationFailure.create({ type: ErrorType.Conflict, message, details: [{ reason }], nonRetryable: true });
}

function initialState(input: CaseWorkflowInput): CaseState {
  return {
    status: 'open',
    owner: null,
    severity: input.severity,
    alertIds: [],
    steps: {},
    violationApprovedStepId: null,
    resolution: null,
    version: 0,
    runs: 1,
  };
}

export async function caseWorkflow(input: CaseWorkflowInput): Promise<CaseResult> {
  const state: CaseState = input.carried ? { ...input.carried, runs: input.carried.runs + 1 } : initialState(input);
  const { caseId } = input;
  const now = () => new Date().toISOString();

  const snapshot = (): CaseSnapshot => ({
    status: state.status,
    owner: state.owner,
    severity: state.severity,
    alertCount: state.alertIds.length,
    resolution: state.resolution,
    version: state.version,
  });
  const summary = (): CaseSummary => ({
    caseId,
    status: state.status,
    owner: state.owner,
    severity: state.severity,
    alertIds: [...state.alertIds],
    resolution: state.resolution,
    pendingSteps: Object.entries(state.steps)
      .filter(([, s]) => s.status === 'pending')
      .map(([id]) => id),
    version: state.version,
  });
  const pendingKinds = () =>
    Object.values(state.steps)
      .filter((s) => s.status === 'pending')
      .map((s) => s.kind);
  const note = (author: string, kind: NoteWrite['kind'], body: string): NoteWrite => ({
    id: uuid4(),
    author,
    kind,
    body,
    at: now(),
  });
  const event = (type: string, actor: string, details: Record<string, unknown>): EventWrite => ({
    id: uuid4(),
    type,
    actor,
    details,
    at: now(),
  });
  /** Bump the version and write the case row with this change's notes and events. */
  const project = async (extra: {
    notes?: NoteWrite[];
    events?: EventWrite[];
    step?: Parameters<typeof projectCase>[0]['step'];
    resolveAlerts?: boolean;
  }) => {
    state.version++;
    await projectCase({ caseId, snapshot: snapshot(), ...extra });
  };
  const setStatusAttribute = () => upsertSearchAttributes([{ key: WardenStatus, value: state.status }]);

  setHandler(getCaseQuery, summary);

  const attach = async (a: AttachAlertInput) => {
    // Idempotent: a repeated confirm (or signalWithStart retry) of the same alert changes nothing.
    if (state.alertIds.includes(a.alertId)) return;
    // A closed case: the closing transaction already resolved every alert attached in Postgres.
    if (state.status === 'closed') return;
    state.alertIds.push(a.alertId);
    state.severity = maxSeverity(state.severity, a.severity) ?? a.severity;
    state.version++;
    await projectCase({
      caseId,
      snapshot: snapshot(),
      notes: a.comment ? [{ id: a.noteId, author: a.actor.sub, kind: 'comment', body: a.comment, at: a.at }] : [],
      events: [
        {
          id: a.noteId,
          type: 'alert_attached',
          actor: a.actor.sub,
          details: { alertId: a.alertId, severity: a.severity },
          at: a.at,
        },
      ],
    });
  };
  setHandler(attachAlertSignal, attach);

  setHandler(
    assignCaseUpdate,
    async ({ owner, actor }) => {
      const previous = state.owner;
      state.owner = owner;
      await project({
        notes: [note(actor.sub, 'system', `Owner set to ${owner}${previous ? ` (was ${previous})` : ''}.`)],
        events: [event('owner_assigned', actor.sub, { owner, previous })],
      });
      return summary();
    },
    {
      validator: (_command) => {
        if (state.status === 'closed') throw conflict('The case is closed', 'case_closed');
      },
    },
  );

  setHandler(
    addNoteUpdate,
    async ({ noteId, body, actor }) => {
      await project({
        notes: [{ id: noteId, author: actor.sub, kind: 'comment', body, at: now() }],
        events: [event('note_added', actor.sub, { noteId })],
      });
      return { noteId };
    },
    {
      validator: (_command) => {
        if (state.status === 'closed') throw conflict('The case is closed', 'case_closed');
      },
    },
  );

  /** Step workflows being started: a close cancels them once they have started. */
  const stepStarts = new Map<string, Promise<unknown>>();
  /** Steps the close has signalled (the others it cancelled are signalled once their start completes). */
  const cancelSignalled = new Set<string>();
  let closedBy: ResolveCaseInput['actor'] | undefined;

  setHandler(
    requestStepUpdate,
    async (r) => {
      const workflowId = workflowIds.step(caseId, r.stepId);
      const dueAt = new Date(Date.parse(r.requestedAt) + r.slaMs).toISOString();
      const existing = state.steps[r.stepId];
      if (!existing) {
        state.steps[r.stepId] = {
          kind: r.kind,
          status: 'pending',
          dueAt,
          workflowId,
          requestedBy: r.actor.sub,
          ...(r.kind === 'reveal_identity' && r.grantMs ? { grantMs: r.grantMs } : {}),
        };
        await project({
          step: {
            id: r.stepId,
            kind: r.kind,
            region: input.region,
            requestedBy: r.actor.sub,
            reason: r.reason,
            templateId: r.templateId,
            rule: r.rule,
            slaMs: r.slaMs,
            requestedAt: r.requestedAt,
            dueAt,
            remindAt: reminderOffsets(r.slaMs, r.rule.remindAtPercent).map((o) =>
              new Date(Date.parse(r.requestedAt) + o).toISOString(),
            ),
            workflowId,
          },
          notes: [note(r.actor.sub, 'system', `${STEP_LABEL[r.kind]} requested: ${r.reason}`)],
          events: [event('step_requested', r.actor.sub, { stepId: r.stepId, kind: r.kind })],
        });
        const started = startChild(stepWorkflow, {
          workflowId,
          args: [
            {
              caseId,
              stepId: r.stepId,
              kind: r.kind,
              region: input.region,
              requestedBy: r.actor,
              requestedAt: r.requestedAt,
              rule: r.rule,
              slaMs: r.slaMs,
            },
          ],
          parentClosePolicy: ParentClosePolicy.ABANDON,
          workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
          typedSearchAttributes: [
            { key: WardenCaseId, value: caseId },
            { key: WardenRegion, value: input.region },
            { key: WardenStatus, value: 'pending' },
          ],
        });
        stepStarts.set(r.stepId, started);
        const child = await started;
        // Closed while this request was being written: the close could not signal a step not yet started.
        if (state.steps[r.stepId]!.status === 'cancelled' && !cancelSignalled.has(r.stepId) && closedBy) {
          cancelSignalled.add(r.stepId);
          await child.signal(cancelStepSignal, { reason: 'case_closed', actor: closedBy });
        }
      }
      const step = state.steps[r.stepId]!;
      // A retry answers the step it requested: its kind (the API refuses a key reused for another
      // kind) and its deadline (stored since; a step from before has none and answers the retry's).
      return { stepId: r.stepId, kind: step.kind, status: step.status, requirements: r.rule.require, dueAt: step.dueAt ?? dueAt };
    },
    {
      validator: (r) => {
        const existing = state.steps[r.stepId];
        // The same key for another kind of step (seen here when the first request is from an earlier run).
        if (existing && existing.kind !== r.kind)
          throw conflict(`This Idempotency-Key already requested a ${existing.kind} step`, 'idempotency_key_reused');
        if (existing) return; // the same request again: answered idempotently
        const ok = canRequestStep(
          { status: state.status, pendingKinds: pendingKinds(), violationApproved: state.violationApprovedStepId !== null },
          r.kind,
        );
        if (!ok.ok) throw conflict(ok.message, ok.reason);
      },
    },
  );

  setHandler(stepFinishedSignal, async (f: StepFinished) => {
    const step = state.steps[f.stepId];
    if (!step || step.status !== 'pending') return;
    step.status = f.status;
    const label = STEP_LABEL[f.kind];
    const notes: NoteWrite[] = [];
    const events: EventWrite[] = [event(`step_${f.status}`, 'system', { stepId: f.stepId, kind: f.kind, reason: f.reason })];
    if (f.status === 'approved') {
      const before = state.status;
      const after = stageAfterApproval(before, f.kind);
      if (f.kind === 'resolve_confirmed_violation') state.violationApprovedStepId = f.stepId;
      if (after !== before) {
        state.status = after;
        events.push(event('stage_changed', 'system', { from: before, to: after, stepId: f.stepId }));
        notes.push(
          note('system', 'system', `${label} approved by ${f.decidedBy.join(', ')}; the case moved from ${before} to ${after}.`),
        );
      } else {
        const stays = STAGE_OF_STEP[f.kind] ? ` The case stays ${before}: it is already past that stage.` : '';
        notes.push(note('system', 'system', `${label} approved by ${f.decidedBy.join(', ')}.${stays}`));
      }
    } else if (f.status === 'rejected') {
      notes.push(note('system', 'system', `${label} rejected by ${f.decidedBy.join(', ')}; the case stays ${state.status}.`));
    } else if (f.status === 'expired') {
      notes.push(
        note(
          'system',
          'system',
          `${label} expired: its approval SLA passed without the required approvals; the case stays ${state.status}.`,
        ),
      );
    } else {
      notes.push(note('system', 'system', `${label} cancelled (${f.reason}).`));
    }
    await project({ notes, events });
    setStatusAttribute();
    if (f.status === 'approved' && f.kind === 'reveal_identity' && step.requestedBy && step.grantMs) {
      await grantIdentity(f.stepId, step.requestedBy, step.grantMs, f.decidedBy);
    }
    if (f.status === 'approved' && f.kind === 'send_notice') {
      // Delivery runs as its own child (ids only; the address is read from the vault inside the
      // sending activity), abandoned on close, so SMTP backoff never holds up the case.
      const noticeId = uuid4();
      await startChild(noticeWorkflow, {
        workflowId: workflowIds.notice(caseId, noticeId),
        args: [{ noticeId, caseId, stepId: f.stepId }],
        parentClosePolicy: ParentClosePolicy.ABANDON,
        workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
        typedSearchAttributes: [
          { key: WardenCaseId, value: caseId },
          { key: WardenRegion, value: input.region },
        ],
      });
    }
  });

  // ---- Identity reveal grants: created on approval, ended by a durable timer (main loop below),
  // an approver's revocation or the case closing. Only ids and the grantee's subject claim here.
  state.grants ??= {};
  const grants = state.grants;
  /** Bumped whenever a grant is added or ended, so the main loop recomputes its next expiry. */
  let grantsChanged = 0;
  const activeGrantIds = () => Object.keys(grants).filter((id) => grants[id]!.status === 'active');

  /**
   * A grant's row being written: ending the grant waits for it, else a close (or revocation) that
   * interleaves with the write would update no row and leave the row it then writes active.
   */
  const grantWrites = new Map<string, Promise<unknown>>();

  const grantIdentity = async (stepId: string, grantee: string, grantMs: number, approvedBy: string[]) => {
    if (grants[stepId]) return;
    const grantedAt = new Date();
    const expiresAt = new Date(grantedAt.getTime() + grantMs).toISOString();
    grants[stepId] = { grantee, grantedAt: grantedAt.toISOString(), expiresAt, status: 'active' };
    grantsChanged++;
    const write = grantReveal({
      grantId: stepId,
      caseId,
      stepId,
      grantee,
      region: input.region,
      grantedAt: grantedAt.toISOString(),
      expiresAt,
      approvedBy,
    });
    grantWrites.set(stepId, write);
    await write;
    await project({
      notes: [note('system', 'system', `Identity reveal granted to ${grantee} until ${expiresAt}.`)],
      events: [event('grant_created', 'system', { grantId: stepId, grantee, expiresAt })],
    });
  };

  const endGrants = async (
    ids: string[],
    reason: 'expired' | 'revoked' | 'case_closed',
    by: string,
    request?: { roles: string[]; requestId?: string },
  ) => {
    if (ids.length === 0) return;
    const at = now();
    for (const id of ids) {
      grants[id]!.status = reason;
      await grantWrites.get(id);
      await endRevealGrant({ grantId: id, caseId, region: input.region, reason, by, at, ...request });
    }
    grantsChanged++;
    const what = reason === 'expired' ? 'expired' : reason === 'revoked' ? `revoked by ${by}` : 'ended: the case closed';
    await project({
      notes: ids.map((id) => note('system', 'system', `Identity reveal grant of ${grants[id]!.grantee} ${what}.`)),
      events: ids.map((id) => event(`grant_${reason}`, by, { grantId: id })),
    });
  };

  /** Milliseconds until the next active grant expires, or null when none is active. */
  const nextGrantExpiryMs = (): number | null => {
    const times = activeGrantIds().map((id) => Date.parse(grants[id]!.expiresAt));
    return times.length ? Math.max(0, Math.min(...times) - Date.now()) : null;
  };
  const expireDueGrants = () =>
    endGrants(
      activeGrantIds().filter((id) => Date.parse(grants[id]!.expiresAt) <= Date.now()),
      'expired',
      GRANT_TIMER_ACTOR,
    );

  setHandler(
    revokeGrantUpdate,
    async ({ grantId, actor }) => {
      await endGrants([grantId], 'revoked', actor.sub, { roles: actor.roles, requestId: actor.requestId });
      return { grantId, status: 'revoked' as const };
    },
    {
      validator: ({ grantId }) => {
        const g = grants[grantId];
        if (!g)
          throw ApplicationFailure.create({
            type: ErrorType.NotFound,
            message: 'No such grant on this case',
            nonRetryable: true,
          });
        if (g.status !== 'active') throw conflict(`The grant has already ended (${g.status})`, 'grant_ended');
      },
    },
  );

  setHandler(
    resolveCaseUpdate,
    async ({ outcome, actionTaken, actor }) => {
      const at = now();
      state.status = 'closed';
      closedBy = actor;
      state.resolution = { outcome, actionTaken, by: actor.sub, at };
      const pending = Object.entries(state.steps).filter(([, s]) => s.status === 'pending');
      for (const [, s] of pending) s.status = 'cancelled';
      await endGrants(activeGrantIds(), 'case_closed', actor.sub);
      await project({
        resolveAlerts: true,
        notes: [note(actor.sub, 'system', `Case resolved as ${outcome}. Action taken: ${actionTaken}`)],
        events: [event('case_closed', actor.sub, { outcome, cancelledSteps: pending.map(([id]) => id) })],
      });
      setStatusAttribute();
      for (const [id, s] of pending) {
        try {
          // A step requested just before the close may still be starting: signal it once started.
          await stepStarts.get(id);
          await getExternalWorkflowHandle(s.workflowId).signal(cancelStepSignal, { reason: 'case_closed', actor });
          cancelSignalled.add(id);
        } catch {
          // The step finished meanwhile: nothing to cancel.
        }
      }
      return summary();
    },
    {
      validator: ({ outcome }) => {
        const ok = canResolve({ status: state.status, violationApproved: state.violationApprovedStepId !== null }, outcome);
        if (!ok.ok) throw conflict(ok.message, ok.reason);
      },
    },
  );

  /**
   * Hand this run (and its step and notice children) to the history archiver, which stores it in
   * Postgres once it has closed: Temporal deletes closed histories after the namespace retention,
   * auditors still read them (GET /v1/cases/{id}/history). The patch keeps older histories replaying.
   */
  const archiveHistory = async () => {
    if (patched('archive-history')) await archiveWorkflowHistory({ workflowId: workflowInfo().workflowId });
  };

  const continueAsNewDue = () => {
    const info = workflowInfo();
    return (
      info.continueAsNewSuggested ||
      (input.continueAsNewAfterEvents !== undefined && info.historyLength >= input.continueAsNewAfterEvents)
    );
  };

  // The confirm that opened the case (a start, not a signalWithStart): attached like the signal.
  if (input.firstAlert && !input.carried) await attach(input.firstAlert);

  for (;;) {
    const seen = grantsChanged;
    const wake = () => state.status === 'closed' || continueAsNewDue() || grantsChanged !== seen;
    // The durable grant timer: wake at the next expiry (if any grant is active).
    const untilExpiry = nextGrantExpiryMs();
    if (untilExpiry === null) await condition(wake);
    else await condition(wake, Math.max(1, untilExpiry));
    await expireDueGrants();
    if (state.status !== 'closed' && !continueAsNewDue()) continue;
    // Let in-flight Updates and signals finish (they answer callers and write projections).
    await condition(allHandlersFinished);
    if (state.status === 'closed') break;
    await archiveHistory();
    await condition(allHandlersFinished);
    const { firstAlert: _attached, ...next } = input; // attached: state.alertIds has it
    await continueAsNew<typeof caseWorkflow>({ ...next, carried: state });
  }
  await archiveHistory();
  await condition(allHandlersFinished);
  return { caseId, status: state.status, resolution: state.resolution, alertIds: state.alertIds };
}
