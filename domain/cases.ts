/**
 * Cases and approval steps (pure): statuses, the stage transitions a step may cause, approver
 * eligibility with a specific reason, and the k-of-n quorum with veto.
 *
 * Shared by the API (pre-checks that answer 403 with the reason), the workflows (the synchronous
 * Update validators and the step's state machine) and the activities. No I/O, no clock, no zod:
 * safe inside the workflow sandbox.
 */
import type { Stakeholder, StepKind } from './roles';

export const CASE_STATUSES = ['open', 'under_investigation', 'hr_action', 'closed'] as const;
export type CaseStatus = (typeof CASE_STATUSES)[number];
/** Statuses of a case that still counts as the subject's active case. */
export const ACTIVE_CASE_STATUSES = ['open', 'under_investigation', 'hr_action'] as const satisfies readonly CaseStatus[];

export const STEP_STATUSES = ['pending', 'approved', 'rejected', 'expired', 'cancelled'] as const;
export type StepStatus = (typeof STEP_STATUSES)[number];

export const RESOLUTIONS = ['benign', 'confirmed_violation'] as const;
export type Resolution = (typeof RESOLUTIONS)[number];

export const SEVERITIES = ['low', 'medium', 'high'] as const;
export type Severity = (typeof SEVERITIES)[number];

export const DECISIONS = ['approve', 'reject'] as const;
export type Decision = (typeof DECISIONS)[number];

/** The higher of two severities (`null` counts as none). */
export function maxSeverity(a: Severity | null, b: Severity | null): Severity | null {
  if (a === null) return b;
  if (b === null) return a;
  return SEVERITIES.indexOf(a) >= SEVERITIES.indexOf(b) ? a : b;
}

// ---------------------------------------------------------------------------------------------
// Stage transitions

/** The stage an approved step of this kind moves a case to, if any. */
export const STAGE_OF_STEP: Partial<Record<StepKind, CaseStatus>> = {
  escalate_investigation: 'under_investigation',
  escalate_hr_action: 'hr_action',
};

const STAGE_ORDER: Record<CaseStatus, number> = { open: 0, under_investigation: 1, hr_action: 2, closed: 3 };

export type StepRequestRefusal = {
  ok: false;
  reason: 'case_closed' | 'stage_passed' | 'step_pending' | 'already_approved';
  message: string;
};

/**
 * May a step of `kind` be requested now? Escalations only move a case forward; one pending step of
 * a kind at a time; a confirmed-violation resolution needs only one approval.
 */
export function canRequestStep(
  c: { status: CaseStatus; pendingKinds: readonly StepKind[]; violationApproved: boolean },
  kind: StepKind,
): { ok: true } | StepRequestRefusal {
  if (c.status === 'closed') return { ok: false, reason: 'case_closed', message: 'The case is closed' };
  const stage = STAGE_OF_STEP[kind];
  if (stage && STAGE_ORDER[c.status] >= STAGE_ORDER[stage]) {
    return { ok: false, reason: 'stage_passed', message: `The case is already ${c.status}; ${kind} cannot move it further` };
  }
  if (c.pendingKinds.includes(kind)) {
    return { ok: false, reason: 'step_pending', message: `A ${kind} step is already waiting for approval on this case` };
  }
  if (kind === 'resolve_confirmed_violation' && c.violationApproved) {
    return {
      ok: false,
      reason: 'already_approved',
      message: 'A confirmed-violation resolution is already approved; resolve the case',
    };
  }
  return { ok: true };
}

/** Where an approved step leaves the case: forward to its stage, never backwards. */
export function stageAfterApproval(status: CaseStatus, kind: StepKind): CaseStatus {
  const stage = STAGE_OF_STEP[kind];
  if (!stage || status === 'closed') return status;
  return STAGE_ORDER[stage] > STAGE_ORDER[status] ? stage : status;
}

export function canResolve(
  c: { status: CaseStatus; violationApproved: boolean },
  outcome: Resolution,
): { ok: true } | { ok: false; reason: 'case_closed' | 'approval_required'; message: string } {
  if (c.status === 'closed') return { ok: false, reason: 'case_closed', message: 'The case is already closed' };
  if (outcome === 'confirmed_violation' && !c.violationApproved) {
    return {
      ok: false,
      reason: 'approval_required',
      message: 'A confirmed_violation resolution needs an approved resolve_confirmed_violation step first',
    };
  }
  return { ok: true };
}

// ---------------------------------------------------------------------------------------------
// Approval rules of a step

export interface Requirement {
  stakeholder: Stakeholder;
  count: number;
}

/**
 * What a step was requested under, frozen at request time: the region's rule for the step's kind
 * and the region's reviewer policy. A rule changed later never changes a step in flight.
 */
export interface StepRuleSnapshot {
  region: string;
  regionVersion: number;
  require: Requirement[];
  slaHours: number;
  remindAtPercent: number[];
  onExpiry: 'reject' | 'escalate';
  escalateTo?: Stakeholder;
  languages: string[];
  requireReviewerLanguage: boolean;
  /** Subjects on the region's restricted list for this step kind. */
  restricted: string[];
}

export interface DecisionRecord {
  approver: string;
  stakeholder: Stakeholder;
  decision: Decision;
  comment: string;
  at: string;
}

/** The part of a principal that eligibility looks at. */
export interface ApproverIdentity {
  sub: string;
  roles: readonly string[];
  stakeholder?: Stakeholder;
  regions: readonly string[];
  languages: readonly string[];
}

export const INELIGIBLE_REASONS = [
  'not_approver',
  'not_in_region',
  'wrong_stakeholder',
  'language_not_spoken',
  'restricted',
  'requester_cannot_approve',
  'already_decided',
] as const;
export type IneligibleReason = (typeof INELIGIBLE_REASONS)[number];

export type Eligibility = { ok: true } | { ok: false; reason: IneligibleReason; message: string };

/**
 * May this approver decide this step? Checked by the API (to answer 403 with the reason and audit
 * the refusal) and again by the step workflow's synchronous Update validator (authoritative, and
 * it sees decisions the API's read model has not yet).
 */
export function checkApprover(
  approver: ApproverIdentity,
  step: {
    rule: StepRuleSnapshot;
    requirements: readonly Requirement[];
    requestedBy: string;
    decisions: readonly Pick<DecisionRecord, 'approver'>[];
  },
): Eligibility {
  const { rule } = step;
  if (!approver.roles.includes('approver') || !approver.stakeholder) {
    return { ok: false, reason: 'not_approver', message: 'Only approvers with a stakeholder role decide steps' };
  }
  if (!approver.regions.includes('*') && !approver.regions.includes(rule.region)) {
    return { ok: false, reason: 'not_in_region', message: `The approver does not cover the case's region (${rule.region})` };
  }
  if (!step.requirements.some((r) => r.stakeholder === approver.stakeholder)) {
    return {
      ok: false,
      reason: 'wrong_stakeholder',
      message: `This step needs ${step.requirements.map((r) => r.stakeholder).join(', ')}; the approver is ${approver.stakeholder}`,
    };
  }
  if (rule.requireReviewerLanguage && !approver.languages.some((l) => rule.languages.includes(l))) {
    return {
      ok: false,
      reason: 'language_not_spoken',
      message: `Region ${rule.region} requires a reviewer speaking one of: ${rule.languages.join(', ')}`,
    };
  }
  if (rule.restricted.includes(approver.sub)) {
    return {
      ok: false,
      reason: 'restricted',
      message: `The approver is on region ${rule.region}'s restricted list for this step kind`,
    };
  }
  if (approver.sub === step.requestedBy) {
    return { ok: false, reason: 'requester_cannot_approve', message: 'The requester of a step cannot decide it (four eyes)' };
  }
  if (step.decisions.some((d) => d.approver === approver.sub)) {
    return { ok: false, reason: 'already_decided', message: 'The approver has already decided this step' };
  }
  return { ok: true };
}

export interface RequirementProgress {
  stakeholder: Stakeholder;
  required: number;
  approvals: number;
  remaining: number;
  approvedBy: string[];
}

export interface Tally {
  status: 'pending' | 'approved' | 'rejected';
  progress: RequirementProgress[];
  /** Stakeholders still short of approvals, while pending. */
  outstanding: Stakeholder[];
  rejectedBy?: string;
}

/** k distinct approvers of each required stakeholder; any rejection vetoes. */
export function tally(requirements: readonly Requirement[], decisions: readonly DecisionRecord[]): Tally {
  const progress = requirements.map((r) => {
    const approvedBy = [
      ...new Set(decisions.filter((d) => d.decision === 'approve' && d.stakeholder === r.stakeholder).map((d) => d.approver)),
    ];
    return {
      stakeholder: r.stakeholder,
      required: r.count,
      approvals: approvedBy.length,
      remaining: Math.max(0, r.count - approvedBy.length),
      approvedBy,
    };
  });
  const rejection = decisions.find((d) => d.decision === 'reject');
  if (rejection) return { status: 'rejected', progress, outstanding: [], rejectedBy: rejection.approver };
  const outstanding = progress.filter((p) => p.remaining > 0).map((p) => p.stakeholder);
  return { status: outstanding.length === 0 ? 'approved' : 'pending', progress, outstanding };
}

/** The requirements after an SLA expiry that escalates: one more approver of `to`. */
export function escalateRequirements(requirements: readonly Requirement[], to: Stakeholder): Requirement[] {
  const existing = requirements.find((r) => r.stakeholder === to);
  if (existing) return requirements.map((r) => (r.stakeholder === to ? { ...r, count: r.count + 1 } : { ...r }));
  return [...requirements.map((r) => ({ ...r })), { stakeholder: to, count: 1 }];
}

/** Milliseconds after the request at which reminders are due. */
export function reminderOffsets(slaMs: number, remindAtPercent: readonly number[]): number[] {
  return [...remindAtPercent].sort((a, b) => a - b).map((p) => Math.round((slaMs * p) / 100));
}

/** The SLA of a rule in milliseconds, scaled (tests and demos shrink time with `SLA_TIME_SCALE`). */
export function slaMilliseconds(slaHours: number, scale: number): number {
  return Math.max(1, Math.round(slaHours * 3_600_000 * scale));
}
