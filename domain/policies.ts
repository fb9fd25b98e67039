/**
 * Policies (pure): the four templates of the planning guide with their triggers, prerequisites and
 * default indicators; the policy an administrator writes; and the scope rule (who a policy covers).
 */
import { z } from 'zod';
import { RegionCode } from './regions';
import { ACTIVITY_TYPES, HR_EVENT_TYPES, isDemotion, type Severity, type SignalSource, type SignalType } from './signals';

export const POLICY_TEMPLATES = [
  'data_theft_departing_users',
  'data_leaks',
  'security_policy_violations',
  'risky_users',
] as const;
export type PolicyTemplate = (typeof POLICY_TEMPLATES)[number];

export const POLICY_STATUSES = ['draft', 'active', 'paused'] as const;
export type PolicyStatus = (typeof POLICY_STATUSES)[number];

/**
 * What a policy can weigh: every signal type, with DLP alerts split by severity. Activity
 * indicators count `weight × attributes.count` points; the others `weight` per event.
 */
export const INDICATORS = [
  ...ACTIVITY_TYPES,
  'dlp_alert_low',
  'dlp_alert_medium',
  'dlp_alert_high',
  'endpoint_alert',
  ...HR_EVENT_TYPES,
] as const;
export type Indicator = (typeof INDICATORS)[number];

/** The indicator a stored signal counts towards. */
export function indicatorOf(type: SignalType, severity: Severity | null | undefined): Indicator {
  if (type === 'dlp_alert') return `dlp_alert_${severity ?? 'low'}`;
  return type;
}

/** The part of a signal the trigger rules look at. */
export interface TriggerCandidate {
  type: SignalType;
  severity: Severity | null;
  attributes: Record<string, unknown>;
}

/** One prerequisite: connector data of these kinds must have been received. */
export interface Prerequisite {
  id: string;
  source: SignalSource;
  /** Any one of these event types satisfies it. */
  types: SignalType[];
  description: string;
}

export interface TemplateDefinition {
  description: string;
  trigger: string;
  /** Event types that may trigger (a cheap pre-filter for scoring queries). */
  triggerTypes: SignalType[];
  /** When set, only signals of these severities may trigger (also a pre-filter of scoring queries). */
  triggerSeverities?: Severity[];
  isTrigger(signal: TriggerCandidate): boolean;
  prerequisites: Prerequisite[];
  defaultIndicators: Partial<Record<Indicator, number>>;
}

const EXFILTRATION: Partial<Record<Indicator, number>> = {
  file_downloaded: 1,
  file_copied_to_usb: 3,
  file_uploaded_to_personal_cloud: 3,
  file_printed: 1,
  email_to_external_domain: 2,
};

export const TEMPLATES: Record<PolicyTemplate, TemplateDefinition> = {
  data_theft_departing_users: {
    description: 'Data theft by departing users',
    trigger: 'an HR resignation or termination event',
    triggerTypes: ['resignation', 'termination'],
    isTrigger: (s) => s.type === 'resignation' || s.type === 'termination',
    prerequisites: [
      {
        id: 'hr_departures',
        source: 'hr',
        types: ['resignation', 'termination'],
        description: 'HR connector: resignation or termination records (with last working dates)',
      },
    ],
    defaultIndicators: { ...EXFILTRATION, resignation: 10, termination: 10 },
  },
  data_leaks: {
    description: 'Data leaks',
    trigger: 'a High-severity DLP alert',
    triggerTypes: ['dlp_alert'],
    triggerSeverities: ['high'],
    isTrigger: (s) => s.type === 'dlp_alert' && s.severity === 'high',
    prerequisites: [
      { id: 'dlp_alerts', source: 'dlp', types: ['dlp_alert'], description: 'DLP connector: data loss prevention alerts' },
    ],
    defaultIndicators: { ...EXFILTRATION, dlp_alert_high: 20, dlp_alert_medium: 10, dlp_alert_low: 5 },
  },
  security_policy_violations: {
    description: 'Security policy violations',
    trigger: 'an endpoint-security alert',
    triggerTypes: ['endpoint_alert'],
    isTrigger: (s) => s.type === 'endpoint_alert',
    prerequisites: [
      {
        id: 'endpoint_alerts',
        source: 'endpoint',
        types: ['endpoint_alert'],
        description: 'Endpoint-security connector: security violation alerts',
      },
    ],
    defaultIndicators: { ...EXFILTRATION, endpoint_alert: 20 },
  },
  risky_users: {
    description: 'Risky users',
    trigger: 'an HR performance event (review, improvement plan) or a demotion',
    triggerTypes: ['performance_review', 'performance_improvement_plan', 'job_level_change'],
    isTrigger: (s) =>
      s.type === 'performance_review' ||
      s.type === 'performance_improvement_plan' ||
      (s.type === 'job_level_change' && isDemotion(s.attributes)),
    prerequisites: [
      {
        id: 'hr_performance',
        source: 'hr',
        types: ['performance_review', 'performance_improvement_plan', 'job_level_change'],
        description: 'HR connector: performance reviews, improvement plans or job-level changes',
      },
    ],
    defaultIndicators: { ...EXFILTRATION, performance_review: 5, performance_improvement_plan: 10, job_level_change: 10 },
  },
};

/** Every type that can trigger some template: what scoring looks up first. */
export const ALL_TRIGGER_TYPES: SignalType[] = [...new Set(Object.values(TEMPLATES).flatMap((t) => t.triggerTypes))];

/** Prerequisites not met, given the (source, type) pairs of connector data received so far. */
export function missingPrerequisites(
  template: PolicyTemplate,
  received: Array<{ source: string; type: string }>,
): Prerequisite[] {
  return TEMPLATES[template].prerequisites.filter(
    (p) => !received.some((r) => r.source === p.source && (p.types as string[]).includes(r.type)),
  );
}

// ---------------------------------------------------------------------------------------------
// Scope

const GroupName = z.string().trim().min(1).max(200);
const SubjectRef = z
  .string()
  .uuid('subjects are referred to by their opaque id')
  // As Postgres writes uuids: scope checks compare them as text.
  .transform((id) => id.toLowerCase());

const Selection = z
  .object({
    subjects: z.array(SubjectRef).max(10_000).default([]),
    groups: z.array(GroupName).max(1000).default([]),
  })
  .strict();

/**
 * Who a policy covers. No `include` (or an empty one) means all subjects; `regions` (empty = all)
 * and `exclude` narrow it. Used to "test with a small group" before widening.
 */
export const PolicyScope = z
  .object({
    regions: z.array(RegionCode).max(100).default([]),
    include: Selection.default({}),
    exclude: Selection.default({}),
  })
  .strict();
export type PolicyScope = z.infer<typeof PolicyScope>;

export interface ScopeSubject {
  id: string;
  region: string;
  groups: string[];
}

export function inScope(scope: PolicyScope, s: ScopeSubject): boolean {
  if (scope.regions.length && !scope.regions.includes(s.region)) return false;
  if (scope.exclude.subjects.includes(s.id) || s.groups.some((g) => scope.exclude.groups.includes(g))) return false;
  const inc = scope.include;
  if (inc.subjects.length === 0 && inc.groups.length === 0) return true;
  return inc.subjects.includes(s.id) || s.groups.some((g) => inc.groups.includes(g));
}

// ---------------------------------------------------------------------------------------------
// The policy an administrator writes

const Weight = z.number().int().min(0).max(100);
const Score = z.number().int().min(1).max(100);

export const Indicators = z
  .object(Object.fromEntries(INDICATORS.map((i) => [i, Weight.optional()])) as Record<Indicator, z.ZodOptional<typeof Weight>>)
  .strict();
export type Indicators = z.infer<typeof Indicators>;

export const Thresholds = z
  .object({
    /** No alert below this score. */
    minRiskScore: Score,
    /** Severity bands: `low` below `medium`, `medium` from it, `high` from `high`. */
    severity: z.object({ medium: Score, high: Score }).strict(),
  })
  .strict()
  .superRefine((t, ctx) => {
    if (t.severity.medium > t.severity.high) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['severity', 'medium'],
        message: 'the medium band must start at or below high',
      });
    }
  });
export type Thresholds = z.infer<typeof Thresholds>;

const Percent = z.number().int().min(0).max(200);
/** How much each booster adds, in percent of the indicator points (0 turns a booster off). */
export const Boosters = z
  .object({
    priorityGroup: Percent.default(50),
    aboveUsualActivity: Percent.default(25),
    previousViolation: Percent.default(50),
  })
  .strict();
export type Boosters = z.infer<typeof Boosters>;

const policyFields = {
  name: z.string().trim().min(1).max(200),
  description: z.string().max(2000).optional(),
  scope: PolicyScope.default({}),
  priorityGroups: z.array(GroupName).max(1000).default([]),
  indicators: Indicators.optional(),
  thresholds: Thresholds,
  boosters: Boosters.default({}),
  activationWindowDays: z
    .number()
    .int()
    .min(1, 'the activation window is 1–30 days')
    .max(30, 'the activation window is 1–30 days'),
  dailyAlertCap: z.number().int().min(1).max(100_000).default(200),
};

export const PolicyInput = z.object({ ...policyFields, template: z.enum(POLICY_TEMPLATES) }).strict();
export type PolicyInput = z.infer<typeof PolicyInput>;

/** A partial change; the template of a policy is fixed once created. */
export const PolicyPatch = z
  .object({
    name: policyFields.name.optional(),
    description: policyFields.description,
    scope: PolicyScope.optional(),
    priorityGroups: z.array(GroupName).max(1000).optional(),
    indicators: Indicators.optional(),
    thresholds: Thresholds.optional(),
    /** Only the boosters named change: the others keep their values (no defaults filled in). */
    boosters: z
      .object({ priorityGroup: Percent, aboveUsualActivity: Percent, previousViolation: Percent })
      .partial()
      .strict()
      .optional(),
    activationWindowDays: policyFields.activationWindowDays.optional(),
    dailyAlertCap: z.number().int().min(1).max(100_000).optional(),
  })
  .strict()
  .refine((p) => Object.keys(p).length > 0, { message: 'give at least one field to change' });
export type PolicyPatch = z.infer<typeof PolicyPatch>;

/** The indicators a new policy gets when it names none: its template's defaults. */
export function defaultIndicators(template: PolicyTemplate): Indicators {
  return { ...TEMPLATES[template].defaultIndicators };
}

/** What scoring needs of a policy. */
export interface ScoringPolicy {
  id: string;
  version: number;
  template: PolicyTemplate;
  scope: PolicyScope;
  priorityGroups: string[];
  indicators: Indicators;
  thresholds: Thresholds;
  boosters: Boosters;
  activationWindowDays: number;
  dailyAlertCap: number;
}

/**
 * What scoring reads as trigger candidates for these templates: their trigger types, and the types
 * whose candidates every one of the templates restricts by severity (with the severities allowed).
 * A superset of the triggers (the templates' `isTrigger` decides), never a subset.
 */
export function triggerFilter(templates: PolicyTemplate[]): {
  types: SignalType[];
  restrictedTypes: SignalType[];
  severities: Severity[];
} {
  const types = new Set<SignalType>();
  const open = new Set<SignalType>();
  const restricted = new Map<SignalType, Set<Severity>>();
  for (const name of new Set(templates)) {
    const t = TEMPLATES[name];
    for (const type of t.triggerTypes) {
      types.add(type);
      if (!t.triggerSeverities) open.add(type);
      else for (const sv of t.triggerSeverities) restricted.set(type, (restricted.get(type) ?? new Set()).add(sv));
    }
  }
  const restrictedTypes = [...restricted.keys()].filter((t) => !open.has(t)).sort();
  const severities = [...new Set(restrictedTypes.flatMap((t) => [...restricted.get(t)!]))].sort();
  return { types: [...types].sort(), restrictedTypes, severities };
}
