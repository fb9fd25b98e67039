/**
 * Regions and their approval rules (pure): the schema administrators write, its checks, and the
 * defaults of a fresh installation. Workflows snapshot an `ApprovalRule` when a step is requested.
 */
import { z } from 'zod';
import { STAKEHOLDERS, STEP_KINDS, type StepKind } from './roles';

export const RegionCode = z.string().regex(/^[a-z][a-z0-9-]{1,15}$/, 'a region code is 2–16 lowercase letters, digits or dashes');

export const Requirement = z
  .object({
    stakeholder: z.enum(STAKEHOLDERS),
    count: z.number().int().min(1, 'count must be at least 1 (k of n)').max(10),
  })
  .strict();

export const ApprovalRule = z
  .object({
    require: z.array(Requirement).min(1, 'a rule requires at least one stakeholder'),
    slaHours: z
      .number()
      .positive('slaHours must be greater than 0')
      .max(24 * 90),
    remindAtPercent: z.array(z.number().int().min(1).max(99)).max(10).default([]),
    onExpiry: z.enum(['reject', 'escalate']).default('reject'),
    escalateTo: z.enum(STAKEHOLDERS).optional(),
  })
  .strict()
  .superRefine((rule, ctx) => {
    const seen = new Set<string>();
    rule.require.forEach((r, i) => {
      if (seen.has(r.stakeholder)) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ['require', i, 'stakeholder'],
          message: `stakeholder ${r.stakeholder} is listed twice`,
        });
      }
      seen.add(r.stakeholder);
    });
    rule.remindAtPercent.forEach((p, i) => {
      if (i > 0 && p <= rule.remindAtPercent[i - 1]!) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ['remindAtPercent', i],
          message: 'reminder points must be increasing and fall before the SLA (1–99 %)',
        });
      }
    });
    if (rule.onExpiry === 'escalate' && !rule.escalateTo) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['escalateTo'],
        message: 'onExpiry "escalate" needs escalateTo: the stakeholder added when the SLA expires',
      });
    }
  });
export type ApprovalRule = z.infer<typeof ApprovalRule>;

const approvalRulesShape = Object.fromEntries(STEP_KINDS.map((k) => [k, ApprovalRule.optional()])) as {
  [K in StepKind]: z.ZodOptional<typeof ApprovalRule>;
};

export const ApprovalRules = z.object(approvalRulesShape).strict();
export type ApprovalRules = z.infer<typeof ApprovalRules>;

export const RestrictedEntry = z
  .object({
    sub: z.string().min(1).max(200),
    stepKinds: z.array(z.enum(STEP_KINDS)).min(1),
  })
  .strict();

/** Body of `PUT /v1/regions/{code}`. */
export const RegionInput = z
  .object({
    name: z.string().trim().min(1).max(120),
    languages: z
      .array(z.string().regex(/^[a-z]{2,3}(-[A-Z]{2})?$/, 'a language is an ISO 639 code such as "en" or "de"'))
      .min(1)
      .max(20),
    requireReviewerLanguage: z.boolean().default(false),
    allowDeanonymization: z.boolean().default(true),
    revealGrantHours: z
      .number()
      .positive()
      .max(24 * 30)
      .default(24),
    approvalRules: ApprovalRules,
    restricted: z.array(RestrictedEntry).max(1000).default([]),
  })
  .strict();
export type RegionInput = z.infer<typeof RegionInput>;

export type Region = RegionInput & { code: string; version: number; updatedAt: string };

const rule = (require: Array<[ApprovalRule['require'][number]['stakeholder'], number]>, slaHours: number): ApprovalRule => ({
  require: require.map(([stakeholder, count]) => ({ stakeholder, count })),
  slaHours,
  remindAtPercent: [50, 80],
  onExpiry: 'reject',
});

/** The regions of a fresh installation: the example rules of DESIGN.md. */
export const DEFAULT_REGIONS: Record<string, RegionInput> = {
  eu: {
    name: 'European Union',
    languages: ['en', 'de', 'fr'],
    requireReviewerLanguage: true,
    allowDeanonymization: false,
    revealGrantHours: 24,
    approvalRules: {
      reveal_identity: rule(
        [
          ['privacy', 1],
          ['legal', 1],
        ],
        48,
      ),
      send_notice: rule(
        [
          ['hr', 1],
          ['legal', 1],
        ],
        72,
      ),
      escalate_investigation: rule(
        [
          ['legal', 1],
          ['privacy', 1],
        ],
        72,
      ),
      escalate_hr_action: rule(
        [
          ['hr', 1],
          ['legal', 1],
          ['privacy', 1],
        ],
        72,
      ),
      resolve_confirmed_violation: rule(
        [
          ['legal', 1],
          ['hr', 1],
        ],
        72,
      ),
    },
    restricted: [],
  },
  us: {
    name: 'United States',
    languages: ['en'],
    requireReviewerLanguage: false,
    allowDeanonymization: true,
    revealGrantHours: 24,
    approvalRules: {
      reveal_identity: rule([['legal', 1]], 24),
      send_notice: rule([['hr', 1]], 72),
      escalate_investigation: rule([['legal', 1]], 72),
      escalate_hr_action: rule(
        [
          ['hr', 1],
          ['legal', 1],
        ],
        72,
      ),
      resolve_confirmed_violation: rule([['legal', 1]], 72),
    },
    restricted: [],
  },
};
