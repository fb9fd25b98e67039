import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditLog } from '../../db/schema';
import { caseDriver, people } from '../helpers/cases';
import { importPeople, person, subjectIdOf, uniq } from '../helpers/detection';
import { createAlert } from '../helpers/fixtures';
import { principals, startTestSystem, type TestSystem } from '../helpers/system';

let sys: TestSystem;
beforeAll(async () => {
  sys = await startTestSystem();
});
afterAll(async () => sys?.close());

async function caseOf(region: 'eu' | 'us') {
  const p = person(uniq('anon'), region);
  await importPeople(sys, [p]);
  const subjectId = await subjectIdOf(sys, p.externalId);
  const alert = await createAlert(sys.db, { subjectId, region });
  const confirmed = await caseDriver(sys).confirm(alert.id);
  return { p, subjectId, alertId: alert.id, caseId: confirmed.body.caseId as string };
}

const setAnonymized = async (on: boolean) => {
  const res = await sys.http
    .patch('/v1/settings')
    .set('Authorization', await sys.auth(principals.admin))
    .send({ showAnonymizedNames: on });
  expect(res.status).toBe(200);
};

describe('pseudonymized by default; real names only where the setting and the region allow', () => {
  it('by default everyone sees the pseudonym (Anon-XXXX-XX) and never the name', async () => {
    const { p, caseId, alertId } = await caseOf('us');
    for (const [path, who] of [
      [`/v1/cases/${caseId}`, people.investigator],
      [`/v1/alerts/${alertId}`, people.analyst],
      ['/v1/cases', people.analyst],
    ] as const) {
      const res = await sys.http.get(path).set('Authorization', await sys.auth(who));
      expect(res.status).toBe(200);
      expect(res.text).not.toContain(p.displayName);
      expect(res.text).toMatch(/Anon-[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{2}/);
    }
  });

  it('with anonymization off, analysts and investigators see names in the US, not in the EU (which forbids it), and each display is audited', async () => {
    const us = await caseOf('us');
    const eu = await caseOf('eu');
    await setAnonymized(false);
    try {
      const usCase = await sys.http.get(`/v1/cases/${us.caseId}`).set('Authorization', await sys.auth(people.investigator));
      expect(usCase.body.subject).toMatchObject({ id: us.subjectId, displayName: us.p.displayName });
      expect(usCase.body.subject.pseudonym).toMatch(/^Anon-/);
      const usAlert = await sys.http.get(`/v1/alerts/${us.alertId}`).set('Authorization', await sys.auth(people.analyst));
      expect(usAlert.body.subject.displayName).toBe(us.p.displayName);

      const euCase = await sys.http.get(`/v1/cases/${eu.caseId}`).set('Authorization', await sys.auth(people.investigator));
      expect(euCase.body.subject.displayName).toBeUndefined();
      expect(euCase.text).not.toContain(eu.p.displayName);

      // Roles that never see names, whatever the setting.
      const auditorView = await sys.http.get(`/v1/cases/${us.caseId}`).set('Authorization', await sys.auth(people.auditor));
      expect(auditorView.text).not.toContain(us.p.displayName);

      const displays = await sys.db
        .select()
        .from(auditLog)
        .where(and(eq(auditLog.action, 'identity.display_names'), eq(auditLog.actor, people.investigator.sub)));
      expect(displays.some((d) => (d.details as { subjectIds: string[] }).subjectIds.includes(us.subjectId))).toBe(true);
      for (const d of displays) expect(JSON.stringify(d)).not.toContain(us.p.displayName);
    } finally {
      await setAnonymized(true);
    }
    const back = await sys.http.get(`/v1/cases/${us.caseId}`).set('Authorization', await sys.auth(people.investigator));
    expect(back.text).not.toContain(us.p.displayName);
  });

  it('turning the setting off is audited', async () => {
    await setAnonymized(false);
    await setAnonymized(true);
    const changes = await sys.db.select().from(auditLog).where(eq(auditLog.action, 'settings.update'));
    expect(changes.map((c) => c.details)).toEqual(
      expect.arrayContaining([
        { showAnonymizedNames: { from: true, to: false } },
        { showAnonymizedNames: { from: false, to: true } },
      ]),
    );
  });
});
