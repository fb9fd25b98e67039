/**
 * Small drivers for the case tests: confirm through HTTP, read a case, wait for the read model to
 * catch up with a workflow (projections are written by activities, so some reads are eventually
 * consistent with a signal-driven change).
 */
import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { expect } from 'vitest';
import type { z } from 'zod';
import type { Claims } from '../../api/middleware/auth';
import { CaseDetail } from '../../api/routes/cases';
import { subjects } from '../../db/schema';
import { externalKey } from '../../infra/identity';
import { createAlert } from './fixtures';
import type { TestSystem } from './system';

export type TestPrincipal = Partial<Claims> & Pick<Claims, 'sub' | 'roles'>;
type P = TestPrincipal;

export const people = {
  analyst: { sub: 'analyst-1', roles: ['analyst'], regions: ['eu', 'us'], languages: ['en'] },
  investigator: { sub: 'investigator-1', roles: ['investigator'], regions: ['eu', 'us'], languages: ['en'] },
  investigatorEu: { sub: 'investigator-eu', roles: ['investigator'], regions: ['eu'], languages: ['en'] },
  auditor: { sub: 'auditor-1', roles: ['auditor'], regions: ['*'] },
  admin: { sub: 'admin-1', roles: ['admin'], regions: ['*'] },
  legal: { sub: 'legal-1', roles: ['approver'], stakeholder: 'legal', regions: ['eu', 'us'], languages: ['en'] },
  legal2: { sub: 'legal-2', roles: ['approver'], stakeholder: 'legal', regions: ['eu', 'us'], languages: ['de'] },
  legal3: { sub: 'legal-3', roles: ['approver'], stakeholder: 'legal', regions: ['eu'], languages: ['fr'] },
  hr: { sub: 'hr-1', roles: ['approver'], stakeholder: 'hr', regions: ['eu', 'us'], languages: ['en'] },
  privacy: { sub: 'privacy-1', roles: ['approver'], stakeholder: 'privacy', regions: ['eu', 'us'], languages: ['en'] },
  compliance: { sub: 'compliance-1', roles: ['approver'], stakeholder: 'compliance', regions: ['eu', 'us'], languages: ['en'] },
} satisfies Record<string, P>;

export async function waitFor<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T = await fn();
  while (!ok(last)) {
    if (Date.now() > deadline) return last;
    await new Promise((r) => setTimeout(r, 50));
    last = await fn();
  }
  return last;
}

export function caseDriver(sys: TestSystem, defaults: { reader?: P } = {}) {
  const as = async (p: P) => sys.auth(p);
  const reader = defaults.reader ?? people.investigator;
  return {
    async confirm(alertId: string, comment = 'Looks like data exfiltration before departure', who: P = people.analyst) {
      return sys.http
        .post(`/v1/alerts/${alertId}/confirm`)
        .set('Authorization', await as(who))
        .send({ comment });
    },
    async read(caseId: string, who: P = reader) {
      const res = await sys.http.get(`/v1/cases/${caseId}`).set('Authorization', await as(who));
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return CaseDetail.parse(res.body);
    },
    /** Read until `ok` holds (the read model follows signals asynchronously). */
    async readUntil(caseId: string, ok: (c: CaseDetail) => boolean, timeoutMs = 15_000) {
      const c = await waitFor(() => this.read(caseId), ok, timeoutMs);
      expect(
        ok(c),
        `case ${caseId} did not reach the expected state: ${JSON.stringify({ status: c.status, steps: c.steps.map((s) => s.status) })}`,
      ).toBe(true);
      return c;
    },
    async requestStep(caseId: string, kind: string, who: P = people.investigator, extra: Record<string, unknown> = {}) {
      return sys.http
        .post(`/v1/cases/${caseId}/steps`)
        .set('Authorization', await as(who))
        .send({ kind, reason: `Requesting ${kind} for the investigation`, ...extra });
    },
    async decide(
      caseId: string,
      stepId: string,
      who: P,
      decision: 'approve' | 'reject' = 'approve',
      comment = 'Reviewed the evidence',
    ) {
      return sys.http
        .post(`/v1/cases/${caseId}/steps/${stepId}/decision`)
        .set('Authorization', await as(who))
        .send({ decision, comment });
    },
    async resolve(
      caseId: string,
      outcome: 'benign' | 'confirmed_violation',
      actionTaken = 'Access revoked',
      who: P = people.investigator,
    ) {
      return sys.http
        .post(`/v1/cases/${caseId}/resolve`)
        .set('Authorization', await as(who))
        .send({ outcome, actionTaken });
    },
    async inbox(who: P) {
      return sys.http.get('/v1/approvals/inbox').set('Authorization', await as(who));
    },
  };
}

type CaseDetail = z.infer<typeof CaseDetail>;

/**
 * A case of `region` about a person imported through the connector API (identity in the vault):
 * an alert about them confirmed by `drive`'s analyst.
 */
export async function caseForImportedPerson(
  sys: TestSystem,
  drive: ReturnType<typeof caseDriver>,
  region: 'eu' | 'us',
  label = 'Case Person',
) {
  const externalId = `E-${randomUUID().slice(0, 8)}`;
  const person = {
    externalId,
    displayName: `${label} ${externalId}`,
    email: `${externalId.toLowerCase()}@example.com`,
    upn: `${externalId.toLowerCase()}@corp.example.com`,
    manager: 'Manager Name',
    department: 'Sales',
    groups: ['sales'],
    region,
  };
  const imported = await sys.http
    .post('/v1/subjects/import')
    .set('Authorization', await sys.auth({ sub: 'hr-connector', roles: ['connector'], regions: ['*'] }))
    .send({ subjects: [person] });
  expect(imported.status, JSON.stringify(imported.body)).toBe(200);
  const [subject] = await sys.db
    .select({ id: subjects.id })
    .from(subjects)
    .where(eq(subjects.externalKey, externalKey(sys.config.keys.pseudonym, externalId)));
  const alert = await createAlert(sys.db, { subjectId: subject!.id, region });
  const confirmed = await drive.confirm(alert.id);
  expect(confirmed.status, JSON.stringify(confirmed.body)).toBe(201);
  return { caseId: confirmed.body.caseId as string, person, subjectId: subject!.id };
}
