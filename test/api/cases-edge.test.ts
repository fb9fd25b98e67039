/**
 * Edges of the case lifecycle through HTTP: races between a close and a grant being written, a
 * close and a step being requested, a rejection and an approval; decisions on a step the close
 * cancelled; client retries with an `Idempotency-Key`; a region's grant duration changed while a
 * reveal waits for approval; the audit entry of a revocation.
 */
import { randomUUID } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaseSummary, InboxItem, StepDecisionResult, StepRequestedResult } from '../../api/routes/cases';
import { pageSchema } from '../../api/pagination';
import { AUDIT_CHAIN_LOCK } from '../../db/audit';
import { auditLog, caseEvents, caseNotes, revealGrants, stepDecisions, steps } from '../../db/schema';
import { DEFAULT_REGIONS, type RegionInput } from '../../domain/regions';
import { workflowIds } from '../../workflows/definitions';
import { caseDriver, caseForImportedPerson, people, waitFor, type TestPrincipal } from '../helpers/cases';
import { subjectWithAlerts } from '../helpers/fixtures';
import { startTestSystem, type TestSystem } from '../helpers/system';

let sys: TestSystem;
let drive: ReturnType<typeof caseDriver>;
beforeAll(async () => {
  sys = await startTestSystem();
  drive = caseDriver(sys);
});
afterAll(async () => sys?.close());

async function openCase(region: string, who: TestPrincipal = people.analyst) {
  const { alerts } = await subjectWithAlerts(sys.db, sys.config, region);
  const res = await drive.confirm(alerts[0]!.id, 'Edge case', who);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.caseId as string;
}

async function requested(caseId: string, kind: string, who: TestPrincipal = people.investigator) {
  const res = await drive.requestStep(caseId, kind, who);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return StepRequestedResult.parse(res.body);
}

const identity = async (caseId: string, who: TestPrincipal = people.investigator) =>
  sys.http.get(`/v1/cases/${caseId}/identity`).set('Authorization', await sys.auth(who));

const grantsOf = (caseId: string) => sys.db.select().from(revealGrants).where(eq(revealGrants.caseId, caseId));

describe('a close racing a reveal grant', () => {
  it('closing a case while its approved reveal grant is still being written leaves no active grant and no identity to read', async () => {
    const { caseId, person } = await caseForImportedPerson(sys, drive, 'us');
    const step = await requested(caseId, 'reveal_identity');
    // Another writer holds the audit chain (as under load): the grant's activity inserts its row and
    // then waits for the chain to append `identity.grant_created` in the same transaction.
    const lock = new pg.Client({ connectionString: sys.config.database.url });
    await lock.connect();
    let locked = false;
    try {
      const approved = await drive.decide(caseId, step.stepId, people.legal);
      expect(StepDecisionResult.parse(approved.body).status).toBe('approved');
      await lock.query('begin');
      await lock.query('select pg_advisory_xact_lock($1)', [AUDIT_CHAIN_LOCK]);
      locked = true;
      const waiting = await waitFor(
        async () =>
          (
            await lock.query<{ n: number }>(
              `select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and wait_event = 'advisory'`,
            )
          ).rows[0]!.n,
        (n) => n >= 1,
      );
      expect(waiting, 'the grant activity waits for the audit chain').toBeGreaterThanOrEqual(1);
      expect(await grantsOf(caseId), 'no grant committed yet').toEqual([]);

      // The investigator closes the case meanwhile: its Update is accepted by the workflow (which,
      // before the fix, went on to end a grant whose row was not written yet, and close the case).
      const resolving = drive.resolve(caseId, 'benign', 'No breach');
      const accepted = await waitFor(
        async () => {
          const history = await sys.client.workflow.getHandle(workflowIds.case(caseId)).fetchHistory();
          return (history.events ?? []).some(
            (e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name === 'resolveCase',
          );
        },
        (yes) => yes,
      );
      expect(accepted, 'the close is under way while the grant row waits').toBe(true);
      await lock.query('commit');
      locked = false;
      const res = await resolving;
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(CaseSummary.parse(res.body).status).toBe('closed');
    } finally {
      if (locked) await lock.query('rollback').catch(() => undefined);
      await lock.end();
    }

    // Closing ends the case's grants (docs/privacy.md): the late grant must not stay active, and the
    // identity is no longer served.
    const grants = await waitFor(
      () => grantsOf(caseId),
      (g) => g.length === 1 && g[0]!.status !== 'active',
      5_000,
    );
    const read = await identity(caseId);
    expect({
      grants: grants.map((g) => ({ stepId: g.stepId, status: g.status })),
      identityStatus: read.status,
      reason: read.body.error?.details?.reason,
      nameShown: JSON.stringify(read.body).includes(person.displayName),
    }).toEqual({
      grants: [{ stepId: step.stepId, status: 'case_closed' }],
      identityStatus: 403,
      reason: 'grant_case_closed',
      nameShown: false,
    });
  });
});

describe('revoking a grant is a command on the record', () => {
  it('the revocation is audited with the revoking request’s id, actor and roles', async () => {
    const { caseId } = await caseForImportedPerson(sys, drive, 'us');
    const step = await requested(caseId, 'reveal_identity');
    expect((await drive.decide(caseId, step.stepId, people.legal)).status).toBe(200);
    const [grant] = await waitFor(
      () => grantsOf(caseId),
      (g) => g.length === 1,
    );
    expect(grant).toBeDefined();
    const requestId = `revoke-${randomUUID()}`;
    const res = await sys.http
      .post(`/v1/cases/${caseId}/grants/${grant!.id}/revoke`)
      .set('Authorization', await sys.auth(people.legal))
      .set('X-Request-Id', requestId)
      .send({ comment: 'The investigation no longer needs it' });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ id: grant!.id, status: 'revoked', endedBy: people.legal.sub });
    // The entry of the revocation (the activity that ends the grant writes it) names the request.
    const entries = await sys.db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.targetId, caseId), eq(auditLog.action, 'identity.grant_revoked')));
    expect(entries.map((e) => ({ actor: e.actor, roles: e.actorRoles, requestId: e.requestId, outcome: e.outcome }))).toEqual([
      { actor: people.legal.sub, roles: ['approver'], requestId, outcome: 'allowed' },
    ]);
  });
});

describe('decisions after the case closed', () => {
  it('a command on a closed case (note, assign, step, resolve) is 409 case_closed and audited as denied, each', async () => {
    const caseId = await openCase('us');
    expect((await drive.resolve(caseId, 'benign', 'Nothing found')).status).toBe(200);
    const auth = await sys.auth(people.investigator);
    const post = (path: string, body: object) =>
      sys.http.post(`/v1/cases/${caseId}${path}`).set('Authorization', auth).send(body);
    const attempts = [
      { action: 'case.note', res: await post('/notes', { body: 'After the close' }) },
      { action: 'case.assign', res: await post('/assign', { owner: 'investigator-2' }) },
      { action: 'case.step.request', res: await post('/steps', { kind: 'escalate_investigation', reason: 'Late' }) },
      { action: 'case.resolve', res: await post('/resolve', { outcome: 'benign', actionTaken: 'Again' }) },
    ];
    for (const { action, res } of attempts) {
      expect(res.status, `${action}: ${JSON.stringify(res.body)}`).toBe(409);
      expect(res.body.error.details.reason).toBe('case_closed');
      const entries = await sys.db
        .select()
        .from(auditLog)
        .where(and(eq(auditLog.requestId, res.headers['x-request-id']!), eq(auditLog.outcome, 'denied')));
      expect(entries, action).toHaveLength(1);
      expect(entries[0]).toMatchObject({
        actor: people.investigator.sub,
        action,
        reason: 'case_closed',
        targetId: caseId,
        region: 'us',
      });
    }
  });

  it('a step cancelled by the close takes no decision: 409 step_closed, nothing stored, audited, gone from the inbox', async () => {
    const caseId = await openCase('us');
    const step = await requested(caseId, 'escalate_hr_action'); // US: HR + Legal
    expect((await drive.resolve(caseId, 'benign', 'Nothing found')).status).toBe(200);
    const late = await drive.decide(caseId, step.stepId, people.legal);
    expect(late.status, JSON.stringify(late.body)).toBe(409);
    expect(late.body.error.details.reason).toBe('step_closed');
    expect(await sys.db.select().from(stepDecisions).where(eq(stepDecisions.stepId, step.stepId))).toEqual([]);
    const [denied] = await sys.db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.requestId, late.headers['x-request-id']!), eq(auditLog.outcome, 'denied')));
    expect(denied).toMatchObject({
      actor: people.legal.sub,
      action: 'step.decide',
      reason: 'step_closed',
      targetId: step.stepId,
    });
    const row = await waitFor(
      async () => (await sys.db.select().from(steps).where(eq(steps.id, step.stepId)))[0]!,
      (s) => s.status !== 'pending',
    );
    expect(row).toMatchObject({ status: 'cancelled', outcomeReason: 'case_closed' });
    const inbox = pageSchema(InboxItem).parse((await drive.inbox(people.hr)).body);
    expect(inbox.items.map((i) => i.stepId)).not.toContain(step.stepId);
    const c = await drive.read(caseId);
    expect(c.status).toBe('closed');
    expect(c.history.some((h) => h.type === 'step_approved')).toBe(false);
  });

  it('a step requested at the same moment as the close does not outlive the case', async () => {
    // The close follows the request by 0–55 ms, so it lands before, during and after the request's
    // Update. Closing cancels the case's pending steps, including one requested in the same instant.
    for (const [i, delay] of [0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55].entries()) {
      const caseId = await openCase('us');
      const [req, closed] = await Promise.all([
        drive.requestStep(caseId, 'escalate_investigation'),
        new Promise((r) => setTimeout(r, delay)).then(() => drive.resolve(caseId, 'benign', 'Closed while a step was requested')),
      ]);
      expect(closed.status, JSON.stringify(closed.body)).toBe(200);
      if (req.status !== 202) {
        expect(req.status, JSON.stringify(req.body)).toBe(409);
        continue;
      }
      const stepId = StepRequestedResult.parse(req.body).stepId;
      const row = await waitFor(
        async () => (await sys.db.select().from(steps).where(eq(steps.id, stepId)))[0],
        (s) => s !== undefined && s.status !== 'pending',
        5_000,
      );
      expect(row?.status, `round ${i}: the step of a closed case is still ${row?.status}`).toBe('cancelled');
    }
  });
});

describe('a rejection racing an approval', () => {
  it('exactly one of them decides the step; the other is 409 step_closed and is not stored; the case follows the winner', async () => {
    const caseId = await openCase('eu');
    const step = await requested(caseId, 'escalate_investigation'); // EU: Legal + Privacy
    expect(StepDecisionResult.parse((await drive.decide(caseId, step.stepId, people.legal)).body).status).toBe('pending');
    const [approve, reject] = await Promise.all([
      drive.decide(caseId, step.stepId, people.privacy, 'approve'),
      drive.decide(caseId, step.stepId, people.legal2, 'reject', 'Not proportionate'),
    ]);
    expect([approve.status, reject.status].sort()).toEqual([200, 409]);
    const [winner, loser] = approve.status === 200 ? [approve, reject] : [reject, approve];
    expect(loser.body.error.details.reason).toBe('step_closed');
    const outcome = StepDecisionResult.parse(winner.body).status;
    expect(outcome).toBe(winner === approve ? 'approved' : 'rejected');
    const stored = await sys.db.select().from(stepDecisions).where(eq(stepDecisions.stepId, step.stepId));
    expect(stored.map((d) => d.approver).sort()).toEqual(
      [people.legal.sub, winner === approve ? people.privacy.sub : people.legal2.sub].sort(),
    );
    const c = await drive.readUntil(caseId, (x) => x.history.some((h) => h.type === `step_${outcome}`));
    expect(c.status).toBe(outcome === 'approved' ? 'under_investigation' : 'open');
    expect(c.steps.find((s) => s.stepId === step.stepId)!.status).toBe(outcome);
  });
});

describe('client retries with an Idempotency-Key', () => {
  it('a note sent twice with one key is written once; another key writes another note', async () => {
    const caseId = await openCase('eu');
    const auth = await sys.auth(people.investigator);
    const send = (key: string, body: string) =>
      sys.http.post(`/v1/cases/${caseId}/notes`).set('Authorization', auth).set('Idempotency-Key', key).send({ body });
    const first = await send('note-key-1', 'Spoke to the manager');
    const retry = await send('note-key-1', 'Spoke to the manager');
    expect([first.status, retry.status]).toEqual([201, 201]);
    expect(retry.body.noteId).toBe(first.body.noteId);
    const other = await send('note-key-2', 'Spoke to the manager');
    expect(other.status).toBe(201);
    expect(other.body.noteId).not.toBe(first.body.noteId);
    const notes = await sys.db.select().from(caseNotes).where(eq(caseNotes.caseId, caseId));
    expect(
      notes
        .filter((n) => n.body === 'Spoke to the manager')
        .map((n) => n.id)
        .sort(),
    ).toEqual([first.body.noteId, other.body.noteId].sort());
    const events = await sys.db
      .select()
      .from(caseEvents)
      .where(and(eq(caseEvents.caseId, caseId), eq(caseEvents.type, 'note_added')));
    expect(events.map((e) => e.details.noteId).sort()).toEqual([first.body.noteId, other.body.noteId].sort());
  });

  it('a step request sent twice with one key requests one step and answers the same step both times', async () => {
    const caseId = await openCase('eu');
    const auth = await sys.auth(people.investigator);
    const send = () =>
      sys.http
        .post(`/v1/cases/${caseId}/steps`)
        .set('Authorization', auth)
        .set('Idempotency-Key', 'step-key-1')
        .send({ kind: 'escalate_investigation', reason: 'Escalating after the interview' });
    const first = StepRequestedResult.parse((await send()).body);
    await new Promise((r) => setTimeout(r, 20));
    const retry = await send();
    expect(retry.status, JSON.stringify(retry.body)).toBe(202);
    expect(StepRequestedResult.parse(retry.body)).toEqual(first);
    const rows = await sys.db.select().from(steps).where(eq(steps.caseId, caseId));
    expect(rows.map((s) => [s.id, s.kind, s.dueAt.toISOString()])).toEqual([
      [first.stepId, 'escalate_investigation', first.dueAt],
    ]);
  });

  it('a key reused for another kind of step is refused, not answered with (and audited against) the first step', async () => {
    const caseId = await openCase('eu');
    const auth = await sys.auth(people.investigator);
    const send = (kind: string) =>
      sys.http
        .post(`/v1/cases/${caseId}/steps`)
        .set('Authorization', auth)
        .set('Idempotency-Key', 'step-key-reused')
        .send({ kind, reason: 'Escalating after the interview' });
    const first = StepRequestedResult.parse((await send('escalate_investigation')).body);
    const reused = await send('reveal_identity');
    const audited = await sys.db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.action, 'case.step.request'), eq(auditLog.targetId, first.stepId), eq(auditLog.outcome, 'allowed')));
    expect(
      {
        refused: [409, 422].includes(reused.status),
        kindsAuditedForTheStep: audited.map((e) => (e.details as { kind: string }).kind),
      },
      `${reused.status} ${JSON.stringify(reused.body)}`,
    ).toEqual({ refused: true, kindsAuditedForTheStep: ['escalate_investigation'] });
    const rows = await sys.db.select().from(steps).where(eq(steps.caseId, caseId));
    expect(rows.map((s) => s.kind)).toEqual(['escalate_investigation']);
  });
});

describe('a region changed while a reveal waits for approval', () => {
  const REGION = 'ge';
  const investigator: TestPrincipal = { sub: 'inv-ge', roles: ['investigator'], regions: ['*'], languages: ['en'] };
  const legal: TestPrincipal = { ...people.legal, regions: ['*'] };
  const putRegion = async (revealGrantHours: number) => {
    const body: RegionInput = { ...DEFAULT_REGIONS.us!, name: 'Grant edge region', revealGrantHours };
    const res = await sys.http
      .put(`/v1/regions/${REGION}`)
      .set('Authorization', await sys.auth(people.admin))
      .send(body);
    expect([200, 201], JSON.stringify(res.body)).toContain(res.status);
  };

  it('the grant lasts as long as the region said when the reveal was requested', async () => {
    await putRegion(24);
    const caseId = await openCase(REGION, { ...people.analyst, regions: ['*'] });
    const step = await requested(caseId, 'reveal_identity', investigator);
    await putRegion(1);
    expect(StepDecisionResult.parse((await drive.decide(caseId, step.stepId, legal)).body).status).toBe('approved');
    const [grant] = await waitFor(
      () => grantsOf(caseId),
      (g) => g.length === 1,
    );
    expect(grant).toMatchObject({ grantee: investigator.sub, status: 'active' });
    expect(grant!.expiresAt.getTime() - grant!.grantedAt.getTime()).toBe(24 * 3_600_000);
  });
});

describe('an Idempotency-Key retry after the case workflow continued as new', () => {
  let sys2: TestSystem;
  beforeAll(async () => {
    sys2 = await startTestSystem({ env: { CASE_CONTINUE_AS_NEW_AFTER_EVENTS: '40' } });
  });
  afterAll(async () => sys2?.close());

  it('a retried step request answers the step it requested, with that step’s deadline', async () => {
    const drive2 = caseDriver(sys2);
    const { alerts } = await subjectWithAlerts(sys2.db, sys2.config, 'eu');
    const caseId = (await drive2.confirm(alerts[0]!.id)).body.caseId as string;
    const auth = await sys2.auth(people.investigator);
    const send = () =>
      sys2.http
        .post(`/v1/cases/${caseId}/steps`)
        .set('Authorization', auth)
        .set('Idempotency-Key', 'can-step-key')
        .send({ kind: 'escalate_investigation', reason: 'Escalating after the interview' });
    const first = StepRequestedResult.parse((await send()).body);
    const wf = sys2.client.workflow.getHandle(workflowIds.case(caseId));
    const firstRun = (await wf.describe()).runId;
    for (let i = 0; i < 30 && (await wf.describe()).runId === firstRun; i++) {
      const res = await sys2.http
        .post(`/v1/cases/${caseId}/notes`)
        .set('Authorization', auth)
        .send({ body: `note ${i}` });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
    }
    expect((await wf.describe()).runId, 'the case workflow continued as new').not.toBe(firstRun);

    // The client's retry (its first answer was lost, say) arrives at the new run.
    const retry = await send();
    expect(retry.status, JSON.stringify(retry.body)).toBe(202);
    const [row] = await sys2.db.select().from(steps).where(eq(steps.id, first.stepId));
    expect({ answer: StepRequestedResult.parse(retry.body), stored: row!.dueAt.toISOString() }).toEqual({
      answer: first,
      stored: first.dueAt,
    });
    expect(await sys2.db.select().from(steps).where(eq(steps.caseId, caseId))).toHaveLength(1);
  });
});
