import { and, eq } from 'drizzle-orm';
import proto from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaseListItem, CaseSummary, ConfirmAlertResult, StepDecisionResult, StepRequestedResult } from '../../api/routes/cases';
import { pageSchema } from '../../api/pagination';
import { alerts, auditLog, caseNotes, cases, subjectViolations } from '../../db/schema';
import { workflowIds } from '../../workflows/definitions';
import { caseDriver, people } from '../helpers/cases';
import { createAlert, subjectWithAlerts } from '../helpers/fixtures';
import { startTestSystem, type TestSystem } from '../helpers/system';

let sys: TestSystem;
let drive: ReturnType<typeof caseDriver>;
beforeAll(async () => {
  sys = await startTestSystem();
  drive = caseDriver(sys);
});
afterAll(async () => sys?.close());

const CaseList = pageSchema(CaseListItem);

describe('an EU case through its whole lifecycle over HTTP', () => {
  it('confirm → owner → notes → investigation (Legal + Privacy) → HR action (HR + Legal + Privacy) → confirmed violation (Legal + HR) → closed', async () => {
    const {
      subject,
      alerts: [alert],
    } = await subjectWithAlerts(sys.db, sys.config, 'eu', 1, 'high');

    // Analyst confirms: a new case, running workflow, listed at once.
    const confirmed = await drive.confirm(alert!.id, 'USB copies two days after resignation');
    expect(confirmed.status).toBe(201);
    const { caseId, created } = ConfirmAlertResult.parse(confirmed.body);
    expect(created).toBe(true);
    expect(confirmed.headers.location).toBe(`/v1/cases/${caseId}`);
    const described = await sys.client.workflow.getHandle(workflowIds.case(caseId)).describe();
    expect(described.status.name).toBe('RUNNING');
    const listed = CaseList.parse(
      (await sys.http.get('/v1/cases?region=eu').set('Authorization', await sys.auth(people.investigator))).body,
    );
    expect(listed.items.map((c) => c.id)).toContain(caseId);

    // The comment is the first note; the alert is confirmed into the case.
    let c = await drive.readUntil(caseId, (x) => x.notes.length >= 1 && x.alertCount === 1);
    expect(c.subjectId).toBe(subject.id);
    expect(c.pseudonym).toBe(subject.pseudonym);
    expect(c.notes[0]).toMatchObject({
      author: people.analyst.sub,
      kind: 'comment',
      body: 'USB copies two days after resignation',
    });
    expect(c.alerts).toEqual([expect.objectContaining({ id: alert!.id, status: 'confirmed' })]);
    expect(c.severity).toBe('high');
    expect(c.status).toBe('open');

    // Investigator takes ownership and writes a note.
    const assigned = await sys.http
      .post(`/v1/cases/${caseId}/assign`)
      .set('Authorization', await sys.auth(people.investigator))
      .send({ owner: people.investigator.sub });
    expect(assigned.status).toBe(200);
    expect(CaseSummary.parse(assigned.body).owner).toBe(people.investigator.sub);
    const noted = await sys.http
      .post(`/v1/cases/${caseId}/notes`)
      .set('Authorization', await sys.auth(people.investigator))
      .send({ body: 'Interviewed the manager; escalating.' });
    expect(noted.status).toBe(201);

    // Escalation to investigation: EU needs Legal and Privacy.
    const req1 = await drive.requestStep(caseId, 'escalate_investigation');
    expect(req1.status, JSON.stringify(req1.body)).toBe(202);
    const step1 = StepRequestedResult.parse(req1.body);
    expect(step1.status).toBe('pending');
    expect(step1.requirements).toEqual([
      { stakeholder: 'legal', count: 1 },
      { stakeholder: 'privacy', count: 1 },
    ]);
    expect(Date.parse(step1.dueAt) - Date.now()).toBeGreaterThan(71 * 3600_000);

    // It is in Legal's and Privacy's inboxes, not HR's.
    const legalInbox = await drive.inbox(people.legal);
    expect(legalInbox.body.items.map((i: { stepId: string }) => i.stepId)).toContain(step1.stepId);
    expect((await drive.inbox(people.hr)).body.items.map((i: { stepId: string }) => i.stepId)).not.toContain(step1.stepId);

    const d1 = await drive.decide(caseId, step1.stepId, people.legal);
    expect(d1.status, JSON.stringify(d1.body)).toBe(200);
    const v1 = StepDecisionResult.parse(d1.body);
    expect(v1.status).toBe('pending');
    expect(v1.outstanding).toEqual(['privacy']);
    // The case page shows who has decided and who has not, with the SLA due time.
    c = await drive.read(caseId);
    const s1 = c.steps.find((s) => s.stepId === step1.stepId)!;
    expect(s1.decisions.map((d) => d.approver)).toEqual([people.legal.sub]);
    expect(s1.outstanding).toEqual(['privacy']);
    expect(s1.dueAt).toBe(step1.dueAt);
    // Legal has decided: the step left Legal's inbox.
    expect((await drive.inbox(people.legal)).body.items.map((i: { stepId: string }) => i.stepId)).not.toContain(step1.stepId);

    const d2 = await drive.decide(caseId, step1.stepId, people.privacy);
    expect(StepDecisionResult.parse(d2.body).status).toBe('approved');
    c = await drive.readUntil(caseId, (x) => x.status === 'under_investigation');
    expect(c.history.map((h) => h.type)).toContain('stage_changed');
    expect(c.notes.some((n) => n.kind === 'system' && n.body.includes('moved from open to under_investigation'))).toBe(true);

    // Escalation to HR action: HR + Legal + Privacy.
    const step2 = StepRequestedResult.parse((await drive.requestStep(caseId, 'escalate_hr_action')).body);
    expect(step2.requirements.map((r) => r.stakeholder)).toEqual(['hr', 'legal', 'privacy']);
    for (const who of [people.hr, people.legal, people.privacy]) {
      expect((await drive.decide(caseId, step2.stepId, who)).status).toBe(200);
    }
    c = await drive.readUntil(caseId, (x) => x.status === 'hr_action');

    // A confirmed violation needs its approved step first.
    const early = await drive.resolve(caseId, 'confirmed_violation');
    expect(early.status).toBe(409);
    expect(early.body.error.details.reason).toBe('approval_required');
    const step3 = StepRequestedResult.parse((await drive.requestStep(caseId, 'resolve_confirmed_violation')).body);
    expect(step3.requirements.map((r) => r.stakeholder)).toEqual(['legal', 'hr']);
    await drive.decide(caseId, step3.stepId, people.legal);
    await drive.decide(caseId, step3.stepId, people.hr);
    // The approval reaches the case workflow by signal; its history records it.
    await drive.readUntil(caseId, (x) => x.history.some((h) => h.type === 'step_approved' && h.details.stepId === step3.stepId));
    const resolved = await drive.resolve(caseId, 'confirmed_violation', 'Employment terminated; devices recovered');
    expect(resolved.status, JSON.stringify(resolved.body)).toBe(200);
    expect(CaseSummary.parse(resolved.body)).toMatchObject({ status: 'closed', resolution: { outcome: 'confirmed_violation' } });

    c = await drive.read(caseId);
    expect(c).toMatchObject({
      status: 'closed',
      resolution: 'confirmed_violation',
      actionTaken: 'Employment terminated; devices recovered',
      resolvedBy: people.investigator.sub,
    });
    expect(c.alerts.every((a) => a.status === 'resolved')).toBe(true);
    // The confirmed violation is recorded for scoring's "previous confirmed violation" booster.
    const violations = await sys.db.select().from(subjectViolations).where(eq(subjectViolations.caseId, caseId));
    expect(violations).toEqual([expect.objectContaining({ subjectId: c.subjectId, caseId })]);
    expect(c.history.map((h) => h.type)).toEqual(
      expect.arrayContaining([
        'alert_attached',
        'owner_assigned',
        'note_added',
        'step_requested',
        'step_approved',
        'stage_changed',
        'case_closed',
      ]),
    );
    const result = await sys.client.workflow.getHandle(workflowIds.case(caseId)).result();
    expect(result).toMatchObject({ caseId, status: 'closed' });

    // Every command is in the audit log.
    const actions = (await sys.db.select().from(auditLog).where(eq(auditLog.region, 'eu'))).map((a) => a.action);
    expect(actions).toEqual(
      expect.arrayContaining([
        'alert.confirm',
        'case.assign',
        'case.note',
        'case.step.request',
        'step.decide',
        'case.resolve',
        'case.read',
      ]),
    );

    // A closed case takes no more commands.
    expect((await drive.requestStep(caseId, 'escalate_investigation')).status).toBe(409);
  });
});

describe('a US case: different stakeholders', () => {
  it('escalation needs Legal only; Privacy is not asked; a benign resolution closes directly and resolves the alerts', async () => {
    const { alerts: list } = await subjectWithAlerts(sys.db, sys.config, 'us', 2, 'low');
    const { caseId } = ConfirmAlertResult.parse((await drive.confirm(list[0]!.id)).body);
    expect((await drive.confirm(list[1]!.id, 'Same person, second policy')).status).toBe(200);

    const step = StepRequestedResult.parse((await drive.requestStep(caseId, 'escalate_investigation')).body);
    expect(step.requirements).toEqual([{ stakeholder: 'legal', count: 1 }]);
    const privacy = await drive.decide(caseId, step.stepId, people.privacy);
    expect(privacy.status).toBe(403);
    expect(privacy.body.error.details.reason).toBe('wrong_stakeholder');
    const legal = await drive.decide(caseId, step.stepId, people.legal);
    expect(StepDecisionResult.parse(legal.body).status).toBe('approved');
    await drive.readUntil(caseId, (x) => x.status === 'under_investigation');

    const hr = StepRequestedResult.parse((await drive.requestStep(caseId, 'escalate_hr_action')).body);
    expect(hr.requirements.map((r) => r.stakeholder)).toEqual(['hr', 'legal']);

    const closed = await drive.resolve(caseId, 'benign', 'No policy breach: copies were to an approved device');
    expect(closed.status).toBe(200);
    const c = await drive.readUntil(caseId, (x) => x.steps.every((s) => s.status !== 'pending'));
    expect(c.status).toBe('closed');
    expect(c.resolution).toBe('benign');
    expect(c.alerts).toHaveLength(2);
    expect(c.alerts.every((a) => a.status === 'resolved')).toBe(true);
    // The pending HR step was cancelled with the case.
    expect(c.steps.find((s) => s.stepId === hr.stepId)).toMatchObject({ status: 'cancelled', outcomeReason: 'case_closed' });
  });
});

describe('what Temporal holds about a case', () => {
  it('search attributes carry ids, region and status only; every payload of the history is encrypted', async () => {
    const {
      subject,
      alerts: [a],
    } = await subjectWithAlerts(sys.db, sys.config, 'eu');
    const { caseId } = ConfirmAlertResult.parse((await drive.confirm(a!.id, 'Pseudonymous comment')).body);
    const step = StepRequestedResult.parse((await drive.requestStep(caseId, 'escalate_investigation')).body);
    await drive.readUntil(caseId, (x) => x.notes.length >= 2);
    for (const id of [workflowIds.case(caseId), workflowIds.step(caseId, step.stepId)]) {
      const handle = sys.client.workflow.getHandle(id);
      const d = await handle.describe();
      const keys = Object.keys(d.searchAttributes).filter((k) => k.startsWith('Warden'));
      expect(keys.sort()).toEqual(['WardenCaseId', 'WardenRegion', 'WardenStatus']);
      expect(d.searchAttributes.WardenCaseId).toEqual([caseId]);
      expect(d.searchAttributes.WardenRegion).toEqual(['eu']);
      const raw = JSON.stringify(await handle.fetchHistory());
      expect(raw).not.toContain(subject.pseudonym);
      expect(raw).not.toContain('Pseudonymous comment');
      const history = await handle.fetchHistory();
      const started = history.events![0]!.workflowExecutionStartedEventAttributes!;
      expect(new TextDecoder().decode(started.input!.payloads![0]!.metadata!.encoding!)).toBe('binary/encrypted');
    }
  });
});

describe('confirming alerts', () => {
  it('confirming twice is idempotent: same case, one note, one alert', async () => {
    const {
      alerts: [a],
    } = await subjectWithAlerts(sys.db, sys.config, 'eu');
    const first = ConfirmAlertResult.parse((await drive.confirm(a!.id, 'first')).body);
    const again = await drive.confirm(a!.id, 'first');
    expect(again.status).toBe(200);
    expect(ConfirmAlertResult.parse(again.body)).toMatchObject({ caseId: first.caseId, created: false, repeated: true });
    // (The case row and its notes are read by separate queries: wait for both.)
    const c = await drive.readUntil(first.caseId, (x) => x.notes.length >= 1 && x.alertCount === 1);
    await new Promise((r) => setTimeout(r, 300));
    const notes = await sys.db.select().from(caseNotes).where(eq(caseNotes.caseId, first.caseId));
    expect(notes).toHaveLength(1);
    expect(c.alertCount).toBe(1);
  });

  it('the confirm that opens a case starts its workflow with the alert (no signal), eagerly: the worker of this process takes its first task', async () => {
    const {
      alerts: [a],
    } = await subjectWithAlerts(sys.db, sys.config, 'eu');
    const opened = ConfirmAlertResult.parse((await drive.confirm(a!.id, 'opening')).body);
    expect(opened.created).toBe(true);
    const c = await drive.readUntil(opened.caseId, (x) => x.alertCount === 1 && x.notes.length === 1);
    expect(c.notes[0]!.body).toBe('opening');
    const { events } = await sys.client.workflow.getHandle(workflowIds.case(opened.caseId)).fetchHistory();
    const { EventType } = proto.temporal.api.enums.v1;
    expect(events!.filter((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)).toEqual([]);
    // Eager start: the server handed the first workflow task to this process's worker in the
    // start response (the API and the worker share one native connection, as in `npm start`).
    expect(events![0]!.workflowExecutionStartedEventAttributes?.eagerExecutionAccepted).toBe(true);
    // The opening alert is attached once: a repeated confirm signals it and changes nothing.
    expect((await drive.confirm(a!.id, 'opening')).status).toBe(200);
    await new Promise((r) => setTimeout(r, 300));
    const notes = await sys.db.select().from(caseNotes).where(eq(caseNotes.caseId, opened.caseId));
    expect(notes).toHaveLength(1);
  });

  it('a later alert of the same subject joins the active case; a dismissed alert cannot be confirmed', async () => {
    const {
      subject,
      alerts: [a],
    } = await subjectWithAlerts(sys.db, sys.config, 'eu');
    const first = ConfirmAlertResult.parse((await drive.confirm(a!.id)).body);
    const b = await createAlert(sys.db, { subjectId: subject.id, region: 'eu', severity: 'high' });
    const second = await drive.confirm(b.id, 'Second policy fired');
    expect(second.status).toBe(200);
    expect(ConfirmAlertResult.parse(second.body)).toMatchObject({ caseId: first.caseId, created: false });
    const c = await drive.readUntil(first.caseId, (x) => x.alertCount === 2);
    expect(c.severity).toBe('high');
    expect(c.notes.map((n) => n.body)).toContain('Second policy fired');

    const d = await createAlert(sys.db, { subjectId: subject.id, region: 'eu' });
    await sys.db.update(alerts).set({ status: 'dismissed' }).where(eq(alerts.id, d.id));
    const refused = await drive.confirm(d.id);
    expect(refused.status).toBe(409);
    expect(refused.body.error.details.reason).toBe('alert_dismissed');
  });

  it('concurrent confirms of several alerts of one subject open exactly one case', async () => {
    const { subject, alerts: list } = await subjectWithAlerts(sys.db, sys.config, 'eu', 6);
    const results = await Promise.all(list.map((a) => drive.confirm(a.id, `confirm ${a.id}`)));
    expect(results.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 200, 201]);
    const ids = new Set(results.map((r) => r.body.caseId));
    expect(ids.size).toBe(1);
    const rows = await sys.db.select().from(cases).where(eq(cases.subjectId, subject.id));
    expect(rows).toHaveLength(1);
    const [caseId] = [...ids] as string[];
    const c = await drive.readUntil(caseId!, (x) => x.alertCount === 6 && x.notes.length === 6);
    expect(c.alerts).toHaveLength(6);
  });

  it('after a case closes, a new alert of the subject opens a new case', async () => {
    const {
      subject,
      alerts: [a],
    } = await subjectWithAlerts(sys.db, sys.config, 'us');
    const first = ConfirmAlertResult.parse((await drive.confirm(a!.id)).body);
    expect((await drive.resolve(first.caseId, 'benign', 'False positive')).status).toBe(200);
    const b = await createAlert(sys.db, { subjectId: subject.id, region: 'us' });
    const second = await drive.confirm(b.id);
    expect(second.status).toBe(201);
    expect(second.body.caseId).not.toBe(first.caseId);
    const active = await sys.db
      .select()
      .from(cases)
      .where(and(eq(cases.subjectId, subject.id), eq(cases.status, 'open')));
    expect(active.map((r) => r.id)).toEqual([second.body.caseId]);
  });
});

describe('reading cases', () => {
  it('filters by status, region, owner, severity and opened-between, pages with a cursor, and stays in the caller’s regions', async () => {
    const made: string[] = [];
    for (const [region, severity] of [
      ['eu', 'low'],
      ['eu', 'high'],
      ['us', 'high'],
      ['us', 'medium'],
    ] as const) {
      const {
        alerts: [a],
      } = await subjectWithAlerts(sys.db, sys.config, region, 1, severity);
      made.push(ConfirmAlertResult.parse((await drive.confirm(a!.id)).body).caseId);
    }
    const since = (await sys.db.select().from(cases).where(eq(cases.id, made[0]!)))[0]!.createdAt;
    const auth = await sys.auth(people.investigator);
    const get = async (q: string, a = auth) => {
      const res = await sys.http.get(`/v1/cases?${q}`).set('Authorization', a);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return CaseList.parse(res.body);
    };
    const from = `openedFrom=${encodeURIComponent(since.toISOString())}`;
    const all = await get(`${from}`);
    expect(all.items.map((c) => c.id)).toEqual([...made].reverse());
    // Dates are formatted by Postgres exactly as toISOString() would.
    expect(all.items.at(-1)!.openedAt).toBe(since.toISOString());
    expect((await get(`${from}&region=us&severity=high`)).items.map((c) => c.id)).toEqual([made[2]]);
    expect((await get(`${from}&severity=low,medium`)).items.map((c) => c.id)).toEqual([made[3], made[0]]);
    expect((await get(`${from}&openedTo=${encodeURIComponent(since.toISOString())}`)).items.map((c) => c.id)).toEqual([made[0]]);

    await sys.http.post(`/v1/cases/${made[1]}/assign`).set('Authorization', auth).send({ owner: 'investigator-7' });
    expect((await get(`owner=investigator-7`)).items.map((c) => c.id)).toEqual([made[1]]);
    await drive.resolve(made[3]!, 'benign', 'Nothing found');
    expect((await get(`${from}&status=closed`)).items.map((c) => c.id)).toEqual([made[3]]);
    expect((await get(`${from}&status=open,under_investigation`)).items.map((c) => c.id)).not.toContain(made[3]);

    // Cursor pagination walks every case once.
    const p1 = await get(`${from}&limit=3`);
    expect(p1.items).toHaveLength(3);
    expect(p1.nextCursor).not.toBeNull();
    const p2 = await get(`${from}&limit=3&cursor=${p1.nextCursor}`);
    expect([...p1.items, ...p2.items].map((c) => c.id)).toEqual([...made].reverse());
    expect(p2.nextCursor).toBeNull();
    // Several values per filter (merged per-combination branches) page the same way, one at a time.
    const walked: string[] = [];
    let cursor: string | null = '';
    while (cursor !== null) {
      const p = await get(`${from}&severity=low,medium,high&status=open,closed&limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      walked.push(...p.items.map((c) => c.id));
      cursor = p.nextCursor;
    }
    expect(walked).toEqual([...made].reverse());
    const eu = await sys.auth(people.investigatorEu);
    // More combinations than branches (3 regions × 4 statuses × 3 severities): one query with = any().
    const wide = await sys.auth({ ...people.investigator, sub: 'investigator-wide', regions: ['eu', 'us', 'apac'] });
    const everyStatus = 'status=open,under_investigation,hr_action,closed&severity=low,medium,high';
    expect((await get(`${from}&${everyStatus}`, wide)).items.map((c) => c.id)).toEqual([...made].reverse());
    expect((await get(`${from}&${everyStatus}&region=eu`, wide)).items.map((c) => c.id)).toEqual([made[1], made[0]]);
    // A region outside the caller's scope lists nothing.
    expect((await get(`${from}&region=us`, eu)).items).toEqual([]);

    // An EU-only investigator sees EU cases only, and a US case is a 404.
    expect((await get(`${from}`, eu)).items.map((c) => c.region)).toEqual(['eu', 'eu']);
    expect((await sys.http.get(`/v1/cases/${made[2]}`).set('Authorization', eu)).status).toBe(404);

    // Bad filters name the field.
    const bad = await sys.http.get('/v1/cases?status=pending').set('Authorization', auth);
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain('query.status');
  });

  it('a case read is audited; notes are immutable in the database', async () => {
    const {
      alerts: [a],
    } = await subjectWithAlerts(sys.db, sys.config, 'eu');
    const { caseId } = ConfirmAlertResult.parse((await drive.confirm(a!.id, 'immutable?')).body);
    const res = await sys.http.get(`/v1/cases/${caseId}`).set('Authorization', await sys.auth(people.auditor));
    expect(res.status).toBe(200);
    const [entry] = await sys.db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.requestId, res.headers['x-request-id']!), eq(auditLog.action, 'case.read')));
    expect(entry).toMatchObject({ actor: people.auditor.sub, targetId: caseId, outcome: 'allowed' });
    await drive.readUntil(caseId, (x) => x.notes.length === 1);
    await expect(
      sys.database.pool.query('update case_notes set body = $2 where case_id = $1', [caseId, 'changed']),
    ).rejects.toThrow(/case notes are immutable: UPDATE/);
    await expect(sys.database.pool.query('delete from case_notes where case_id = $1', [caseId])).rejects.toThrow(
      /case notes are immutable: DELETE/,
    );
  });
});
