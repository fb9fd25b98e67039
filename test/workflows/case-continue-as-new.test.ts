/**
 * Continue-as-new of a long-lived case: forced early by CASE_CONTINUE_AS_NEW_AFTER_EVENTS (the
 * production trigger is Temporal's own suggestion). The state and the pending steps must survive.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfirmAlertResult, StepDecisionResult, StepRequestedResult } from '../../api/routes/cases';
import { getCaseQuery, workflowIds } from '../../workflows/definitions';
import { caseDriver, people, waitFor } from '../helpers/cases';
import { createAlert, subjectWithAlerts } from '../helpers/fixtures';
import { startTestSystem, type TestSystem } from '../helpers/system';

let sys: TestSystem;
let drive: ReturnType<typeof caseDriver>;
beforeAll(async () => {
  sys = await startTestSystem({ env: { CASE_CONTINUE_AS_NEW_AFTER_EVENTS: '40' } });
  drive = caseDriver(sys);
});
afterAll(async () => sys?.close());

async function continuedFrom(workflowId: string): Promise<string> {
  const history = await sys.client.workflow.getHandle(workflowId).fetchHistory();
  return history.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId ?? '';
}

describe('continue-as-new of a case workflow', () => {
  it('keeps owner, alerts, notes and a pending step across runs; the step decided later still moves the case', async () => {
    const { subject, alerts } = await subjectWithAlerts(sys.db, sys.config, 'eu');
    const { caseId } = ConfirmAlertResult.parse((await drive.confirm(alerts[0]!.id)).body);
    const wfId = workflowIds.case(caseId);
    const auth = await sys.auth(people.investigator);
    await sys.http.post(`/v1/cases/${caseId}/assign`).set('Authorization', auth).send({ owner: 'investigator-9' });
    const step = StepRequestedResult.parse((await drive.requestStep(caseId, 'escalate_investigation')).body);
    expect(StepDecisionResult.parse((await drive.decide(caseId, step.stepId, people.legal)).body).status).toBe('pending');

    // Grow the history with notes until the workflow continues as new (more than once).
    const firstRun = (await sys.client.workflow.getHandle(wfId).describe()).runId;
    for (let i = 0; i < 30; i++) {
      const res = await sys.http
        .post(`/v1/cases/${caseId}/notes`)
        .set('Authorization', auth)
        .send({ body: `note ${i}` });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
    }
    const current = await sys.client.workflow.getHandle(wfId).describe();
    expect(current.runId).not.toBe(firstRun);
    expect(current.status.name).toBe('RUNNING');
    expect(await continuedFrom(wfId)).not.toBe('');

    // The new run carries the state.
    const summary = await sys.client.workflow.getHandle(wfId).query(getCaseQuery);
    expect(summary).toMatchObject({
      caseId,
      owner: 'investigator-9',
      status: 'open',
      alertIds: [alerts[0]!.id],
      pendingSteps: [step.stepId],
    });

    // The step workflow kept running across it; its outcome reaches the current run.
    const stepDesc = await sys.client.workflow.getHandle(workflowIds.step(caseId, step.stepId)).describe();
    expect(stepDesc.status.name).toBe('RUNNING');
    expect(StepDecisionResult.parse((await drive.decide(caseId, step.stepId, people.privacy)).body).status).toBe('approved');
    const c = await drive.readUntil(caseId, (x) => x.status === 'under_investigation');
    expect(c.notes.filter((n) => n.body.startsWith('note '))).toHaveLength(30);
    expect(c.owner).toBe('investigator-9');

    // New alerts still reach the (new) run; the case keeps working to the end.
    const more = await createAlert(sys.db, { subjectId: subject.id, region: 'eu', severity: 'high' });
    expect((await drive.confirm(more.id, 'after continue-as-new')).body.caseId).toBe(caseId);
    await drive.readUntil(caseId, (x) => x.alertCount === 2 && x.severity === 'high');
    expect((await drive.resolve(caseId, 'benign', 'Explained by a project handover')).status).toBe(200);
    const result = await waitFor(
      () => sys.client.workflow.getHandle(wfId).result(),
      () => true,
    );
    expect(result).toMatchObject({ caseId, status: 'closed', alertIds: [alerts[0]!.id, more.id] });
  });
});
