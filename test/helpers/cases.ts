/**
 * Small drivers for the case tests: confirm through HTTP, read a case, wait for the read model to
 * catch up with a workflow (projections are written by activities, so some reads are eventually
 * consistent with a signal-driven change).
 */
import { expect } from 'vitest';
import type { z } from 'zod';
import type { Claims } from '../../api/middleware/auth';
import { CaseDetail } from '../../api/routes/cases';
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
