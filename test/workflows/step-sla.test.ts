/**
 * SLA timers of approval steps on the real dev server, with durations shrunk by SLA_TIME_SCALE:
 * a 1-hour SLA lasts 10 s here, so reminders (30 %, 60 %) fall at 3 s and 6 s.
 */
import { asc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfirmAlertResult, StepDecisionResult, StepRequestedResult } from '../../api/routes/cases';
import { notifications, steps } from '../../db/schema';
import { DEFAULT_REGIONS } from '../../domain/regions';
import { caseDriver, people, waitFor, type TestPrincipal } from '../helpers/cases';
import { subjectWithAlerts } from '../helpers/fixtures';
import { startTestSystem, type TestSystem } from '../helpers/system';

const SLA_MS = 10_000;
let sys: TestSystem;
let drive: ReturnType<typeof caseDriver>;
const REGION = 'sl';
const investigator: TestPrincipal = { sub: 'inv-sla', roles: ['investigator'], regions: ['*'], languages: ['en'] };
const legal: TestPrincipal = { ...people.legal, regions: ['*'] };
const compliance: TestPrincipal = { ...people.compliance, regions: ['*'] };

beforeAll(async () => {
  sys = await startTestSystem({ env: { SLA_TIME_SCALE: String(SLA_MS / 3_600_000) } });
  drive = caseDriver(sys, { reader: investigator });
  const res = await sys.http
    .put(`/v1/regions/${REGION}`)
    .set('Authorization', await sys.auth(people.admin))
    .send({
      ...DEFAULT_REGIONS.us!,
      name: 'SLA test region',
      approvalRules: {
        escalate_investigation: {
          require: [
            { stakeholder: 'legal', count: 1 },
            { stakeholder: 'privacy', count: 1 },
          ],
          slaHours: 1,
          remindAtPercent: [30, 60],
          onExpiry: 'reject',
        },
        escalate_hr_action: {
          require: [{ stakeholder: 'legal', count: 1 }],
          slaHours: 1,
          remindAtPercent: [],
          onExpiry: 'escalate',
          escalateTo: 'compliance',
        },
      },
    });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
});
afterAll(async () => sys?.close());

async function openCase() {
  const { alerts } = await subjectWithAlerts(sys.db, sys.config, REGION);
  return ConfirmAlertResult.parse((await drive.confirm(alerts[0]!.id, 'SLA test', { ...people.analyst, regions: ['*'] })).body)
    .caseId;
}

const notesOf = (stepId: string) =>
  sys.db
    .select()
    .from(notifications)
    .where(eq(notifications.stepId, stepId))
    .orderBy(asc(notifications.createdAt), asc(notifications.id));

describe('SLA reminders and expiry', () => {
  it('reminds every stakeholder that has not decided at each point, then expires the step and leaves the stage as it was', async () => {
    const caseId = await openCase();
    const req = await drive.requestStep(caseId, 'escalate_investigation', investigator);
    const step = StepRequestedResult.parse(req.body);
    expect(Date.parse(step.dueAt) - Date.now()).toBeLessThanOrEqual(SLA_MS);

    // First reminder (30 %): Legal and Privacy both owe an approval.
    const first = await waitFor(
      () => notesOf(step.stepId),
      (rows) => rows.length >= 2,
      8_000,
    );
    expect(first.map((n) => [n.kind, n.stakeholder, n.details.index])).toEqual([
      ['reminder', 'legal', 0],
      ['reminder', 'privacy', 0],
    ]);
    expect(first[0]!.dueAt.toISOString()).toBe(step.dueAt);

    // Legal decides; the second reminder (60 %) goes to Privacy only.
    expect(StepDecisionResult.parse((await drive.decide(caseId, step.stepId, legal)).body).status).toBe('pending');
    const second = await waitFor(
      () => notesOf(step.stepId),
      (rows) => rows.length >= 3,
      8_000,
    );
    expect(second.slice(2).map((n) => [n.kind, n.stakeholder, n.details.index])).toEqual([['reminder', 'privacy', 1]]);

    // The deadline passes: the rule's expiry action (reject) ends the step.
    const [row] = await waitFor(
      () => sys.db.select().from(steps).where(eq(steps.id, step.stepId)),
      (r) => r[0]?.status !== 'pending',
      15_000,
    );
    expect(row).toMatchObject({ status: 'expired', outcomeReason: 'sla_expired' });
    const c = await drive.readUntil(caseId, (x) => x.history.some((h) => h.type === 'step_expired'), 20_000);
    expect(c.status).toBe('open');
    expect(c.notes.some((n) => n.body.includes('expired') && n.body.includes('stays open'))).toBe(true);
    // A decision after expiry is refused.
    const late = await drive.decide(caseId, step.stepId, { ...people.privacy, regions: ['*'] });
    expect(late.status).toBe(409);
    expect((await notesOf(step.stepId)).length).toBe(3);
  });

  it('an expiry that escalates adds the escalation approver role and another SLA period; the step can then be approved', async () => {
    const caseId = await openCase();
    const step = StepRequestedResult.parse((await drive.requestStep(caseId, 'escalate_hr_action', investigator)).body);
    expect(step.requirements).toEqual([{ stakeholder: 'legal', count: 1 }]);
    // Compliance is not asked before the escalation.
    expect((await drive.decide(caseId, step.stepId, compliance)).body.error.details.reason).toBe('wrong_stakeholder');

    const [escalated] = await waitFor(
      () => sys.db.select().from(steps).where(eq(steps.id, step.stepId)),
      (r) => r[0]?.escalated === true,
      20_000,
    );
    expect(escalated).toMatchObject({ status: 'pending', escalated: true });
    expect(escalated!.requirements).toEqual([
      { stakeholder: 'legal', count: 1 },
      { stakeholder: 'compliance', count: 1 },
    ]);
    expect(escalated!.dueAt.getTime() - Date.parse(step.dueAt)).toBe(SLA_MS);
    const sent = await waitFor(
      () => notesOf(step.stepId),
      (rows) => rows.length >= 1,
      5_000,
    );
    expect(sent.map((n) => [n.kind, n.stakeholder])).toEqual([['escalation', 'compliance']]);

    expect(StepDecisionResult.parse((await drive.decide(caseId, step.stepId, legal)).body).status).toBe('pending');
    expect(StepDecisionResult.parse((await drive.decide(caseId, step.stepId, compliance)).body).status).toBe('approved');
    await drive.readUntil(caseId, (x) => x.status === 'hr_action', 20_000);
  });
});
