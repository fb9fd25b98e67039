/**
 * The authorization matrix: every route of the OpenAPI document × every role (each approver
 * stakeholder separately) × a caller in the object's region and one outside it.
 *
 * - EXPECTED: who may call each route at all (role-level; 403, audited as denied, for the others).
 * - SCOPE: how each non-public route treats objects of another region (object-level: a case or an
 *   alert of another region is a 404; another investigator's grant a 403; an approver of the
 *   wrong stakeholder a 403). A route missing from either table fails the test, so every new route
 *   must say who may call it and on which objects.
 * - Every refusal of an existing object (a 403 or 404 cell) leaves exactly one denied audit entry by
 *   the caller; for out-of-region cells the sample says which (action, reason, target, region), so
 *   the 404 that hides another region's object is still on the record.
 */
import { randomUUID } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import type { Response, Test } from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendAudit } from '../../db/audit';
import { auditLog, revealGrants, subjects } from '../../db/schema';
import { DEFAULT_REGIONS } from '../../domain/regions';
import { ROLES, STAKEHOLDERS, type Role, type Stakeholder } from '../../domain/roles';
import { caseDriver, waitFor, type TestPrincipal } from '../helpers/cases';
import { externalKey } from '../../infra/identity';
import { createAlert } from '../helpers/fixtures';
import { startTestSystem, type TestSystem } from '../helpers/system';

/** `METHOD /path` → the roles allowed to call it. `public` routes need no token at all. */
const EXPECTED: Record<string, Role[] | 'public'> = {
  'POST /v1/subjects/import': ['connector'],
  'GET /v1/subjects': ['admin', 'analyst'],
  'POST /v1/signals': ['connector'],
  'GET /v1/signals/batches/{batchId}': ['admin', 'connector'],
  'POST /v1/policies': ['admin'],
  'GET /v1/policies': ['admin'],
  'GET /v1/policies/{id}': ['admin'],
  'PATCH /v1/policies/{id}': ['admin'],
  'POST /v1/policies/{id}/activate': ['admin'],
  'POST /v1/policies/{id}/pause': ['admin'],
  'GET /v1/alerts': ['analyst', 'investigator'],
  'GET /v1/alerts/{id}': ['analyst', 'investigator'],
  'POST /v1/alerts/{id}/dismiss': ['analyst', 'investigator'],
  'POST /v1/alerts/dismiss': ['analyst', 'investigator'],
  'POST /v1/alerts/{id}/assign': ['analyst', 'investigator'],
  'GET /healthz': 'public',
  'GET /readyz': 'public',
  'GET /metrics': 'public',
  'GET /openapi.json': 'public',
  'GET /docs': 'public',
  'GET /v1/regions': ['admin'],
  'GET /v1/regions/{code}': ['admin'],
  'PUT /v1/regions/{code}': ['admin'],
  'GET /v1/settings': ['admin'],
  'PATCH /v1/settings': ['admin'],
  'POST /v1/system/check': ['admin'],
  'POST /codec/decode': ['auditor'],
  'POST /codec/encode': ['auditor'],
  'GET /codec/session': ['auditor'],
  'GET /v1/cases/{id}/identity': ['investigator'],
  'GET /v1/cases/{id}/grants': ['investigator', 'auditor', 'approver'],
  'POST /v1/cases/{id}/grants/{grantId}/revoke': ['approver'],
  'GET /v1/notice-templates': ['admin', 'investigator'],
  'GET /v1/notice-templates/{id}': ['admin', 'investigator'],
  'PUT /v1/notice-templates/{id}': ['admin', 'investigator'],
  'GET /v1/dev/outbox': ['admin'],
  'GET /v1/audit': ['auditor'],
  'GET /v1/audit/verify': ['auditor'],
  'GET /v1/audit/export': ['auditor'],
  'GET /v1/audit/public-key': 'public',
  'GET /v1/audit/checkpoints': ['auditor'],
  'POST /v1/audit/checkpoints': ['auditor', 'admin'],
  'GET /v1/cases/{id}/history': ['auditor'],
  'GET /v1/cases/{id}/history/raw': ['auditor'],
  'POST /v1/alerts/{id}/confirm': ['analyst', 'investigator'],
  'GET /v1/cases': ['analyst', 'investigator', 'auditor'],
  'GET /v1/cases/{id}': ['analyst', 'investigator', 'auditor'],
  'POST /v1/cases/{id}/assign': ['investigator'],
  'POST /v1/cases/{id}/notes': ['investigator'],
  'POST /v1/cases/{id}/steps': ['investigator'],
  'POST /v1/cases/{id}/steps/{stepId}/decision': ['approver'],
  'POST /v1/cases/{id}/resolve': ['investigator'],
  'GET /v1/approvals/inbox': ['approver'],
};

/** Every principal shape: one per role, and one per stakeholder for approvers. */
interface Variant {
  key: string;
  role: Role;
  stakeholder?: Stakeholder;
}
const VARIANTS: Variant[] = [
  ...ROLES.filter((r) => r !== 'approver').map((role) => ({ key: role, role })),
  ...STAKEHOLDERS.map((stakeholder) => ({ key: `approver:${stakeholder}`, role: 'approver' as const, stakeholder })),
];

/** A principal of a variant confined to one region (`*`: all regions). */
const principal = (v: Variant, region: string): TestPrincipal => ({
  sub: `m-${v.key.replace(':', '-')}-${region === '*' ? 'all' : region}`,
  roles: [v.role],
  ...(v.stakeholder ? { stakeholder: v.stakeholder } : {}),
  regions: [region],
  languages: ['en'],
});

/** What a cell expects: allowed (any answer but 401/403/404 or a 5xx), a status, or a check of the response. */
type Outcome = 'allowed' | 400 | 403 | 404 | ((res: Response, v: Variant) => void);
/** An outcome for every caller, or one chosen per variant (e.g. per approver stakeholder). */
type PerVariant = Outcome | { per: (v: Variant) => Outcome };

interface SampleRequest {
  path: string;
  body?: unknown;
  /** In-region callers (regions [eu]) of an allowed role; default `allowed`. */
  inside?: PerVariant;
  /** Out-of-region callers (regions [us]) of an allowed role; default 404. */
  outside?: PerVariant;
  /** Cells for particular people, e.g. another investigator than a grant's holder. */
  extra?: Array<{ who: TestPrincipal; expect: Outcome; why: string; denied?: Record<string, unknown> }>;
  /** The denied audit entry of a refused (403/404) out-of-region cell; required when there is one. */
  denied?: Record<string, unknown>;
  /** The out-of-region cells are audited as `denied` whatever their answer (a batch refusing part of itself). */
  outsideAlwaysDenied?: boolean;
}

/**
 * How every non-public route treats an object of another region — a route missing here fails the
 * test. `tenant`: the route has no regional object (the reason says why), so callers of any
 * region get the same answer. `sample`: builds a real object in the EU and the request on it; the
 * route's allowed roles (each approver stakeholder separately) call it from the EU and from the US.
 */
type Scope = { tenant: string } | { sample: () => Promise<SampleRequest> };

const EU = 'eu';
const OUT = 'us';
/** A list: the in-region caller sees the object, the out-of-region caller does not. */
const listed = (find: (res: Response) => boolean) => ({
  inside: (res: Response) => {
    expect(res.status).toBe(200);
    expect(find(res), 'the in-region object is listed').toBe(true);
  },
  outside: (res: Response) => {
    expect(res.status).toBe(200);
    expect(find(res), 'the other region’s object is not listed').toBe(false);
  },
});
/** The denied entry of an attempt on an EU object from outside the EU: answered as if it did not exist. */
const outsideOf = (targetType: string, targetId: string, action: string, more: Record<string, unknown> = {}) => ({
  action,
  outcome: 'denied',
  reason: 'outside_region',
  targetType,
  targetId,
  region: EU,
  ...more,
});
const hasItem = (key: string, value: string) => (res: Response) =>
  (res.body as { items: Array<Record<string, unknown>> }).items.some((i) => i[key] === value);
/** Approvers of these stakeholders (and every non-approver role) are allowed; other approvers get `denied`. */
const approversOf = (stakeholders: Stakeholder[], denied: Outcome): PerVariant => ({
  per: (v) => (v.role !== 'approver' || stakeholders.includes(v.stakeholder!) ? 'allowed' : denied),
});

const SCOPE: Record<string, Scope> = {
  'GET /v1/regions': {
    sample: async () => ({
      path: '/v1/regions',
      ...listed((res) => (res.body as { items: Array<{ code: string }> }).items.some((r) => r.code === EU)),
    }),
  },
  'GET /v1/regions/{code}': {
    sample: async () => ({ path: `/v1/regions/${EU}`, denied: outsideOf('region', EU, 'region.read', { category: 'regions' }) }),
  },
  'PUT /v1/regions/{code}': {
    sample: async () => ({
      path: `/v1/regions/${EU}`,
      body: DEFAULT_REGIONS.eu,
      denied: outsideOf('region', EU, 'region.update'),
    }),
  },
  'GET /v1/settings': { tenant: 'tenant-wide settings' },
  'PATCH /v1/settings': { tenant: 'tenant-wide settings' },
  'POST /v1/system/check': { tenant: 'a system check has no regional object' },
  'POST /codec/decode': { tenant: 'the payload codec has no regional object' },
  'POST /codec/encode': { tenant: 'the payload codec has no regional object' },
  'GET /codec/session': { tenant: 'the payload codec has no regional object' },
  'GET /v1/notice-templates': { tenant: 'notice templates are tenant-wide' },
  'GET /v1/notice-templates/{id}': { tenant: 'notice templates are tenant-wide' },
  'PUT /v1/notice-templates/{id}': { tenant: 'notice templates are tenant-wide' },
  'GET /v1/dev/outbox': { tenant: 'the development SMTP sink of this process has no regional object' },
  'POST /v1/subjects/import': {
    sample: async () => ({
      path: '/v1/subjects/import',
      body: {
        subjects: [
          {
            externalId: `M-${randomUUID()}`,
            displayName: 'Matrix Person',
            email: 'm@example.com',
            department: 'Sales',
            groups: ['m'],
            region: EU,
          },
        ],
      },
      inside: (res) => expect(res.body.rejected).toEqual([]),
      outside: (res) => expect(res.body.rejected).toEqual([{ index: 0, reason: 'region: outside the caller’s regions' }]),
      outsideAlwaysDenied: true,
      denied: {
        action: 'subjects.import',
        category: 'subjects',
        reason: 'outside_region',
        targetType: 'roster',
        region: EU,
        details: { count: 1, indexes: [0] },
      },
    }),
  },
  'GET /v1/subjects': {
    sample: async () => {
      const { id } = await w.subject();
      return {
        path: '/v1/subjects?limit=500',
        ...listed((res) => (res.body as { items: Array<{ subject: { id: string } }> }).items.some((i) => i.subject.id === id)),
      };
    },
  },
  'POST /v1/signals': {
    sample: async () => {
      const s = await w.subject();
      return {
        path: '/v1/signals',
        body: {
          events: [
            {
              source: 'activity',
              externalId: `m-${randomUUID()}`,
              subject: s.externalId,
              type: 'file_copied_to_usb',
              occurredAt: new Date().toISOString(),
              attributes: { count: 1 },
            },
          ],
        },
        inside: (res) => expect(res.body).toMatchObject({ accepted: 1, rejected: [] }),
        outside: (res) => expect(res.body).toMatchObject({ accepted: 0, rejected: [{ index: 0 }] }),
        outsideAlwaysDenied: true,
        denied: outsideOf('subject', s.id, 'signals.ingest', {
          category: 'signals',
          details: expect.objectContaining({ subjectIds: [s.id], events: 1 }),
        }),
      };
    },
  },
  'GET /v1/signals/batches/{batchId}': {
    // Batches belong to the connector that sent them; administrators see all.
    sample: async () => {
      const batchId = await w.batchOf(principal({ key: 'connector', role: 'connector' }, EU));
      return {
        path: `/v1/signals/batches/${batchId}`,
        outside: { per: (v) => (v.role === 'admin' ? 'allowed' : 404) },
        denied: {
          action: 'signals.batch.read',
          reason: 'not_batch_owner',
          targetType: 'signal_batch',
          targetId: batchId,
          region: null,
        },
      };
    },
  },
  'POST /v1/policies': {
    // A regional administrator may not create a policy reaching beyond its regions: 400 naming the field, audited.
    sample: async () => ({
      path: '/v1/policies',
      body: w.policyBody(),
      outside: 400,
      outsideAlwaysDenied: true,
      denied: { action: 'policy.create', reason: 'outside_region', targetType: 'policy', targetId: null, region: EU },
    }),
  },
  'GET /v1/policies': {
    sample: async () => ({ path: '/v1/policies?limit=500', ...listed(hasItem('id', (await w.policy()).id)) }),
  },
  'GET /v1/policies/{id}': {
    sample: async () => {
      const { id } = await w.policy();
      return { path: `/v1/policies/${id}`, denied: outsideOf('policy', id, 'policy.read', { category: 'policies' }) };
    },
  },
  'PATCH /v1/policies/{id}': {
    sample: async () => {
      const { id } = await w.policy();
      return { path: `/v1/policies/${id}`, body: { dailyAlertCap: 150 }, denied: outsideOf('policy', id, 'policy.update') };
    },
  },
  'POST /v1/policies/{id}/activate': {
    sample: async () => {
      const { id } = await w.policy();
      return { path: `/v1/policies/${id}/activate`, body: {}, denied: outsideOf('policy', id, 'policy.activate') };
    },
  },
  'POST /v1/policies/{id}/pause': {
    sample: async () => {
      const { id } = await w.policy();
      return { path: `/v1/policies/${id}/pause`, body: {}, denied: outsideOf('policy', id, 'policy.pause') };
    },
  },
  'GET /v1/alerts': { sample: async () => ({ path: '/v1/alerts?limit=500', ...listed(hasItem('id', (await w.alert()).id)) }) },
  'GET /v1/alerts/{id}': {
    sample: async () => {
      const { id } = await w.alert();
      return { path: `/v1/alerts/${id}`, denied: outsideOf('alert', id, 'alert.read', { category: 'alerts' }) };
    },
  },
  'POST /v1/alerts/{id}/dismiss': {
    sample: async () => {
      const { id } = await w.alert();
      return {
        path: `/v1/alerts/${id}/dismiss`,
        body: { reason: 'false_positive', comment: 'matrix' },
        denied: outsideOf('alert', id, 'alert.dismiss'),
      };
    },
  },
  'POST /v1/alerts/dismiss': {
    sample: async () => {
      const { id } = await w.alert();
      return {
        path: '/v1/alerts/dismiss',
        body: { ids: [id], reason: 'false_positive', comment: 'matrix' },
        inside: (res) => expect(res.body.failed.filter((f: { reason: string }) => f.reason === 'not_found')).toEqual([]),
        outside: (res) => expect(res.body).toMatchObject({ dismissed: [], failed: [{ reason: 'not_found' }] }),
        outsideAlwaysDenied: true,
        denied: outsideOf('alert', id, 'alerts.bulk_dismiss', { details: { count: 1, alertIds: [id] } }),
      };
    },
  },
  'POST /v1/alerts/{id}/assign': {
    sample: async () => {
      const { id } = await w.alert();
      return { path: `/v1/alerts/${id}/assign`, body: { assignee: 'someone' }, denied: outsideOf('alert', id, 'alert.assign') };
    },
  },
  'POST /v1/alerts/{id}/confirm': {
    sample: async () => {
      const { id } = await w.alert();
      return {
        path: `/v1/alerts/${id}/confirm`,
        body: { comment: 'matrix confirm' },
        denied: outsideOf('alert', id, 'alert.confirm', { category: 'alerts' }),
      };
    },
  },
  'GET /v1/cases': { sample: async () => ({ path: '/v1/cases?limit=500', ...listed(hasItem('id', await w.case())) }) },
  'GET /v1/cases/{id}': {
    sample: async () => {
      const id = await w.case();
      return { path: `/v1/cases/${id}`, denied: outsideOf('case', id, 'case.read', { category: 'cases' }) };
    },
  },
  'POST /v1/cases/{id}/assign': {
    sample: async () => {
      const id = await w.case();
      return { path: `/v1/cases/${id}/assign`, body: { owner: 'someone' }, denied: outsideOf('case', id, 'case.assign') };
    },
  },
  'POST /v1/cases/{id}/notes': {
    sample: async () => {
      const id = await w.case();
      return { path: `/v1/cases/${id}/notes`, body: { body: 'matrix note' }, denied: outsideOf('case', id, 'case.note') };
    },
  },
  'POST /v1/cases/{id}/steps': {
    sample: async () => {
      const id = await w.case();
      return {
        path: `/v1/cases/${id}/steps`,
        body: { kind: 'escalate_investigation', reason: 'matrix' },
        denied: outsideOf('case', id, 'case.step.request'),
      };
    },
  },
  'POST /v1/cases/{id}/steps/{stepId}/decision': {
    // The approval route answers an approver outside the region 403 not_in_region (by design: the
    // step is in its inbox's reach only when eligible), and a wrong stakeholder 403 wrong_stakeholder.
    sample: async () => {
      const { caseId, stepId } = await w.step('escalate_investigation');
      return {
        path: `/v1/cases/${caseId}/steps/${stepId}/decision`,
        body: { decision: 'approve', comment: 'matrix' },
        inside: approversOf(['legal', 'privacy'], (res: Response) => {
          expect(res.status).toBe(403);
          expect(res.body.error.details.reason).toBe('wrong_stakeholder');
        }),
        outside: (res) => {
          expect(res.status).toBe(403);
          expect(res.body.error.details.reason).toBe('not_in_region');
        },
        denied: outsideOf('step', stepId, 'step.decide', { category: 'approvals', reason: 'not_in_region' }),
      };
    },
  },
  'POST /v1/cases/{id}/resolve': {
    sample: async () => {
      const id = await w.case();
      return {
        path: `/v1/cases/${id}/resolve`,
        body: { outcome: 'benign', actionTaken: 'none' },
        denied: outsideOf('case', id, 'case.resolve'),
      };
    },
  },
  'GET /v1/approvals/inbox': {
    sample: async () => {
      const { stepId } = await w.step('escalate_investigation');
      const { inside, outside } = listed(hasItem('stepId', stepId));
      // Listed for the approvers the step still needs (in its region), for nobody else.
      return {
        path: '/v1/approvals/inbox?limit=500',
        inside: { per: (v) => (['legal', 'privacy'].includes(v.stakeholder!) ? inside : outside) },
        outside,
      };
    },
  },
  'GET /v1/cases/{id}/identity': {
    // Only the grant's holder reads the identity; another investigator of the region is refused.
    sample: async () => {
      const { caseId } = await w.reveal(principal({ key: 'investigator', role: 'investigator' }, EU));
      return {
        path: `/v1/cases/${caseId}/identity`,
        denied: outsideOf('case', caseId, 'identity.read', { category: 'identity' }),
        extra: [
          {
            who: { sub: 'm-other-investigator', roles: ['investigator'], regions: [EU], languages: ['en'] },
            expect: 403,
            why: 'another investigator’s grant',
            denied: { action: 'identity.read', reason: 'no_grant', targetType: 'case', targetId: caseId, region: EU },
          },
        ],
      };
    },
  },
  'GET /v1/cases/{id}/grants': {
    sample: async () => {
      const { caseId } = await w.reveal(principal({ key: 'investigator', role: 'investigator' }, EU));
      return { path: `/v1/cases/${caseId}/grants`, denied: outsideOf('case', caseId, 'identity.grants.read') };
    },
  },
  'POST /v1/cases/{id}/grants/{grantId}/revoke': {
    sample: async () => {
      const { caseId, grantId } = await w.reveal(principal({ key: 'investigator', role: 'investigator' }, EU));
      return {
        path: `/v1/cases/${caseId}/grants/${grantId}/revoke`,
        body: { comment: 'matrix revoke' },
        inside: approversOf(['legal', 'privacy'], 403),
        denied: outsideOf('case', caseId, 'identity.grant_revoke'),
      };
    },
  },
  'GET /v1/audit': {
    sample: async () => {
      const action = await w.auditEntry();
      return { path: `/v1/audit?action=${action}`, ...listed((res) => (res.body as { items: unknown[] }).items.length === 1) };
    },
  },
  'GET /v1/audit/export': {
    sample: async () => {
      const action = await w.auditEntry();
      return { path: `/v1/audit/export?action=${action}`, ...listed((res) => res.text.includes(action)) };
    },
  },
  'GET /v1/audit/verify': { tenant: 'the chain is one for the whole tenant' },
  'GET /v1/audit/checkpoints': { tenant: 'checkpoints cover the whole chain' },
  'POST /v1/audit/checkpoints': { tenant: 'checkpoints cover the whole chain' },
  'GET /v1/cases/{id}/history': {
    sample: async () => {
      const id = await w.case();
      return { path: `/v1/cases/${id}/history?limit=5`, denied: outsideOf('case', id, 'case.history.read') };
    },
  },
  'GET /v1/cases/{id}/history/raw': {
    sample: async () => {
      const id = await w.case();
      return { path: `/v1/cases/${id}/history/raw`, denied: outsideOf('case', id, 'case.history.download') };
    },
  },
};

let sys: TestSystem;
let operations: Array<{ method: string; path: string; key: string }>;

/** Real objects in the EU region, built through the API and the workflows like any others. */
const w = {
  admin: { sub: 'm-setup-admin', roles: ['admin'], regions: ['*'], languages: ['en'] } as TestPrincipal,
  analyst: { sub: 'm-setup-analyst', roles: ['analyst'], regions: ['*'], languages: ['en'] } as TestPrincipal,
  /** A person imported through the connector API, so the identity vault holds their identity. */
  async subject() {
    const externalId = `M-${randomUUID()}`;
    const res = await sys.http
      .post('/v1/subjects/import')
      .set('Authorization', await sys.auth({ sub: 'm-setup-connector', roles: ['connector'], regions: ['*'] }))
      .send({
        subjects: [
          {
            externalId,
            displayName: 'Matrix Person',
            email: `${externalId.toLowerCase()}@example.com`,
            department: 'Sales',
            groups: ['m'],
            region: EU,
          },
        ],
      });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const [row] = await sys.db
      .select({ id: subjects.id })
      .from(subjects)
      .where(eq(subjects.externalKey, externalKey(sys.config.keys.pseudonym, externalId)));
    return { id: row!.id, externalId };
  },
  async alert() {
    return createAlert(sys.db, { subjectId: (await this.subject()).id, region: EU });
  },
  async case(): Promise<string> {
    const res = await caseDriver(sys).confirm((await this.alert()).id, 'matrix case', this.analyst);
    expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
    return res.body.caseId as string;
  },
  async step(kind: string, requester = principal({ key: 'investigator', role: 'investigator' }, EU)) {
    const caseId = await this.case();
    const res = await caseDriver(sys).requestStep(caseId, kind, requester);
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    return { caseId, stepId: res.body.stepId as string };
  },
  /** A case whose reveal was approved by Privacy and Legal: `holder` holds the grant. */
  async reveal(holder: TestPrincipal) {
    const { caseId, stepId } = await this.step('reveal_identity', holder);
    const drive = caseDriver(sys);
    for (const s of ['privacy', 'legal'] as const) {
      const d = await drive.decide(caseId, stepId, {
        sub: `m-setup-${s}`,
        roles: ['approver'],
        stakeholder: s,
        regions: ['*'],
        languages: ['en'],
      });
      expect(d.status, JSON.stringify(d.body)).toBe(200);
    }
    const grant = await waitFor(
      async () => (await sys.db.select().from(revealGrants).where(eq(revealGrants.stepId, stepId)))[0],
      (g) => g !== undefined,
    );
    expect(grant, 'grant after approval').toBeDefined();
    return { caseId, grantId: grant!.id };
  },
  policyBody: () => ({
    name: `matrix ${randomUUID()}`,
    template: 'data_leaks',
    scope: { regions: [EU], include: { groups: ['matrix'] } },
    indicators: { file_copied_to_usb: 3 },
    thresholds: { minRiskScore: 40, severity: { medium: 60, high: 80 } },
    activationWindowDays: 30,
    dailyAlertCap: 100,
  }),
  async policy() {
    const res = await sys.http
      .post('/v1/policies')
      .set('Authorization', await sys.auth(this.admin))
      .send(this.policyBody());
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body as { id: string };
  },
  async batchOf(connector: TestPrincipal) {
    const s = await this.subject();
    const res = await sys.http
      .post('/v1/signals')
      .set('Authorization', await sys.auth(connector))
      .send({
        events: [
          {
            source: 'activity',
            externalId: `m-${randomUUID()}`,
            subject: s.externalId,
            type: 'file_copied_to_usb',
            occurredAt: new Date().toISOString(),
            attributes: { count: 1 },
          },
        ],
      });
    expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
    return res.body.batchId as string;
  },
  async auditEntry() {
    const action = `matrix.${randomUUID().slice(0, 8)}`;
    await appendAudit(sys.db, { actor: 'm-setup', action, category: 'cases', region: EU, outcome: 'allowed' });
    return action;
  },
};

beforeAll(async () => {
  sys = await startTestSystem();
  const doc = sys.app.openapi as unknown as { paths: Record<string, Record<string, unknown>> };
  operations = Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.keys(ops).map((method) => ({ method: method.toUpperCase(), path, key: `${method.toUpperCase()} ${path}` })),
  );
});
afterAll(async () => sys?.close());

/** Sample path parameters for the role-level pass: syntactically valid, so only the role decides. */
const SAMPLE_PARAMS: Record<string, string> = { code: 'eu' };
const samplePath = (p: string) => p.replace(/\{([^}]+)\}/g, (_, name: string) => SAMPLE_PARAMS[name] ?? randomUUID());

function request(method: string, path: string, body?: unknown): Test {
  const agent = sys.http as unknown as Record<string, (p: string) => Test>;
  const req = agent[method.toLowerCase()]!(path).buffer(true);
  if (!['POST', 'PUT', 'PATCH'].includes(method)) return req;
  return req.send((body ?? {}) as object);
}
const call = (method: string, path: string) => request(method, samplePath(path));

const allowedRoles = (key: string): Role[] => {
  const e = EXPECTED[key];
  return !e || e === 'public' ? [] : e;
};

function check(res: Response, outcome: Outcome, v: Variant, label: string) {
  if (outcome === 'allowed') {
    expect([401, 403, 404], `${label} should be allowed (got ${res.status} ${JSON.stringify(res.body)})`).not.toContain(
      res.status,
    );
    expect(res.status, `${label}: no server error`).toBeLessThan(500);
  } else if (typeof outcome === 'number') {
    expect(res.status, `${label} (${JSON.stringify(res.body)})`).toBe(outcome);
  } else {
    try {
      outcome(res, v);
    } catch (err) {
      (err as Error).message = `${label}: ${(err as Error).message}`;
      throw err;
    }
  }
}

/**
 * The denied audit entries of a response's request. A refusal (403/404, or `expected` given) leaves
 * exactly one, by the caller, matching `expected`; with `noneOtherwise`, a cell answered normally
 * (an out-of-region list without the object) leaves none. (In-region cells may be refused for other
 * reasons, e.g. a policy's missing prerequisites — audited too, but not this test's subject.)
 */
async function checkDenied(
  res: Response,
  who: TestPrincipal,
  label: string,
  expected?: Record<string, unknown>,
  noneOtherwise = false,
) {
  const denied = await sys.db
    .select()
    .from(auditLog)
    .where(and(eq(auditLog.requestId, res.headers['x-request-id']!), eq(auditLog.outcome, 'denied')));
  if (expected || res.status === 403 || res.status === 404) {
    expect(denied, `${label}: the refusal is audited once as denied`).toHaveLength(1);
    expect(denied[0], `${label}: the denied entry`).toMatchObject({ actor: who.sub, outcome: 'denied', ...expected });
  } else if (noneOtherwise) {
    expect(denied, `${label}: nothing refused, nothing audited as denied`).toEqual([]);
  }
}

describe('authorization matrix: roles', () => {
  it('lists every route of the OpenAPI document, and nothing else', () => {
    const documented = operations.map((o) => o.key).sort();
    const missing = documented.filter((k) => !(k in EXPECTED));
    const stale = Object.keys(EXPECTED).filter((k) => !documented.includes(k));
    expect(missing, 'routes without an entry in EXPECTED').toEqual([]);
    expect(stale, 'EXPECTED entries without a route').toEqual([]);
  });

  it('public routes answer without a token; every other route refuses a missing token with 401', async () => {
    for (const op of operations) {
      const res = await call(op.method, op.path);
      if (EXPECTED[op.key] === 'public') expect(res.status, op.key).not.toBe(401);
      else {
        expect(res.status, op.key).toBe(401);
        expect(res.body.error.code, op.key).toBe('unauthenticated');
      }
    }
  });

  for (const v of VARIANTS) {
    it(`${v.key}: allowed routes pass authorization, the others answer 403 and are audited as denied`, async () => {
      const who = principal(v, '*');
      const authz = await sys.auth(who);
      for (const op of operations) {
        const expected = EXPECTED[op.key];
        if (!expected || expected === 'public') continue;
        const res = await call(op.method, op.path).set('Authorization', authz);
        if (expected.includes(v.role)) {
          expect([401, 403], `${v.key} ${op.key} should be allowed (got ${res.status})`).not.toContain(res.status);
        } else {
          expect(res.status, `${v.key} ${op.key} should be denied`).toBe(403);
          const denied = await sys.db
            .select()
            .from(auditLog)
            .where(and(eq(auditLog.requestId, res.headers['x-request-id']!), eq(auditLog.outcome, 'denied')));
          expect(denied, `${v.key} ${op.key} denial audited`).toHaveLength(1);
          expect(denied[0]!).toMatchObject({ actor: who.sub, reason: expect.stringMatching(/^missing permission /) });
        }
      }
    });
  }
});

describe('authorization matrix: objects in and out of the caller’s region', () => {
  it('every non-public route says how it treats another region’s objects', () => {
    const needScope = operations.filter((o) => EXPECTED[o.key] !== 'public').map((o) => o.key);
    expect(
      needScope.filter((k) => !(k in SCOPE)),
      'routes without an entry in SCOPE',
    ).toEqual([]);
    expect(
      Object.keys(SCOPE).filter((k) => !needScope.includes(k)),
      'SCOPE entries without a non-public route',
    ).toEqual([]);
  });

  for (const [key, scope] of Object.entries(SCOPE)) {
    const [method, path] = key.split(' ') as [string, string];
    if ('tenant' in scope) {
      it(`${key}: tenant-wide (${scope.tenant}) — the same answer in and out of any region`, async () => {
        for (const v of VARIANTS.filter((x) => allowedRoles(key).includes(x.role))) {
          for (const region of [EU, OUT]) {
            const res = await call(method, path).set('Authorization', await sys.auth(principal(v, region)));
            check(
              res,
              (r) => expect([401, 403], `${v.key}@${region} ${key} (got ${r.status})`).not.toContain(r.status),
              v,
              `${v.key}@${region} ${key}`,
            );
          }
        }
      });
      continue;
    }
    it(`${key}: callers in the object’s region and outside it, per role and approver stakeholder`, async () => {
      const sample = await scope.sample();
      const variants = VARIANTS.filter((x) => allowedRoles(key).includes(x.role));
      expect(variants.length, `${key} has roles allowed in EXPECTED`).toBeGreaterThan(0);
      const resolve = (o: PerVariant | undefined, v: Variant, dflt: Outcome): Outcome =>
        o === undefined ? dflt : typeof o === 'object' ? o.per(v) : o;
      // Out-of-region first, then in-region refusals, then in-region successes (which may change the object).
      for (const v of variants) {
        const who = principal(v, OUT);
        const res = await request(method, sample.path, sample.body).set('Authorization', await sys.auth(who));
        const label = `${v.key}@${OUT} ${key}`;
        check(res, resolve(sample.outside, v, 404), v, label);
        const refused = sample.outsideAlwaysDenied || res.status === 403 || res.status === 404;
        if (refused) expect(sample.denied, `${key}: the sample names the denied entry of its refusals`).toBeDefined();
        await checkDenied(res, who, label, refused ? sample.denied : undefined, true);
      }
      const inside = variants.map((v) => ({ v, outcome: resolve(sample.inside, v, 'allowed') }));
      inside.sort((a, b) => Number(a.outcome === 'allowed') - Number(b.outcome === 'allowed'));
      for (const { v, outcome } of inside) {
        const who = principal(v, EU);
        const res = await request(method, sample.path, sample.body).set('Authorization', await sys.auth(who));
        check(res, outcome, v, `${v.key}@${EU} ${key}`);
        await checkDenied(res, who, `${v.key}@${EU} ${key}`);
      }
      for (const x of sample.extra ?? []) {
        const res = await request(method, sample.path, sample.body).set('Authorization', await sys.auth(x.who));
        const label = `${x.who.sub} ${key} (${x.why})`;
        check(
          res,
          x.expect,
          VARIANTS.find((v) => v.role === x.who.roles[0])!,
          label,
        );
        await checkDenied(res, x.who, label, x.denied);
      }
    });
  }
});
