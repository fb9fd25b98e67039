/**
 * The authorization matrix: every route of the OpenAPI document × every role. A route missing
 * from EXPECTED fails the test, so every new route must say who may call it.
 */
import { randomUUID } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import type { Test } from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditLog } from '../../db/schema';
import type { Role } from '../../domain/roles';
import { principals, startTestSystem, type TestSystem } from '../helpers/system';

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

/** One principal per role (approver with a stakeholder), all regions so only the role matters. */
const ROLE_PRINCIPALS: Record<Role, { sub: string; roles: Role[]; stakeholder?: 'legal'; regions: string[] }> = {
  admin: { sub: 'm-admin', roles: ['admin'], regions: ['*'] },
  analyst: { sub: 'm-analyst', roles: ['analyst'], regions: ['*'] },
  investigator: { sub: 'm-investigator', roles: ['investigator'], regions: ['*'] },
  auditor: { sub: 'm-auditor', roles: ['auditor'], regions: ['*'] },
  approver: { sub: 'm-approver', roles: ['approver'], stakeholder: 'legal', regions: ['*'] },
  connector: { sub: 'm-connector', roles: ['connector'], regions: ['*'] },
};

/** Sample path parameters: syntactically valid, so only authorization decides the outcome. */
const SAMPLE_PARAMS: Record<string, string> = { code: 'eu' };
const samplePath = (p: string) => p.replace(/\{([^}]+)\}/g, (_, name: string) => SAMPLE_PARAMS[name] ?? randomUUID());

let sys: TestSystem;
let operations: Array<{ method: string; path: string; key: string }>;

beforeAll(async () => {
  sys = await startTestSystem();
  const doc = sys.app.openapi as unknown as { paths: Record<string, Record<string, unknown>> };
  operations = Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.keys(ops).map((method) => ({ method: method.toUpperCase(), path, key: `${method.toUpperCase()} ${path}` })),
  );
});
afterAll(async () => sys?.close());

function call(method: string, path: string) {
  const agent = sys.http as unknown as Record<string, (p: string) => Test>;
  const req = agent[method.toLowerCase()]!(samplePath(path));
  return ['POST', 'PUT', 'PATCH'].includes(method) ? req.send({}) : req;
}

describe('authorization matrix', () => {
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

  for (const role of Object.keys(ROLE_PRINCIPALS) as Role[]) {
    it(`${role}: allowed routes pass authorization, the others answer 403 and are audited as denied`, async () => {
      const authz = await sys.auth(ROLE_PRINCIPALS[role]);
      for (const op of operations) {
        const expected = EXPECTED[op.key];
        if (!expected || expected === 'public') continue;
        const res = await call(op.method, op.path).set('Authorization', authz);
        if (expected.includes(role)) {
          expect([401, 403], `${role} ${op.key} should be allowed (got ${res.status})`).not.toContain(res.status);
        } else {
          expect(res.status, `${role} ${op.key} should be denied`).toBe(403);
          const denied = await sys.db
            .select()
            .from(auditLog)
            .where(and(eq(auditLog.requestId, res.headers['x-request-id']!), eq(auditLog.outcome, 'denied')));
          expect(denied, `${role} ${op.key} denial audited`).toHaveLength(1);
          expect(denied[0]!.actor).toBe(ROLE_PRINCIPALS[role].sub);
        }
      }
    });
  }
});

describe('region scope: outside the caller’s regions a resource does not exist', () => {
  it('an EU-only administrator gets 404 for the US region, read or write', async () => {
    const authz = await sys.auth(principals.adminEu);
    expect((await sys.http.get('/v1/regions/us').set('Authorization', authz)).status).toBe(404);
    const put = await sys.http
      .put('/v1/regions/us')
      .set('Authorization', authz)
      .send({ name: 'US', languages: ['en'], approvalRules: {} });
    expect(put.status).toBe(404);
    const list = await sys.http.get('/v1/regions').set('Authorization', authz);
    expect(list.body.items.map((r: { code: string }) => r.code)).toEqual(['eu']);
  });
});
