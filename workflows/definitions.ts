/**
 * The contract between the API and the workflows: every workflow input/output type, every
 * defineUpdate/Signal/Query, and the search attribute keys. The API imports from here and never
 * repeats a message name as a string.
 *
 * Search attributes hold ids and statuses only — never anything that identifies a person.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type {
  CaseStatus,
  Decision,
  DecisionRecord,
  Requirement,
  RequirementProgress,
  Resolution,
  Severity,
  StepRuleSnapshot,
  StepStatus,
} from '../domain/cases';
import type { Stakeholder, StepKind } from '../domain/roles';

export const WardenRegion = defineSearchAttributeKey('WardenRegion', SearchAttributeType.KEYWORD);
export const WardenStatus = defineSearchAttributeKey('WardenStatus', SearchAttributeType.KEYWORD);
export const WardenCaseId = defineSearchAttributeKey('WardenCaseId', SearchAttributeType.KEYWORD);

/** Every custom search attribute, for registration on a server. */
export const SEARCH_ATTRIBUTES = [WardenRegion, WardenStatus, WardenCaseId] as const;

/** Who caused a workflow command: recorded in history so auditors can read it. */
export interface Actor {
  sub: string;
  roles: string[];
  requestId?: string;
}

export interface SystemCheckInput {
  checkId: string;
  requestedBy: Actor;
}

export interface SystemCheckResult {
  checkId: string;
  attempt: number;
  completedAt: string;
}

/** Deterministic workflow ids from business keys. */
export const workflowIds = {
  systemCheck: (checkId: string) => `system-check-${checkId}`,
  case: (caseId: string) => `case-${caseId}`,
  step: (caseId: string, stepId: string) => `case-${caseId}-step-${stepId}`,
  notice: (caseId: string, noticeId: string) => `case-${caseId}-notice-${noticeId}`,
  historyArchive: (workflowId: string, runId: string) => `history-archive-${workflowId}-${runId}`,
};

/**
 * Archive a workflow run's history (and its children's) into Postgres once it has closed. A
 * workflow calls the `archiveWorkflowHistory` activity with its own id as its last step (and before
 * continuing as new); the activity then starts `archiveHistoryWorkflow`, which waits for the run
 * to close and archives it. `rootWorkflowId` groups a case with its step workflows.
 */
export interface ArchiveHistoryInput {
  workflowId: string;
  /** Default: the calling run when a workflow archives itself, else the latest run. */
  runId?: string;
  /** Default: `workflowId`. */
  rootWorkflowId?: string;
}

export type ArchiveHistoryResult =
  { status: 'archived'; runs: number; events: number; deferred: string[] } | { status: 'deferred'; archiverWorkflowId: string };

// ---------------------------------------------------------------------------------------------
// Cases and approval steps

/** An approver as the API authenticated them: what the step's Update validator checks. */
export interface ApproverActor extends Actor {
  stakeholder?: Stakeholder;
  regions: string[];
  languages: string[];
}

/** A case's lifecycle state, carried across continue-as-new. */
export interface CaseState {
  status: CaseStatus;
  owner: string | null;
  severity: Severity;
  alertIds: string[];
  steps: Record<string, CaseStepState>;
  /** The approved resolve_confirmed_violation step, once there is one. */
  violationApprovedStepId: string | null;
  resolution: { outcome: Resolution; actionTaken: string; by: string; at: string } | null;
  /** Bumped on every change; projections never overwrite a newer version. */
  version: number;
  runs: number;
  /** Identity reveal grants by grant id (= the reveal step's id); ended grants stay for the record. */
  grants?: Record<string, RevealGrantState>;
}

export interface CaseStepState {
  kind: StepKind;
  status: StepStatus;
  workflowId: string;
  /** Who requested the step (a reveal grant goes to them alone). */
  requestedBy?: string;
  /** For `reveal_identity`: how long the grant lasts once approved (region setting at request time). */
  grantMs?: number;
  /** The approval SLA's due time (steps requested before it was kept here have none). */
  dueAt?: string;
}

export interface RevealGrantState {
  grantee: string;
  grantedAt: string;
  expiresAt: string;
  status: 'active' | 'expired' | 'revoked' | 'case_closed';
}

export interface CaseWorkflowInput {
  caseId: string;
  subjectId: string;
  region: string;
  severity: Severity;
  openedAt: string;
  openedBy: Actor;
  /** Test knob: continue-as-new at this history length even if Temporal has not suggested it. */
  continueAsNewAfterEvents?: number;
  /** State carried by continue-as-new; absent on the first run. */
  carried?: CaseState;
  /**
   * The alert whose confirm opened the case, attached as the signal would attach it: the confirm
   * that opens a case starts the workflow with it (an eager start is possible; a signalWithStart is
   * never eager). Not carried by continue-as-new.
   */
  firstAlert?: AttachAlertInput;
}

export interface CaseResult {
  caseId: string;
  status: CaseStatus;
  resolution: CaseState['resolution'];
  alertIds: string[];
}

/** Attach a confirmed alert (signalWithStart by the confirm command; idempotent by alert id). */
export interface AttachAlertInput {
  alertId: string;
  severity: Severity;
  comment: string;
  /** The note the confirm comment becomes (deterministic from the alert id, so retries add one note). */
  noteId: string;
  actor: Actor;
  at: string;
}

export interface AssignCaseInput {
  owner: string;
  actor: Actor;
}

export interface AddNoteInput {
  noteId: string;
  body: string;
  actor: Actor;
}

export interface RequestStepInput {
  stepId: string;
  kind: StepKind;
  reason: string;
  templateId?: string;
  rule: StepRuleSnapshot;
  /** The rule's SLA in ms, already scaled by SLA_TIME_SCALE. */
  slaMs: number;
  /** For `reveal_identity`: the grant duration in ms (the region's revealGrantHours, scaled). */
  grantMs?: number;
  requestedAt: string;
  actor: Actor;
}

export interface StepRequested {
  stepId: string;
  /** The kind of the step the request (or its key) stands for; absent from workflows that predate it. */
  kind?: StepKind;
  status: StepStatus;
  requirements: Requirement[];
  dueAt: string;
}

export interface ResolveCaseInput {
  outcome: Resolution;
  actionTaken: string;
  actor: Actor;
}

/** What a step workflow tells its case when it ends. */
export interface StepFinished {
  stepId: string;
  kind: StepKind;
  status: Exclude<StepStatus, 'pending'>;
  /** `approved`, `rejected_by_approver`, `sla_expired`, `case_closed`… */
  reason: string;
  decidedBy: string[];
  at: string;
}

export interface CaseSummary {
  caseId: string;
  status: CaseStatus;
  owner: string | null;
  severity: Severity;
  alertIds: string[];
  resolution: CaseState['resolution'];
  pendingSteps: string[];
  version: number;
}

export const attachAlertSignal = defineSignal<[AttachAlertInput]>('attachAlert');
export const stepFinishedSignal = defineSignal<[StepFinished]>('stepFinished');
export const assignCaseUpdate = defineUpdate<CaseSummary, [AssignCaseInput]>('assignCase');
export const addNoteUpdate = defineUpdate<{ noteId: string }, [AddNoteInput]>('addNote');
export const requestStepUpdate = defineUpdate<StepRequested, [RequestStepInput]>('requestStep');
export const resolveCaseUpdate = defineUpdate<CaseSummary, [ResolveCaseInput]>('resolveCase');
export const getCaseQuery = defineQuery<CaseSummary>('getCase');

export interface StepWorkflowInput {
  caseId: string;
  stepId: string;
  kind: StepKind;
  region: string;
  requestedBy: Actor;
  requestedAt: string;
  rule: StepRuleSnapshot;
  slaMs: number;
}

export interface DecideStepInput {
  decision: Decision;
  comment: string;
  actor: ApproverActor;
}

export interface StepView {
  stepId: string;
  caseId: string;
  kind: StepKind;
  status: StepStatus;
  reason: string | null;
  requirements: Requirement[];
  progress: RequirementProgress[];
  outstanding: Stakeholder[];
  decisions: DecisionRecord[];
  requestedBy: string;
  requestedAt: string;
  dueAt: string;
  escalated: boolean;
  version: number;
}

export const decideStepUpdate = defineUpdate<StepView, [DecideStepInput]>('decideStep');
export const cancelStepSignal = defineSignal<[{ reason: string; actor: Actor }]>('cancelStep');
export const getStepQuery = defineQuery<StepView>('getStep');

// ---------------------------------------------------------------------------------------------
// Detection: scoring per ingested batch, and policy backfills. Inputs carry opaque ids only.

export interface ScoreSubjectsInput {
  /** Opaque subject ids (never an HR external id); for a batch, default: the ones stored with it. */
  subjectIds?: string[];
  /** Score against these policies only (default: every active policy). */
  policyIds?: string[];
  /** The ingested batch being scored, if any (for the audit trail). */
  batchId?: string;
}

export interface ScoreSubjectsResult {
  subjects: number;
  pairsScored: number;
  scoresChanged: number;
  alertsCreated: string[];
  alertsRaised: string[];
  suppressedByCap: number;
}

export interface ScoreSignalBatchInput {
  batchId: string;
  /** Default: the subjects stored with the batch (what the API sends: the ids stay out of payloads). */
  subjectIds?: string[];
}

export interface PolicyBackfillInput {
  policyId: string;
  version: number;
}

export interface PolicyBackfillResult {
  subjects: number;
  pairsScored: number;
  alertsCreated: number;
  alertsRaised: number;
}

export const detectionWorkflowIds = {
  scoreBatch: (batchId: string) => `score-batch-${batchId}`,
  policyBackfill: (policyId: string, version: number) => `policy-backfill-${policyId}-v${version}`,
};

// ---------------------------------------------------------------------------------------------
// Notices

/** Deliver the notice of an approved send_notice step. Ids only: no address, no name. */
export interface NoticeWorkflowInput {
  noticeId: string;
  caseId: string;
  stepId: string;
  /** Test knob: a faster delivery retry policy than the production one. */
  retry?: { initialIntervalMs: number; maximumAttempts: number };
}

export interface NoticeWorkflowResult {
  noticeId: string;
  status: 'queued' | 'sent' | 'failed';
}

// ---------------------------------------------------------------------------------------------
// Identity reveal grants

export interface RevokeGrantInput {
  grantId: string;
  /** Why the grant is revoked: kept in the workflow history (encrypted), not in the audit log. */
  comment: string;
  actor: Actor;
}

/** An approver of a reveal step ends its grant before the timer does. */
export const revokeGrantUpdate = defineUpdate<{ grantId: string; status: 'revoked' }, [RevokeGrantInput]>('revokeGrant');

// ---------------------------------------------------------------------------------------------
// Read-model projections written by the case and step workflows' activities

export interface CaseSnapshot {
  status: CaseStatus;
  owner: string | null;
  severity: Severity;
  alertCount: number;
  resolution: { outcome: Resolution; actionTaken: string; by: string; at: string } | null;
  version: number;
}

export interface NoteWrite {
  id: string;
  author: string;
  kind: 'comment' | 'system';
  body: string;
  at: string;
}

export interface EventWrite {
  id: string;
  type: string;
  actor: string;
  /** Ids and statuses only. */
  details: Record<string, unknown>;
  at: string;
}

export interface StepState {
  status: StepStatus;
  reason: string | null;
  requirements: Requirement[];
  progress: RequirementProgress[];
  outstanding: Stakeholder[];
  escalated: boolean;
  dueAt: string;
  decidedAt: string | null;
  version: number;
}
