/**
 * GET /v1/cases/{id}/history for auditors, on a real case: its workflow continued as new, two step
 * workflows (one approved by Legal and Privacy, one expired by its SLA timer), resolved. Read live,
 * then from the archive written as each run closed — also after Temporal deleted every history —
 * and downloaded raw for replay.
 */
import { Worker } from '@temporalio/worker';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ConfirmAlertResult, StepDecisionResult, StepRequestedResult } from '../../api/routes/cases';
import { CaseHistoryPage } from '../../api/routes/history';
import { auditLog, workflowHistoryArchive } from '../../db/schema';
import { DEFAULT_REGIONS } from '../../domain/regions';
import { createDataConverter } from '../../infra/temporal';
import { workflowIds } from '../../workflows/definitions';
import { caseDriver, people, waitFor, type TestPrincipal } from '../helpers/cases';
import { subjectWithAlerts } from '../helpers/fixtures';
import { startTestSystem, type TestSystem } from '../helpers/system';

const SLA_MS = 3_000;
const REGION = 'hx';
const all = (p: TestPrincipal): TestPrincipal => ({ ...p, regions: ['*'] });
const investigator = all(people.investigator);
const auditor = all(people.auditor);

let sys: TestSystem;
let drive: ReturnType<typeof caseDriver>;
let caseId: string;
let wfId: string;
let approvedStep: string;
let expiredStep: string;
type Page = ReturnType<typeof CaseHistoryPage.parse>;

beforeAll(async () => {
  sys = await startTestSystem({ env: { SLA_TIME_SCALE: String(SLA_MS / 3_600_000), CASE_CONTINUE_AS_NEW_AFTER_EVENTS: '40' } });
  drive = caseDriver(sys, { reader: investigator });
  const region = await sys.http
    .put(`/v1/regions/${REGION}`)
    .set('Authorization', await sys.auth(people.admin))
    .send({
      ...DEFAULT_REGIONS.us!,
      name: 'History test region',
      approvalRules: {
        escalate_investigation: {
          require: [
            { stakeholder: 'legal', count: 1 },
            { stakeholder: 'privacy', count: 1 },
          ],
          slaHours: 100,
          remindAtPercent: [50],
          onExpiry: 'reject',
        },
        escalate_hr_action: {
          require: [{ stakeholder: 'hr', count: 1 }],
          slaHours: 1,
          remindAtPercent: [50],
          onExpiry: 'reject',
        },
      },
    });
  expect(region.status, JSON.stringify(region.body)).toBe(201);

  // The case's life: confirmed, an escalation approved by two stakeholders, many notes (the
  // workflow continues as new), an HR escalation left to expire, then resolved.
  const { alerts } = await subjectWithAlerts(sys.db, sys.config, REGION);
  caseId = ConfirmAlertResult.parse(
    (await drive.confirm(alerts[0]!.id, 'Confirmed for the history test', all(people.analyst))).body,
  ).caseId;
  wfId = workflowIds.case(caseId);
  approvedStep = StepRequestedResult.parse((await drive.requestStep(caseId, 'escalate_investigation', investigator)).body).stepId;
  expect(StepDecisionResult.parse((await drive.decide(caseId, approvedStep, all(people.legal))).body).status).toBe('pending');
  expect(StepDecisionResult.parse((await drive.decide(caseId, approvedStep, all(people.privacy))).body).status).toBe('approved');
  await drive.readUntil(caseId, (c) => c.status === 'under_investigation');
  const auth = await sys.auth(investigator);
  for (let i = 0; i < 30; i++) {
    const res = await sys.http
      .post(`/v1/cases/${caseId}/notes`)
      .set('Authorization', auth)
      .send({ body: `history note ${i}` });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
  }
  expiredStep = StepRequestedResult.parse((await drive.requestStep(caseId, 'escalate_hr_action', investigator)).body).stepId;
  await drive.readUntil(caseId, (c) => c.steps.some((s) => s.stepId === expiredStep && s.status === 'expired'), 20_000);
  expect((await drive.resolve(caseId, 'benign', 'Explained by a project handover', investigator)).status).toBe(200);
  await sys.client.workflow.getHandle(wfId).result();
}, 120_000);
afterAll(async () => sys?.close());

async function readAll(who: TestPrincipal = auditor, limit = 40): Promise<{ first: Page; items: Page['items'] }> {
  const authz = await sys.auth(who);
  let cursor: string | null = null;
  let first: Page | undefined;
  const items: Page['items'] = [];
  do {
    const res = await sys.http
      .get(`/v1/cases/${caseId}/history?limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`)
      .set('Authorization', authz);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const page = CaseHistoryPage.parse(res.body);
    first ??= page;
    items.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return { first: first!, items };
}

const stepWf = (stepId: string) => workflowIds.step(caseId, stepId);

describe('GET /v1/cases/{id}/history', () => {
  it('joins every run of the case workflow and both step workflows, and pages without gaps', async () => {
    const { first, items } = await readAll();
    expect(first.complete).toBe(true);
    const caseRuns = first.workflows.filter((w) => w.workflowId === wfId);
    expect(caseRuns.length).toBeGreaterThanOrEqual(2);
    expect(caseRuns.map((r) => r.run)).toEqual(caseRuns.map((_, i) => i + 1));
    expect(caseRuns.slice(0, -1).every((r) => r.status === 'continued_as_new')).toBe(true);
    expect(caseRuns.at(-1)!.status).toBe('completed');
    for (let i = 1; i < caseRuns.length; i++) expect(caseRuns[i]!.continuedFromRunId).toBe(caseRuns[i - 1]!.runId);
    expect(
      first.workflows
        .filter((w) => w.workflowType === 'stepWorkflow')
        .map((w) => w.workflowId)
        .sort(),
    ).toEqual([stepWf(approvedStep), stepWf(expiredStep)].sort());
    expect(items.map((e) => e.position)).toEqual(items.map((_, i) => i + 1));
    const perWorkflowEvents = new Set(items.map((e) => `${e.runId}/${e.eventId}`));
    expect(perWorkflowEvents.size).toBe(items.length);
  });

  it('is readable: who opened the case, who requested, who decided what, timers fired, the resolution', async () => {
    const { items } = await readAll();
    const one = (pred: (e: Page['items'][number]) => boolean, what: string) => {
      const found = items.filter(pred);
      expect(found.length, what).toBeGreaterThan(0);
      return found[0]!;
    };
    const opened = one((e) => e.workflowId === wfId && e.run === 1 && e.type === 'WorkflowExecutionStarted', 'case start');
    expect(opened.actor?.sub).toBe(people.analyst.sub);
    expect(opened.summary).toBe(`caseWorkflow started by ${people.analyst.sub}`);

    const requested = items.filter((e) => e.type === 'WorkflowExecutionUpdateAccepted' && e.details.update === 'requestStep');
    expect(requested.map((e) => [e.actor?.sub, (e.details.input as Array<{ kind: string }>)[0]!.kind])).toEqual([
      [investigator.sub, 'escalate_investigation'],
      [investigator.sub, 'escalate_hr_action'],
    ]);
    const decisions = items.filter((e) => e.type === 'WorkflowExecutionUpdateAccepted' && e.details.update === 'decideStep');
    expect(
      decisions.map((e) => [
        e.workflowId,
        e.actor?.sub,
        e.actor?.stakeholder,
        (e.details.input as Array<{ decision: string }>)[0]!.decision,
      ]),
    ).toEqual([
      [stepWf(approvedStep), people.legal.sub, 'legal', 'approve'],
      [stepWf(approvedStep), people.privacy.sub, 'privacy', 'approve'],
    ]);
    expect(decisions[0]!.summary).toBe(`${people.legal.sub} called decideStep (accepted)`);

    // The expired step: its SLA timers fired, with no decision.
    const timersFired = items.filter((e) => e.workflowId === stepWf(expiredStep) && e.type === 'TimerFired');
    expect(timersFired.length).toBeGreaterThanOrEqual(1);
    const finished = items.filter((e) => e.type === 'WorkflowExecutionSignaled' && e.details.signal === 'stepFinished');
    expect(finished.map((e) => (e.details.input as Array<{ status: string }>)[0]!.status)).toEqual(['approved', 'expired']);

    const notes = items.filter((e) => e.type === 'WorkflowExecutionUpdateAccepted' && e.details.update === 'addNote');
    expect(notes).toHaveLength(30);
    expect(new Set(notes.map((e) => e.actor?.sub))).toEqual(new Set([investigator.sub]));
    expect(items.filter((e) => e.type === 'WorkflowExecutionContinuedAsNew').length).toBeGreaterThanOrEqual(1);

    const resolved = one((e) => e.type === 'WorkflowExecutionUpdateAccepted' && e.details.update === 'resolveCase', 'resolve');
    expect(resolved.actor?.sub).toBe(investigator.sub);
    expect(resolved.details.input).toMatchObject([{ outcome: 'benign', actionTaken: 'Explained by a project handover' }]);
    const done = one((e) => e.workflowId === wfId && e.type === 'WorkflowExecutionCompleted', 'case completed');
    expect(done.details.result).toMatchObject({ caseId, status: 'closed' });
    // Projections run as local activities: named in the history too.
    expect(items.some((e) => e.summary === 'local activity projectCase completed')).toBe(true);
  });

  it('every read is audited; another region’s case is a 404 audited as denied; other roles are refused', async () => {
    const page = await sys.http.get(`/v1/cases/${caseId}/history?limit=5`).set('Authorization', await sys.auth(auditor));
    const [read] = await sys.db.select().from(auditLog).where(eq(auditLog.requestId, page.headers['x-request-id']!));
    expect(read).toMatchObject({
      action: 'case.history.read',
      outcome: 'allowed',
      targetId: caseId,
      region: REGION,
      actor: auditor.sub,
    });

    const usAuditor = { sub: 'auditor-us', roles: ['auditor'], regions: ['us'] } as TestPrincipal;
    const out = await sys.http.get(`/v1/cases/${caseId}/history`).set('Authorization', await sys.auth(usAuditor));
    expect(out.status).toBe(404);
    const [denied] = await sys.db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.requestId, out.headers['x-request-id']!)));
    expect(denied).toMatchObject({ action: 'case.history.read', outcome: 'denied', actor: 'auditor-us', region: REGION });
    expect((await sys.http.get(`/v1/cases/${caseId}/history`).set('Authorization', await sys.auth(investigator))).status).toBe(
      403,
    );
  });
});

describe('the case in the audit log', () => {
  it('holds the commands and the automatic transitions: the SLA reminder and the expiry of the step nobody decided', async () => {
    const res = await sys.http
      .get(`/v1/audit?caseId=${caseId}&order=asc&limit=1000`)
      .set('Authorization', await sys.auth(auditor));
    expect(res.status).toBe(200);
    const entries = res.body.items as Array<{ action: string; actor: string; targetId: string; region: string }>;
    const actions = entries.map((e) => e.action);
    for (const a of ['case.step.request', 'step.decide', 'case.note', 'case.resolve']) expect(actions, a).toContain(a);
    const automatic = entries.filter((e) => e.actor === 'system:sla');
    expect(automatic.map((e) => [e.action, e.targetId])).toEqual([
      ['step.reminder', expiredStep],
      ['step.expire', expiredStep],
    ]);
    expect(automatic.every((e) => e.region === REGION)).toBe(true);
  });
});

describe('the archive of a closed case', () => {
  it('every run and both steps are archived once closed; the history is then served from it, even after Temporal deleted everything', async () => {
    const live = await readAll();
    const expected = live.first.workflows.length;
    const rows = await waitFor(
      () => sys.db.select().from(workflowHistoryArchive).where(eq(workflowHistoryArchive.rootWorkflowId, wfId)),
      (r) => r.length === expected,
      30_000,
    );
    expect(rows).toHaveLength(expected);
    const fromArchive = await readAll();
    expect(fromArchive.first.source).toBe('archive');

    const ns = sys.config.temporal.namespace;
    for (const w of live.first.workflows) {
      await sys.client.workflowService.deleteWorkflowExecution({
        namespace: ns,
        workflowExecution: { workflowId: w.workflowId, runId: w.runId },
      });
    }
    await waitFor(
      () =>
        sys.client.workflow
          .getHandle(wfId)
          .describe()
          .then(
            () => 'still there',
            () => 'gone',
          ),
      (s) => s === 'gone',
      60_000,
    );
    const afterDeletion = await readAll();
    expect(afterDeletion.first).toMatchObject({ source: 'archive', complete: true });
    expect(afterDeletion.items.map((e) => [e.workflowId, e.type, e.summary, e.actor?.sub ?? null])).toEqual(
      live.items.map((e) => [e.workflowId, e.type, e.summary, e.actor?.sub ?? null]),
    );
  }, 120_000);

  it('the raw download holds every run, still encrypted, and the case run replays against the workflow code', async () => {
    const res = await sys.http
      .get(`/v1/cases/${caseId}/history/raw`)
      .set('Authorization', await sys.auth(auditor))
      .buffer(true)
      .parse((r, cb) => {
        let d = '';
        r.setEncoding('utf8');
        r.on('data', (c: string) => (d += c));
        r.on('end', () => cb(null, d));
      });
    expect(res.status).toBe(200);
    expect(res.headers['content-disposition']).toBe(`attachment; filename="case-${caseId}-history.json"`);
    const doc = JSON.parse(res.body as string) as {
      caseId: string;
      runs: Array<{ workflowId: string; runId: string; workflowType: string; history: unknown }>;
    };
    expect(doc.caseId).toBe(caseId);
    expect(doc.runs.filter((r) => r.workflowId === wfId).length).toBeGreaterThanOrEqual(2);
    expect(res.body).not.toContain('Explained by a project handover');
    expect(res.body).not.toContain('history note');
    const lastRun = doc.runs.filter((r) => r.workflowId === wfId).at(-1)!;
    await Worker.runReplayHistory(
      {
        workflowBundle: { codePath: inject('workflowBundlePath') },
        dataConverter: createDataConverter(sys.config),
        replayName: 'case',
      },
      historyFromJSON(lastRun.history),
      wfId,
    );
    const [download] = await sys.db.select().from(auditLog).where(eq(auditLog.requestId, res.headers['x-request-id']!));
    expect(download).toMatchObject({ action: 'case.history.download', outcome: 'allowed', targetId: caseId });
  });
});
