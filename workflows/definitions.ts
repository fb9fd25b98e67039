/**
 * The contract between the API and the workflows: every workflow input/output type, every
 * defineUpdate/Signal/Query, and the search attribute keys. The API imports from here and never
 * repeats a message name as a string.
 *
 * Search attributes hold ids and statuses only — never anything that identifies a person.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

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
};
