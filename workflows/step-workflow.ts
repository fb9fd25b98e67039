/**
 * One workflow per approval step (`case-<caseId>-step-<stepId>`), a child of its case. It holds
 * the rule snapshotted at request time, takes decisions as Updates (the synchronous validator is
 * the authoritative eligibility check: region, stakeholder, language, restricted list, four eyes,
 * one decision per approver), counts k-of-n with veto, and runs the SLA: reminders at the rule's
 * points and, at the deadline, its expiry action. When it ends it signals its case.
 */
import {
  allHandlersFinished,
  ApplicationFailure,
  condition,
  getExternalWorkflowHandle,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import {
  checkApprover,
  escalateRequirements,
  reminderOffsets,
  tally,
  type DecisionRecord,
  type Requirement,
  type StepStatus,
} from '../domain/cases';
import { ErrorType } from '../domain/errors';
import {
  cancelStepSignal,
  decideStepUpdate,
  getStepQuery,
  stepFinishedSignal,
  WardenStatus,
  workflowIds,
  type StepView,
  type StepWorkflowInput,
  type StepState,
} from './definitions';
import { dbWrite, projection } from './presets';

const { projectStep } = proxyLocalActivities<Activities>(projection);
const { recordReminders, projectStep: projectStepDurably } = proxyActivities<Activities>(dbWrite);

export async function stepWorkflow(input: StepWorkflowInput): Promise<StepView> {
  const { rule } = input;
  const requestedAtMs = Date.parse(input.requestedAt);
  const state = {
    status: 'pending' as StepStatus,
    reason: null as string | null,
    requirements: rule.require.map((r) => ({ ...r })) as Requirement[],
    decisions: [] as DecisionRecord[],
    escalated: false,
    dueAtMs: requestedAtMs + input.slaMs,
    decidedAt: null as string | null,
    version: 1,
  };
  const now = () => new Date().toISOString();

  const view = (): StepView => {
    const t = tally(state.requirements, state.decisions);
    return {
      stepId: input.stepId,
      caseId: input.caseId,
      kind: input.kind,
      status: state.status,
      reason: state.reason,
      requirements: state.requirements.map((r) => ({ ...r })),
      progress: t.progress,
      outstanding: state.status === 'pending' ? t.outstanding : [],
      decisions: state.decisions.map((d) => ({ ...d })),
      requestedBy: input.requestedBy.sub,
      requestedAt: input.requestedAt,
      dueAt: new Date(state.dueAtMs).toISOString(),
      escalated: state.escalated,
      version: state.version,
    };
  };
  const projected = (): StepState => {
    const v = view();
    return {
      status: v.status,
      reason: v.reason,
      requirements: v.requirements,
      progress: v.progress,
      outstanding: v.outstanding,
      escalated: v.escalated,
      dueAt: v.dueAt,
      decidedAt: state.decidedAt,
      version: state.version,
    };
  };

  setHandler(getStepQuery, view);

  setHandler(
    decideStepUpdate,
    async ({ decision, comment, actor }) => {
      // State changes synchronously, before any await: a concurrent decision by the same approver,
      // validated after this one in the same task, already sees it (already_decided).
      const record: DecisionRecord = { approver: actor.sub, stakeholder: actor.stakeholder!, decision, comment, at: now() };
      state.decisions.push(record);
      const t = tally(state.requirements, state.decisions);
      if (t.status !== 'pending') {
        state.status = t.status;
        state.reason = t.status === 'approved' ? 'quorum_reached' : 'rejected_by_approver';
        state.decidedAt = record.at;
      }
      state.version++;
      const result = view();
      await projectStep({
        stepId: input.stepId,
        state: projected(),
        decision: { ...record, requestId: actor.requestId },
        audit: { actorRoles: actor.roles, caseId: input.caseId, region: input.region },
      });
      return result;
    },
    {
      validator: ({ actor }) => {
        if (state.status !== 'pending') {
          throw ApplicationFailure.create({
            type: ErrorType.Conflict,
            message: `The step is already ${state.status}`,
            details: [{ reason: 'step_closed', status: state.status }],
            nonRetryable: true,
          });
        }
        const e = checkApprover(actor, {
          rule,
          requirements: state.requirements,
          requestedBy: input.requestedBy.sub,
          decisions: state.decisions,
        });
        if (!e.ok) {
          throw ApplicationFailure.create({
            type: ErrorType.Forbidden,
            message: e.message,
            details: [{ reason: e.reason }],
            nonRetryable: true,
          });
        }
      },
    },
  );

  setHandler(cancelStepSignal, ({ reason }) => {
    if (state.status !== 'pending') return;
    state.status = 'cancelled';
    state.reason = reason;
    state.decidedAt = now();
    state.version++;
  });

  const pending = () => state.status === 'pending';
  const remind = async (
    kind: 'reminder' | 'escalation',
    index: number,
    stakeholders = tally(state.requirements, state.decisions).outstanding,
  ) =>
    recordReminders({
      stepId: input.stepId,
      caseId: input.caseId,
      region: input.region,
      kind,
      index,
      dueAt: new Date(state.dueAtMs).toISOString(),
      progress: tally(state.requirements, state.decisions).progress,
      stakeholders,
    });

  // SLA: reminders at the rule's points, then the deadline.
  const offsets = reminderOffsets(input.slaMs, rule.remindAtPercent);
  for (let i = 0; i < offsets.length && pending(); i++) {
    const decided = await condition(() => !pending(), Math.max(1, requestedAtMs + offsets[i]! - Date.now()));
    if (!decided) await remind('reminder', i);
  }
  while (pending()) {
    const decided = await condition(() => !pending(), Math.max(1, state.dueAtMs - Date.now()));
    if (decided) break;
    if (rule.onExpiry === 'escalate' && rule.escalateTo && !state.escalated) {
      // Escalation: one more approver of the escalation role, and another SLA period.
      state.escalated = true;
      state.requirements = escalateRequirements(state.requirements, rule.escalateTo);
      state.dueAtMs += input.slaMs;
      state.version++;
      await projectStepDurably({ stepId: input.stepId, state: projected() });
      await remind('escalation', 0, [rule.escalateTo]);
    } else {
      state.status = 'expired';
      state.reason = 'sla_expired';
      state.decidedAt = now();
      state.version++;
    }
  }

  await condition(allHandlersFinished);
  // Idempotent: a no-op when a decision's Update already wrote this version.
  await projectStepDurably({ stepId: input.stepId, state: projected() });
  upsertSearchAttributes([{ key: WardenStatus, value: state.status }]);

  const result = view();
  const decidedBy =
    state.status === 'approved'
      ? state.decisions.filter((d) => d.decision === 'approve').map((d) => d.approver)
      : state.decisions.filter((d) => d.decision === 'reject').map((d) => d.approver);
  try {
    await getExternalWorkflowHandle(workflowIds.case(input.caseId)).signal(stepFinishedSignal, {
      stepId: input.stepId,
      kind: input.kind,
      status: state.status as Exclude<StepStatus, 'pending'>,
      reason: state.reason ?? state.status,
      decidedBy,
      at: state.decidedAt ?? now(),
    });
  } catch {
    // The case already closed (it cancelled this step): nothing left to tell it.
  }
  return result;
}
