import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pageSchema } from '../../api/pagination';
import { ConfirmAlertResult, InboxItem, StepDecisionResult, StepRequestedResult } from '../../api/routes/cases';
import { createActivities } from '../../activities';
import { createLogger } from '../../infra/logger';
import { appendAudit, verifyAuditChain } from '../../db/audit';
import { auditLog, stepDecisions, steps } from '../../db/schema';
import { DEFAULT_REGIONS, type RegionInput } from '../../domain/regions';
import { caseDriver, people, type TestPrincipal } from '../helpers/cases';
import { subjectWithAlerts } from '../helpers/fixtures';
import { startTestSystem, type TestSystem } from '../helpers/system';

let sys: TestSystem;
let drive: ReturnType<typeof caseDriver>;

/** A test region: Legal ×2 for an investigation, reviewers must speak en or de, one Legal approver restricted. */
const REGION = 'tq';
const regionBody = (patch: Partial<RegionInput> = {}): RegionInput => ({
  ...DEFAULT_REGIONS.eu!,
  name: 'Test quorum region',
  languages: ['en', 'de'],
  requireReviewerLanguage: true,
  approvalRules: {
    ...DEFAULT_REGIONS.eu!.approvalRules,
    escalate_investigation: {
      require: [{ stakeholder: 'legal', count: 2 }],
      slaHours: 72,
      remindAtPercent: [50],
      onExpiry: 'reject',
    },
  },
  restricted: [{ sub: 'legal-restricted', stepKinds: ['escalate_investigation'] }],
  ...patch,
});

const investigator: TestPrincipal = { sub: 'inv-tq', roles: ['investigator'], regions: ['*'], languages: ['en'] };
const legalA: TestPrincipal = { sub: 'legal-a', roles: ['approver'], stakeholder: 'legal', regions: ['*'], languages: ['en'] };
const legalB: TestPrincipal = { sub: 'legal-b', roles: ['approver'], stakeholder: 'legal', regions: [REGION], languages: ['de'] };
const legalC: TestPrincipal = {
  sub: 'legal-c',
  roles: ['approver'],
  stakeholder: 'legal',
  regions: [REGION],
  languages: ['en', 'fr'],
};

async function putRegion(body: RegionInput) {
  const res = await sys.http
    .put(`/v1/regions/${REGION}`)
    .set('Authorization', await sys.auth(people.admin))
    .send(body);
  expect([200, 201], JSON.stringify(res.body)).toContain(res.status);
}

async function openCase() {
  const { alerts } = await subjectWithAlerts(sys.db, sys.config, REGION);
  const res = await drive.confirm(alerts[0]!.id, 'Confirmed for approval tests', { ...people.analyst, regions: ['*'] });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return ConfirmAlertResult.parse(res.body).caseId;
}

async function requestInvestigation(caseId: string, who: TestPrincipal = investigator) {
  const res = await drive.requestStep(caseId, 'escalate_investigation', who);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return StepRequestedResult.parse(res.body);
}

beforeAll(async () => {
  sys = await startTestSystem();
  drive = caseDriver(sys, { reader: investigator });
  await putRegion(regionBody());
});
afterAll(async () => sys?.close());

describe('k of n', () => {
  it('an investigation in the test region needs two distinct Legal approvers: the first leaves one remaining', async () => {
    const caseId = await openCase();
    const step = await requestInvestigation(caseId);
    expect(step.requirements).toEqual([{ stakeholder: 'legal', count: 2 }]);

    // Quotes, backslashes and placeholders in a comment are stored as written.
    const comment = `O'Brien said "\\x" then $1 $2; drop table steps; -- ✓`;
    const firstRes = await drive.decide(caseId, step.stepId, legalA, 'approve', comment);
    const first = StepDecisionResult.parse(firstRes.body);
    expect(first.status).toBe('pending');
    const [stored] = await sys.db.select().from(stepDecisions).where(eq(stepDecisions.stepId, step.stepId));
    expect(stored).toMatchObject({ approver: 'legal-a', decision: 'approve', comment });
    expect((await verifyAuditChain(sys.db)).ok).toBe(true);
    // Audited once, with the decision (the same transaction writes both).
    const allowed = await sys.db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.requestId, firstRes.headers['x-request-id']!), eq(auditLog.outcome, 'allowed')));
    expect(allowed).toHaveLength(1);
    expect(allowed[0]).toMatchObject({
      actor: 'legal-a',
      actorRoles: ['approver'],
      action: 'step.decide',
      category: 'approvals',
      targetType: 'step',
      targetId: step.stepId,
      region: REGION,
      details: { caseId, decision: 'approve', stepStatus: 'pending' },
    });
    expect(first.progress).toEqual([{ stakeholder: 'legal', required: 2, approvals: 1, remaining: 1, approvedBy: ['legal-a'] }]);
    const second = StepDecisionResult.parse((await drive.decide(caseId, step.stepId, legalB)).body);
    expect(second.status).toBe('approved');
    expect(second.decisions.map((d) => d.approver)).toEqual(['legal-a', 'legal-b']);
    await drive.readUntil(caseId, (c) => c.status === 'under_investigation', 15_000);
  });
});

describe('veto', () => {
  it('one rejection rejects the step at once; the case stays open and the notes say who rejected it', async () => {
    const caseId = await openCase();
    const step = await requestInvestigation(caseId);
    await drive.decide(caseId, step.stepId, legalA);
    const rejected = await drive.decide(caseId, step.stepId, legalB, 'reject', 'Not proportionate yet');
    expect(StepDecisionResult.parse(rejected.body)).toMatchObject({ status: 'rejected', reason: 'rejected_by_approver' });
    const c = await drive.readUntil(caseId, (x) => x.history.some((h) => h.type === 'step_rejected'));
    expect(c.status).toBe('open');
    expect(c.notes.some((n) => n.body.includes('rejected by legal-b') && n.body.includes('stays open'))).toBe(true);
    const s = c.steps.find((x) => x.stepId === step.stepId)!;
    expect(s).toMatchObject({ status: 'rejected', outcomeReason: 'rejected_by_approver' });
    expect(s.decisions.find((d) => d.approver === 'legal-b')).toMatchObject({
      decision: 'reject',
      comment: 'Not proportionate yet',
    });
    // Rejected is final: a further approval is refused.
    const late = await drive.decide(caseId, step.stepId, legalC);
    expect(late.status).toBe(409);
    expect(late.body.error.details.reason).toBe('step_closed');
    // After a rejection the investigator may ask again.
    expect((await drive.requestStep(caseId, 'escalate_investigation', investigator)).status).toBe(202);
  });
});

describe('eligibility: each refusal is a 403 naming its reason, audited as denied, and changes nothing', () => {
  it('refuses outside the region, the wrong stakeholder, no region language, the restricted list, the requester, and a second decision', async () => {
    const caseId = await openCase();
    const requesterApprover: TestPrincipal = {
      sub: 'inv-approver',
      roles: ['investigator', 'approver'],
      stakeholder: 'legal',
      regions: ['*'],
      languages: ['en'],
    };
    const step = await requestInvestigation(caseId, requesterApprover);
    await drive.decide(caseId, step.stepId, legalA);

    const cases: Array<[string, TestPrincipal]> = [
      ['not_in_region', { sub: 'legal-us', roles: ['approver'], stakeholder: 'legal', regions: ['us'], languages: ['en'] }],
      ['wrong_stakeholder', { sub: 'hr-tq', roles: ['approver'], stakeholder: 'hr', regions: ['*'], languages: ['en'] }],
      ['language_not_spoken', { sub: 'legal-fr', roles: ['approver'], stakeholder: 'legal', regions: ['*'], languages: ['fr'] }],
      ['restricted', { sub: 'legal-restricted', roles: ['approver'], stakeholder: 'legal', regions: ['*'], languages: ['en'] }],
      ['requester_cannot_approve', requesterApprover],
      ['already_decided', legalA],
    ];
    for (const [reason, who] of cases) {
      const res = await drive.decide(caseId, step.stepId, who);
      expect(res.status, `${reason}: ${JSON.stringify(res.body)}`).toBe(403);
      expect(res.body.error.details.reason).toBe(reason);
      const [entry] = await sys.db
        .select()
        .from(auditLog)
        .where(and(eq(auditLog.requestId, res.headers['x-request-id']!), eq(auditLog.outcome, 'denied')));
      expect(entry, reason).toMatchObject({
        actor: who.sub,
        action: 'step.decide',
        reason,
        targetId: step.stepId,
        region: REGION,
      });
    }
    const decisions = await sys.db.select().from(stepDecisions).where(eq(stepDecisions.stepId, step.stepId));
    expect(decisions.map((d) => d.approver)).toEqual(['legal-a']);
    const [row] = await sys.db.select().from(steps).where(eq(steps.id, step.stepId));
    expect(row!.status).toBe('pending');
  });

  it('the workflow’s own validator refuses too (the API’s read model is not the last word)', async () => {
    const caseId = await openCase();
    const step = await requestInvestigation(caseId);
    const handle = sys.client.workflow.getHandle(`case-${caseId}-step-${step.stepId}`);
    const { decideStepUpdate } = await import('../../workflows/definitions');
    await expect(
      handle.executeUpdate(decideStepUpdate, {
        args: [
          {
            decision: 'approve',
            comment: 'x',
            actor: { sub: investigator.sub, roles: ['approver'], stakeholder: 'legal', regions: ['*'], languages: ['en'] },
          },
        ],
      }),
    ).rejects.toMatchObject({ cause: { type: 'forbidden', details: [{ reason: 'requester_cannot_approve' }] } });
  });
});

describe('duplicate and concurrent decisions', () => {
  it('the same approver deciding twice at the same moment gets one decision recorded and one already_decided', async () => {
    const caseId = await openCase();
    const step = await requestInvestigation(caseId);
    const results = await Promise.all([drive.decide(caseId, step.stepId, legalA), drive.decide(caseId, step.stepId, legalA)]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 403]);
    expect(results.find((r) => r.status === 403)!.body.error.details.reason).toBe('already_decided');
    const decisions = await sys.db.select().from(stepDecisions).where(eq(stepDecisions.stepId, step.stepId));
    expect(decisions).toHaveLength(1);
    const view = StepDecisionResult.parse(results.find((r) => r.status === 200)!.body);
    expect(view.progress[0]!.approvals).toBe(1);
  });

  it('two distinct approvers deciding at the same moment both count, and the step is approved once', async () => {
    const caseId = await openCase();
    const step = await requestInvestigation(caseId);
    const results = await Promise.all([drive.decide(caseId, step.stepId, legalA), drive.decide(caseId, step.stepId, legalB)]);
    expect(results.map((r) => r.status)).toEqual([200, 200]);
    expect(results.map((r) => StepDecisionResult.parse(r.body).status).sort()).toEqual(['approved', 'pending']);
    const c = await drive.readUntil(caseId, (x) => x.status === 'under_investigation');
    expect(c.history.filter((h) => h.type === 'stage_changed')).toHaveLength(1);
  });
});

describe('the audit chain under concurrent decisions', () => {
  it('decisions on several steps at once, beside other audited writes, leave one unbroken chain with one entry per decision', async () => {
    const opened = await Promise.all(Array.from({ length: 4 }, () => openCase()));
    const stepsOf = await Promise.all(opened.map((caseId) => requestInvestigation(caseId)));
    const before = (await sys.db.select().from(auditLog)).length;
    const results = await Promise.all([
      ...opened.flatMap((caseId, i) => [legalA, legalB].map((who) => drive.decide(caseId, stepsOf[i]!.stepId, who))),
      ...Array.from({ length: 16 }, (_, i) =>
        appendAudit(sys.db, { actor: 'test', action: 'test.append', category: 'system', outcome: 'allowed', details: { i } }),
      ),
    ]);
    expect(results.slice(0, 8).map((r) => (r as { status: number }).status)).toEqual(Array(8).fill(200));
    const decided = await sys.db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.action, 'step.decide'), eq(auditLog.outcome, 'allowed')));
    for (const st of stepsOf) expect(decided.filter((e) => e.targetId === st.stepId)).toHaveLength(2);
    const verified = await verifyAuditChain(sys.db);
    expect(verified.ok, JSON.stringify(verified.firstBroken)).toBe(true);
    expect(verified.checked).toBeGreaterThanOrEqual(before + 8 + 16);
  });

  it('two approvers’ projections landing out of version order still store and audit both decisions', async () => {
    const caseId = await openCase();
    const step = await requestInvestigation(caseId);
    const [row] = await sys.db.select().from(steps).where(eq(steps.id, step.stepId));
    const { projectStep } = createActivities({ db: sys.db, logger: createLogger({ level: 'warn' }), config: sys.config });
    const state = (version: number, approvals: number) => ({
      status: 'pending' as const,
      reason: null,
      requirements: row!.requirements,
      progress: [{ stakeholder: 'legal' as const, required: 2, approvals, remaining: 2 - approvals, approvedBy: [] }],
      outstanding: ['legal' as const],
      escalated: false,
      dueAt: row!.dueAt.toISOString(),
      decidedAt: null,
      version,
    });
    const decision = (approver: string) => ({
      approver,
      stakeholder: 'legal' as const,
      decision: 'approve' as const,
      comment: 'ok',
      at: new Date().toISOString(),
      requestId: `req-${approver}`,
    });
    const audit = { actorRoles: ['approver'], caseId, region: REGION };
    // The second decision's projection (version +2) commits first; the first's (+1) arrives late.
    const newer = await projectStep({
      stepId: step.stepId,
      state: state(row!.version + 2, 2),
      decision: decision('late-b'),
      audit,
    });
    const older = await projectStep({
      stepId: step.stepId,
      state: state(row!.version + 1, 1),
      decision: decision('late-a'),
      audit,
    });
    expect([newer.applied, older.applied]).toEqual([true, false]); // the step row keeps the newer state
    const decided = await sys.db.select().from(stepDecisions).where(eq(stepDecisions.stepId, step.stepId));
    expect(decided.map((d) => d.approver).sort()).toEqual(['late-a', 'late-b']);
    const entries = await sys.db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.action, 'step.decide'), eq(auditLog.targetId, step.stepId)));
    expect(entries.map((e) => e.actor).sort()).toEqual(['late-a', 'late-b']);
    // A retry of either projection stores and audits nothing more.
    await projectStep({ stepId: step.stepId, state: state(row!.version + 1, 1), decision: decision('late-a'), audit });
    expect(
      await sys.db
        .select()
        .from(auditLog)
        .where(and(eq(auditLog.action, 'step.decide'), eq(auditLog.targetId, step.stepId))),
    ).toHaveLength(2);
  });
});

describe('rules are snapshotted', () => {
  it('a rule changed after a step was requested does not affect it; the next step gets the new rule', async () => {
    const caseId = await openCase();
    const step = await requestInvestigation(caseId); // Legal ×2
    await putRegion(
      regionBody({
        approvalRules: {
          ...DEFAULT_REGIONS.eu!.approvalRules,
          escalate_investigation: {
            require: [
              { stakeholder: 'legal', count: 1 },
              { stakeholder: 'compliance', count: 1 },
            ],
            slaHours: 24,
            remindAtPercent: [],
            onExpiry: 'reject',
          },
        },
      }),
    );
    try {
      // Still two Legal approvers; Compliance is not asked for this step.
      const compliance: TestPrincipal = {
        sub: 'compliance-tq',
        roles: ['approver'],
        stakeholder: 'compliance',
        regions: ['*'],
        languages: ['en'],
      };
      const refused = await drive.decide(caseId, step.stepId, compliance);
      expect(refused.body.error?.details?.reason).toBe('wrong_stakeholder');
      expect(StepDecisionResult.parse((await drive.decide(caseId, step.stepId, legalA)).body).status).toBe('pending');
      expect(StepDecisionResult.parse((await drive.decide(caseId, step.stepId, legalC)).body).status).toBe('approved');

      const other = await openCase();
      const next = await requestInvestigation(other);
      expect(next.requirements).toEqual([
        { stakeholder: 'legal', count: 1 },
        { stakeholder: 'compliance', count: 1 },
      ]);
    } finally {
      await putRegion(regionBody());
    }
  });
});

describe('the approver inbox', () => {
  it('lists the steps waiting for the caller only: not decided by them, not requested by them, their stakeholder, their language', async () => {
    const caseId = await openCase();
    const step = await requestInvestigation(caseId);
    const Inbox = pageSchema(InboxItem);
    const ids = async (who: TestPrincipal) => {
      const res = await drive.inbox(who);
      expect(res.status).toBe(200);
      return Inbox.parse(res.body).items.map((i) => i.stepId);
    };
    expect(await ids(legalA)).toContain(step.stepId);
    expect(await ids(legalB)).toContain(step.stepId);
    expect(await ids({ sub: 'hr-tq', roles: ['approver'], stakeholder: 'hr', regions: ['*'], languages: ['en'] })).not.toContain(
      step.stepId,
    );
    expect(
      await ids({ sub: 'legal-fr', roles: ['approver'], stakeholder: 'legal', regions: ['*'], languages: ['fr'] }),
    ).not.toContain(step.stepId);
    expect(
      await ids({ sub: 'legal-restricted', roles: ['approver'], stakeholder: 'legal', regions: ['*'], languages: ['en'] }),
    ).not.toContain(step.stepId);
    expect(
      await ids({ sub: 'legal-us', roles: ['approver'], stakeholder: 'legal', regions: ['us'], languages: ['en'] }),
    ).not.toContain(step.stepId);
    await drive.decide(caseId, step.stepId, legalA);
    expect(await ids(legalA)).not.toContain(step.stepId);
    expect(await ids(legalB)).toContain(step.stepId);
  });
});
