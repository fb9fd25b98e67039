import { describe, expect, it } from 'vitest';
import {
  canRequestStep,
  canResolve,
  checkApprover,
  escalateRequirements,
  maxSeverity,
  reminderOffsets,
  slaMilliseconds,
  stageAfterApproval,
  tally,
  type DecisionRecord,
  type StepRuleSnapshot,
} from '../../domain/cases';

const rule: StepRuleSnapshot = {
  region: 'eu',
  regionVersion: 3,
  require: [
    { stakeholder: 'legal', count: 2 },
    { stakeholder: 'privacy', count: 1 },
  ],
  slaHours: 48,
  remindAtPercent: [50, 80],
  onExpiry: 'reject',
  languages: ['en', 'de'],
  requireReviewerLanguage: true,
  restricted: ['blocked-1'],
};
const step = { rule, requirements: rule.require, requestedBy: 'inv-1', decisions: [] as DecisionRecord[] };
const legal = { sub: 'legal-1', roles: ['approver'], stakeholder: 'legal' as const, regions: ['eu'], languages: ['de'] };
const d = (
  approver: string,
  stakeholder: DecisionRecord['stakeholder'],
  decision: DecisionRecord['decision'] = 'approve',
): DecisionRecord => ({
  approver,
  stakeholder,
  decision,
  comment: 'ok',
  at: '2026-01-01T00:00:00.000Z',
});

describe('approver eligibility', () => {
  it('an eligible Legal approver of the region who speaks German may decide an EU step', () => {
    expect(checkApprover(legal, step)).toEqual({ ok: true });
  });
  it('an approver with the * region claim covers every region', () => {
    expect(checkApprover({ ...legal, regions: ['*'] }, step).ok).toBe(true);
  });
  it.each([
    ['not_approver', { ...legal, roles: ['investigator'] }, step],
    ['not_approver', { ...legal, stakeholder: undefined }, step],
    ['not_in_region', { ...legal, regions: ['us'] }, step],
    ['wrong_stakeholder', { ...legal, stakeholder: 'hr' as const }, step],
    ['language_not_spoken', { ...legal, languages: ['fr'] }, step],
    ['restricted', { ...legal, sub: 'blocked-1' }, step],
    ['requester_cannot_approve', { ...legal, sub: 'inv-1' }, step],
    ['already_decided', legal, { ...step, decisions: [d('legal-1', 'legal')] }],
  ] as const)('refuses with %s', (reason, approver, s) => {
    const r = checkApprover(approver, s);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toBe(reason);
    expect(!r.ok && r.message.length).toBeGreaterThan(10);
  });
  it('does not ask for a language where the region does not require one', () => {
    expect(checkApprover({ ...legal, languages: [] }, { ...step, rule: { ...rule, requireReviewerLanguage: false } }).ok).toBe(
      true,
    );
  });
  it('accepts the escalation stakeholder once it was added to the requirements', () => {
    const compliance = { ...legal, stakeholder: 'compliance' as const };
    expect(checkApprover(compliance, step).ok).toBe(false);
    expect(checkApprover(compliance, { ...step, requirements: escalateRequirements(rule.require, 'compliance') }).ok).toBe(true);
  });
});

describe('quorum', () => {
  it('k distinct approvers of each stakeholder approve the step', () => {
    expect(tally(rule.require, [d('l1', 'legal'), d('p1', 'privacy')])).toMatchObject({
      status: 'pending',
      outstanding: ['legal'],
    });
    const t = tally(rule.require, [d('l1', 'legal'), d('p1', 'privacy'), d('l2', 'legal')]);
    expect(t.status).toBe('approved');
    expect(t.progress).toEqual([
      { stakeholder: 'legal', required: 2, approvals: 2, remaining: 0, approvedBy: ['l1', 'l2'] },
      { stakeholder: 'privacy', required: 1, approvals: 1, remaining: 0, approvedBy: ['p1'] },
    ]);
  });
  it('the same approver counted twice is still one approval', () => {
    expect(tally(rule.require, [d('l1', 'legal'), d('l1', 'legal'), d('p1', 'privacy')]).status).toBe('pending');
  });
  it('any rejection vetoes, even after the quorum of another stakeholder', () => {
    expect(tally(rule.require, [d('l1', 'legal'), d('l2', 'legal'), d('p1', 'privacy', 'reject')])).toMatchObject({
      status: 'rejected',
      rejectedBy: 'p1',
    });
  });
  it('escalation adds one approver of the role, or raises its count', () => {
    expect(escalateRequirements(rule.require, 'compliance')).toEqual([...rule.require, { stakeholder: 'compliance', count: 1 }]);
    expect(escalateRequirements(rule.require, 'legal')[0]).toEqual({ stakeholder: 'legal', count: 3 });
  });
});

describe('stage transitions', () => {
  const c = { status: 'open' as const, pendingKinds: [], violationApproved: false };
  it('escalations move a case forward only', () => {
    expect(stageAfterApproval('open', 'escalate_investigation')).toBe('under_investigation');
    expect(stageAfterApproval('under_investigation', 'escalate_hr_action')).toBe('hr_action');
    expect(stageAfterApproval('hr_action', 'escalate_investigation')).toBe('hr_action');
    expect(stageAfterApproval('open', 'reveal_identity')).toBe('open');
    expect(canRequestStep({ ...c, status: 'under_investigation' }, 'escalate_investigation')).toMatchObject({
      ok: false,
      reason: 'stage_passed',
    });
    expect(canRequestStep({ ...c, status: 'open' }, 'escalate_hr_action').ok).toBe(true);
  });
  it('one pending step per kind; nothing on a closed case', () => {
    expect(canRequestStep({ ...c, pendingKinds: ['reveal_identity'] }, 'reveal_identity')).toMatchObject({
      reason: 'step_pending',
    });
    expect(canRequestStep({ ...c, status: 'closed' }, 'send_notice')).toMatchObject({ reason: 'case_closed' });
  });
  it('benign closes directly; a confirmed violation needs its approved step', () => {
    expect(canResolve(c, 'benign').ok).toBe(true);
    expect(canResolve(c, 'confirmed_violation')).toMatchObject({ ok: false, reason: 'approval_required' });
    expect(canResolve({ ...c, violationApproved: true }, 'confirmed_violation').ok).toBe(true);
    expect(canResolve({ ...c, status: 'closed' }, 'benign')).toMatchObject({ reason: 'case_closed' });
  });
});

describe('SLA and severities', () => {
  it('reminders fall at the rule’s percentages of the scaled SLA', () => {
    const sla = slaMilliseconds(48, 1);
    expect(sla).toBe(48 * 3_600_000);
    expect(reminderOffsets(sla, [80, 50])).toEqual([24 * 3_600_000, Math.round(0.8 * sla)]);
    expect(slaMilliseconds(1, 0.0005)).toBe(1800);
  });
  it('a case takes the highest severity of its alerts', () => {
    expect(maxSeverity('low', 'high')).toBe('high');
    expect(maxSeverity('medium', 'low')).toBe('medium');
    expect(maxSeverity(null, 'low')).toBe('low');
  });
});
