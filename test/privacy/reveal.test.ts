import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditLog, revealGrants } from '../../db/schema';
import { caseDriver, caseForImportedPerson, people, waitFor, type TestPrincipal } from '../helpers/cases';
import { startTestSystem, type TestSystem } from '../helpers/system';

let sys: TestSystem;
let drive: ReturnType<typeof caseDriver>;
beforeAll(async () => {
  sys = await startTestSystem();
  drive = caseDriver(sys);
});
afterAll(async () => sys?.close());

const investigator2: TestPrincipal = { sub: 'investigator-2', roles: ['investigator'], regions: ['eu', 'us'], languages: ['en'] };

async function approvedReveal(caseId: string, approvers: Array<(typeof people)[keyof typeof people]>) {
  const requested = await drive.requestStep(caseId, 'reveal_identity');
  expect(requested.status, JSON.stringify(requested.body)).toBe(202);
  const stepId = requested.body.stepId as string;
  for (const a of approvers) {
    const d = await drive.decide(caseId, stepId, a);
    expect(d.status, JSON.stringify(d.body)).toBe(200);
  }
  const grant = await waitFor(
    async () => (await sys.db.select().from(revealGrants).where(eq(revealGrants.stepId, stepId)))[0],
    (g) => g !== undefined,
  );
  expect(grant, 'grant created after approval').toBeDefined();
  return { stepId, grant: grant! };
}

const identity = async (caseId: string, who: Parameters<TestSystem['auth']>[0] = people.investigator) =>
  sys.http.get(`/v1/cases/${caseId}/identity`).set('Authorization', await sys.auth(who));

describe('identity reveal through approved, expiring grants', () => {
  it('an EU reveal needs Privacy and Legal before the grant; then only the requester reads the identity, audited', async () => {
    const { caseId, person, subjectId } = await caseForImportedPerson(sys, drive, 'eu');
    const before = await identity(caseId);
    expect(before.status).toBe(403);
    expect(before.body.error.details.reason).toBe('no_grant');

    const requested = await drive.requestStep(caseId, 'reveal_identity');
    const stepId = requested.body.stepId as string;
    expect(requested.body.requirements.map((r: { stakeholder: string }) => r.stakeholder).sort()).toEqual(['legal', 'privacy']);
    await drive.decide(caseId, stepId, people.privacy);
    // One of two approvals: still no grant.
    expect((await identity(caseId)).status).toBe(403);
    await drive.decide(caseId, stepId, people.legal);
    await waitFor(
      () => identity(caseId),
      (r) => r.status === 200,
    );

    const res = await identity(caseId);
    expect(res.status).toBe(200);
    expect(res.body.identity).toEqual({
      displayName: person.displayName,
      email: person.email,
      upn: person.upn,
      manager: person.manager,
      department: person.department,
    });
    expect(res.body.subject.id).toBe(subjectId);
    expect(res.body.grant).toMatchObject({ grantee: people.investigator.sub, status: 'active', stepId });
    expect(res.headers['cache-control']).toBe('no-store');

    // Another investigator of the same region holds no grant.
    const other = await identity(caseId, investigator2);
    expect(other.status).toBe(403);
    expect(other.body.error.details.reason).toBe('no_grant');
    expect(JSON.stringify(other.body)).not.toContain(person.displayName);

    const reads = await sys.db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.action, 'identity.read'), eq(auditLog.targetId, caseId)));
    expect(reads.filter((r) => r.outcome === 'allowed').length).toBeGreaterThanOrEqual(1);
    expect(reads.some((r) => r.actor === investigator2.sub && r.outcome === 'denied' && r.reason === 'no_grant')).toBe(true);
    for (const r of reads) expect(JSON.stringify(r)).not.toContain(person.email);
  });

  it('a rejected reveal creates no grant', async () => {
    const { caseId } = await caseForImportedPerson(sys, drive, 'us');
    const requested = await drive.requestStep(caseId, 'reveal_identity');
    const d = await drive.decide(caseId, requested.body.stepId, people.legal, 'reject');
    expect(d.status).toBe(200);
    await drive.readUntil(caseId, (c) => c.steps.some((s) => s.status === 'rejected'));
    expect(await sys.db.select().from(revealGrants).where(eq(revealGrants.caseId, caseId))).toEqual([]);
    expect((await identity(caseId)).body.error.details.reason).toBe('no_grant');
  });

  it('the grant ends when its durable timer fires; the audit log shows the expiry', async () => {
    // A short grant for this test: the region's duration is snapshotted when the step is requested.
    const admin = await sys.auth(people.admin);
    const us = (await sys.http.get('/v1/regions/us').set('Authorization', admin)).body;
    const { code: _c, version: _v, updatedAt: _u, ...usInput } = us;
    await sys.http
      .put('/v1/regions/us')
      .set('Authorization', admin)
      .send({ ...usInput, revealGrantHours: 0.001 }); // 3.6 s
    try {
      const { caseId } = await caseForImportedPerson(sys, drive, 'us');
      const { grant } = await approvedReveal(caseId, [people.legal]);
      expect(grant.expiresAt.getTime() - grant.grantedAt.getTime()).toBe(3600);
      expect((await identity(caseId)).status).toBe(200);
      const ended = await waitFor(
        async () => (await sys.db.select().from(revealGrants).where(eq(revealGrants.id, grant.id)))[0]!,
        (g) => g.status !== 'active',
        20_000,
      );
      expect(ended.status).toBe('expired');
      expect(ended.endedBy).toBe('system:grant-timer');
      const res = await identity(caseId);
      expect(res.status).toBe(403);
      expect(res.body.error.details.reason).toBe('grant_expired');
      const [expiry] = await sys.db
        .select()
        .from(auditLog)
        .where(and(eq(auditLog.action, 'identity.grant_expired'), eq(auditLog.targetId, caseId)));
      expect(expiry).toMatchObject({ actor: 'system:grant-timer', outcome: 'allowed', details: { grantId: grant.id } });
    } finally {
      await sys.http
        .put('/v1/regions/us')
        .set('Authorization', admin)
        .send({ ...usInput, revealGrantHours: 24 });
    }
  });

  it('an approver of the step revokes the grant early; other approvers cannot', async () => {
    const { caseId } = await caseForImportedPerson(sys, drive, 'eu');
    const { grant } = await approvedReveal(caseId, [people.privacy, people.legal]);
    const hr = await sys.http
      .post(`/v1/cases/${caseId}/grants/${grant.id}/revoke`)
      .set('Authorization', await sys.auth(people.hr))
      .send({ comment: 'No longer needed' });
    expect(hr.status).toBe(403);
    expect(hr.body.error.details.reason).toBe('not_an_approver_of_this_step');
    const res = await sys.http
      .post(`/v1/cases/${caseId}/grants/${grant.id}/revoke`)
      .set('Authorization', await sys.auth(people.privacy))
      .send({ comment: 'Investigation no longer needs the identity' });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ id: grant.id, status: 'revoked', endedBy: people.privacy.sub });
    const after = await identity(caseId);
    expect(after.status).toBe(403);
    expect(after.body.error.details.reason).toBe('grant_revoked');
    const again = await sys.http
      .post(`/v1/cases/${caseId}/grants/${grant.id}/revoke`)
      .set('Authorization', await sys.auth(people.privacy))
      .send({ comment: 'again' });
    expect(again.status).toBe(409);
  });

  it('closing the case ends its grants', async () => {
    const { caseId } = await caseForImportedPerson(sys, drive, 'us');
    const { grant } = await approvedReveal(caseId, [people.legal]);
    expect((await identity(caseId)).status).toBe(200);
    expect((await drive.resolve(caseId, 'benign', 'No action needed')).status).toBe(200);
    const ended = await waitFor(
      async () => (await sys.db.select().from(revealGrants).where(eq(revealGrants.id, grant.id)))[0]!,
      (g) => g.status !== 'active',
    );
    expect(ended.status).toBe('case_closed');
    expect((await identity(caseId)).body.error.details.reason).toBe('grant_case_closed');
  });

  it('an investigator of another region gets 404 for the case’s identity', async () => {
    const { caseId } = await caseForImportedPerson(sys, drive, 'us');
    const res = await identity(caseId, people.investigatorEu);
    expect(res.status).toBe(404);
  });
});
