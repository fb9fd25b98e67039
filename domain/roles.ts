/** Roles, stakeholders and step kinds: the fixed vocabulary of the product (pure). */
export const ROLES = ['admin', 'analyst', 'investigator', 'auditor', 'approver', 'connector'] as const;
export type Role = (typeof ROLES)[number];

export const STAKEHOLDERS = ['legal', 'hr', 'privacy', 'compliance', 'security', 'it'] as const;
export type Stakeholder = (typeof STAKEHOLDERS)[number];

export const STEP_KINDS = [
  'reveal_identity',
  'send_notice',
  'escalate_investigation',
  'escalate_hr_action',
  'resolve_confirmed_violation',
] as const;
export type StepKind = (typeof STEP_KINDS)[number];

/** A region claim of `*` means every region (global administrators and auditors). */
export const ALL_REGIONS = '*';
