/**
 * Object-level refusals on the record: another region's object is answered exactly like an object
 * that does not exist (same 404 body), but only the refusal of an existing object leaves a denied
 * audit entry — with the action, the reason, the object (type, opaque id, region) and no personal
 * data. The authorization matrix checks the entry of every route × role cell; these are the cases
 * it does not reach (cross-case grants, the nonexistent twin, reading the entry back as an auditor).
 */
import { randomUUID } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import type { Response } from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditLog, revealGrants } from '../../db/schema';
import { caseDriver, people, waitFor, type TestPrincipal } from '../helpers/cases';
import { createPolicy, policyBody, uniq } from '../helpers/detection';
import { createAlert, createSubject } from '../helpers/fixtures';
import { startTestSystem, type TestSystem } from '../helpers/system';

let sys: TestSystem;
beforeAll(async () => {
  sys = await startTestSystem();
});
afterAll(async () => sys?.close());

const usInvestigator: TestPrincipal = { sub: 'inv-us', roles: ['investigator'], regions: ['us'], languages: ['en'] };
const euInvestigator: TestPrincipal = { sub: 'inv-eu', roles: ['investigator'], regions: ['eu'], languages: ['en'] };

async function deniedOf(res: Response) {
  return sys.db
    .select()
    .from(auditLog)
    .where(and(eq(auditLog.requestId, res.headers['x-request-id']!), eq(auditLog.outcome, 'denied')));
}

/** The error body without its request id: what the caller learns. */
const shape = (res: Response) => ({ status: res.status, code: res.body.error?.code, message: res.body.error?.message });

async function caseIn(region: string) {
  const subject = await createSubject(sys.db, sys.config, { region });
  const alert = await createAlert(sys.db, { subjectId: subject.id, region });
  const res = await caseDriver(sys).confirm(alert.id, 'denied-audit case', people.analyst);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return { caseId: res.body.caseId as string, subject, alert };
}

/** A case of `region` whose reveal_identity step was approved: `holder` holds the grant. */
async function revealIn(region: 'eu' | 'us', holder: TestPrincipal) {
  const { caseId } = await caseIn(region);
  const drive = caseDriver(sys);
  const step = await drive.requestStep(caseId, 'reveal_identity', holder);
  expect(step.status, JSON.stringify(step.body)).toBe(202);
  for (const who of region === 'eu' ? [people.privacy, people.legal] : [people.legal]) {
    const d = await drive.decide(caseId, step.body.stepId as string, who);
    expect(d.status, JSON.stringify(d.body)).toBe(200);
  }
  const grant = await waitFor(
    async () =>
      (
        await sys.db
          .select()
          .from(revealGrants)
          .where(eq(revealGrants.stepId, step.body.stepId as string))
      )[0],
    (g) => g !== undefined,
  );
  expect(grant, 'grant after approval').toBeDefined();
  return { caseId, grantId: grant!.id };
}

describe('refusals of objects outside the caller’s reach', () => {
  it('another region’s case gets the same 404 as a case that does not exist; only the existing one is audited as denied', async () => {
    const { caseId } = await caseIn('eu');
    const auth = await sys.auth(usInvestigator);
    const other = await sys.http.get(`/v1/cases/${caseId}`).set('Authorization', auth);
    const missing = await sys.http.get(`/v1/cases/${randomUUID()}`).set('Authorization', auth);
    expect(shape(other)).toEqual({ status: 404, code: 'not_found', message: 'Case not found' });
    expect(shape(other)).toEqual(shape(missing));
    expect(Object.keys(other.body.error).sort()).toEqual(Object.keys(missing.body.error).sort());

    expect(await deniedOf(missing)).toEqual([]);
    const [entry, ...more] = await deniedOf(other);
    expect(more).toEqual([]);
    expect(entry).toMatchObject({
      actor: 'inv-us',
      actorRoles: ['investigator'],
      action: 'case.read',
      category: 'cases',
      targetType: 'case',
      targetId: caseId,
      region: 'eu',
      outcome: 'denied',
      reason: 'outside_region',
      details: null,
    });
  });

  it('a command on another region’s case rolls nothing forward and is audited once; a missing alert is not audited', async () => {
    const { caseId, alert } = await caseIn('eu');
    const auth = await sys.auth(usInvestigator);
    const note = await sys.http.post(`/v1/cases/${caseId}/notes`).set('Authorization', auth).send({ body: 'not mine' });
    expect(shape(note)).toEqual({ status: 404, code: 'not_found', message: 'Case not found' });
    expect(await deniedOf(note)).toMatchObject([
      { action: 'case.note', targetId: caseId, region: 'eu', reason: 'outside_region' },
    ]);
    const detail = await caseDriver(sys).read(caseId, people.investigator);
    expect(detail.notes.map((n) => n.body)).not.toContain('not mine');

    // Inside a transaction (assign takes the alert's row): the entry survives the rollback.
    const assign = await sys.http.post(`/v1/alerts/${alert.id}/assign`).set('Authorization', auth).send({ assignee: 'x' });
    expect(shape(assign)).toEqual({ status: 404, code: 'not_found', message: 'Alert not found' });
    expect(await deniedOf(assign)).toMatchObject([{ action: 'alert.assign', targetType: 'alert', targetId: alert.id }]);
    const none = await sys.http.post(`/v1/alerts/${randomUUID()}/assign`).set('Authorization', auth).send({ assignee: 'x' });
    expect(shape(none)).toEqual(shape(assign));
    expect(await deniedOf(none)).toEqual([]);
  });

  it('revoking a grant of another case, named through a case the approver may reach, is a 404 audited with the grant’s case', async () => {
    const eu = await revealIn('eu', euInvestigator);
    const { caseId: euOther } = await caseIn('eu');
    const { caseId: usCase } = await caseIn('us');
    const body = { comment: 'revoke through another case' };

    // Same region: the grant exists, but not on this case.
    const euLegal: TestPrincipal = { ...people.legal, sub: 'legal-eu-only', regions: ['eu'] };
    const sameRegion = await sys.http
      .post(`/v1/cases/${euOther}/grants/${eu.grantId}/revoke`)
      .set('Authorization', await sys.auth(euLegal))
      .send(body);
    expect(shape(sameRegion)).toEqual({ status: 404, code: 'not_found', message: 'Grant not found' });
    expect(await deniedOf(sameRegion)).toMatchObject([
      {
        actor: 'legal-eu-only',
        action: 'identity.grant_revoke',
        category: 'identity',
        targetType: 'reveal_grant',
        targetId: eu.grantId,
        region: 'eu',
        reason: 'grant_of_another_case',
        details: { caseId: eu.caseId, requestedCaseId: euOther },
      },
    ]);

    // Through a US case the approver may reach, at an EU grant it may not.
    const usLegal: TestPrincipal = { ...people.legal, sub: 'legal-us-only', regions: ['us'] };
    const otherRegion = await sys.http
      .post(`/v1/cases/${usCase}/grants/${eu.grantId}/revoke`)
      .set('Authorization', await sys.auth(usLegal))
      .send(body);
    const missing = await sys.http
      .post(`/v1/cases/${usCase}/grants/${randomUUID()}/revoke`)
      .set('Authorization', await sys.auth(usLegal))
      .send(body);
    expect(shape(otherRegion)).toEqual(shape(missing));
    expect(await deniedOf(missing)).toEqual([]);
    expect(await deniedOf(otherRegion)).toMatchObject([
      { actor: 'legal-us-only', targetType: 'reveal_grant', targetId: eu.grantId, region: 'eu', reason: 'outside_region' },
    ]);

    const [grant] = await sys.db.select().from(revealGrants).where(eq(revealGrants.id, eu.grantId));
    expect(grant!.status, 'the grant is untouched').toBe('active');
  });

  it('a regional auditor reads the denied attempt on its region’s object through GET /v1/audit; another region’s auditor does not', async () => {
    const { caseId } = await caseIn('eu');
    const res = await sys.http.get(`/v1/cases/${caseId}/identity`).set('Authorization', await sys.auth(usInvestigator));
    expect(res.status).toBe(404);
    const query = `/v1/audit?outcome=denied&targetId=${caseId}`;
    const euAuditor = await sys.http
      .get(query)
      .set('Authorization', await sys.auth({ sub: 'aud-eu', roles: ['auditor'], regions: ['eu'] }));
    expect(euAuditor.status).toBe(200);
    expect(euAuditor.body.items).toMatchObject([
      { actor: 'inv-us', action: 'identity.read', category: 'identity', region: 'eu', reason: 'outside_region' },
    ]);
    const usAuditor = await sys.http
      .get(query)
      .set('Authorization', await sys.auth({ sub: 'aud-us', roles: ['auditor'], regions: ['us'] }));
    expect(usAuditor.body.items).toEqual([]);
  });

  it('a connector’s signals about another region’s person are refused as unknown and audited by opaque subject id only', async () => {
    const externalId = `E-${randomUUID()}`;
    const imported = await sys.http
      .post('/v1/subjects/import')
      .set('Authorization', await sys.auth({ sub: 'conn-all', roles: ['connector'], regions: ['*'] }))
      .send({
        subjects: [
          { externalId, displayName: 'Dana Example', email: 'dana@example.com', department: 'Sales', groups: [], region: 'eu' },
        ],
      });
    expect(imported.status, JSON.stringify(imported.body)).toBe(200);
    const event = (subject: string) => ({
      source: 'activity',
      externalId: `a-${randomUUID()}`,
      subject,
      type: 'file_copied_to_usb',
      occurredAt: new Date().toISOString(),
      attributes: { count: 1 },
    });
    const res = await sys.http
      .post('/v1/signals')
      .set('Authorization', await sys.auth({ sub: 'conn-us', roles: ['connector'], regions: ['us'] }))
      .send({ events: [event(externalId), event(externalId), event(`E-never-${randomUUID()}`)] });
    expect(res.body).toMatchObject({ accepted: 0, rejected: [{ index: 0 }, { index: 1 }, { index: 2 }] });
    expect(new Set(res.body.rejected.map((r: { reason: string }) => r.reason)).size, 'the same reason for both').toBe(1);
    const denied = await deniedOf(res);
    expect(denied).toMatchObject([
      {
        actor: 'conn-us',
        action: 'signals.ingest',
        category: 'signals',
        targetType: 'subject',
        region: 'eu',
        reason: 'outside_region',
        details: { batchId: res.body.batchId, subjects: 1, events: 2 },
      },
    ]);
    const text = JSON.stringify(denied);
    for (const personal of [externalId, 'Dana', 'dana@example.com']) expect(text).not.toContain(personal);
  });

  it('a region outside an administrator’s scope: reading a missing one is not audited, writing one is, whether it exists or not', async () => {
    const euAdmin = await sys.auth({ sub: 'admin-eu', roles: ['admin'], regions: ['eu'] });
    const read = await sys.http.get('/v1/regions/us').set('Authorization', euAdmin);
    const readMissing = await sys.http.get('/v1/regions/zz').set('Authorization', euAdmin);
    expect(shape(read)).toEqual(shape(readMissing));
    expect(await deniedOf(read)).toMatchObject([
      { action: 'region.read', targetId: 'us', region: 'us', reason: 'outside_region' },
    ]);
    expect(await deniedOf(readMissing)).toEqual([]);

    const regionBody = (await sys.http.get('/v1/regions/eu').set('Authorization', euAdmin)).body;
    const { code: _code, version: _version, updatedAt: _updatedAt, ...input } = regionBody;
    const create = await sys.http.put('/v1/regions/zz').set('Authorization', euAdmin).send(input);
    expect(shape(create)).toEqual(shape(readMissing));
    expect(await deniedOf(create)).toMatchObject([
      { action: 'region.create', targetId: 'zz', region: 'zz', reason: 'outside_region' },
    ]);
  });

  it('the users view shows a regional analyst the policies that may apply to its subjects; another region’s policy is a 404, audited', async () => {
    const usOnly = await createPolicy(sys, { ...policyBody('data_leaks', uniq('g')), scope: { regions: ['us'] } });
    const everywhere = await createPolicy(sys, policyBody('data_leaks', uniq('g')));
    const euAnalyst = await sys.auth({ sub: 'analyst-eu', roles: ['analyst'], regions: ['eu'], languages: ['en'] });
    await createSubject(sys.db, sys.config, { region: 'eu' });
    const view = await sys.http.get('/v1/subjects?limit=5').set('Authorization', euAnalyst);
    expect(view.status).toBe(200);
    const shown = new Set(
      view.body.items.flatMap((i: { policies: Array<{ policyId: string }> }) => i.policies.map((p) => p.policyId)),
    );
    expect(shown.has(everywhere.id)).toBe(true);
    expect(shown.has(usOnly.id)).toBe(false);

    const refused = await sys.http.get(`/v1/subjects?policyId=${usOnly.id}`).set('Authorization', euAnalyst);
    const missing = await sys.http.get(`/v1/subjects?policyId=${randomUUID()}`).set('Authorization', euAnalyst);
    expect(shape(refused)).toEqual(shape(missing));
    expect(refused.status).toBe(404);
    expect(await deniedOf(missing)).toHaveLength(0);
    expect(await deniedOf(refused)).toMatchObject([
      { action: 'subjects.read', reason: 'outside_region', targetType: 'policy', targetId: usOnly.id, region: 'us' },
    ]);
    // Its own regions' and global policies stay readable by id.
    expect((await sys.http.get(`/v1/subjects?policyId=${everywhere.id}`).set('Authorization', euAnalyst)).status).toBe(200);
  });
});
