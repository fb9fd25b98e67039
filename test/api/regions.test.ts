import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegionSchema } from '../../api/routes/regions';
import { auditLog } from '../../db/schema';
import { principals, startTestSystem, type TestSystem } from '../helpers/system';

let sys: TestSystem;
let admin: string;
beforeAll(async () => {
  sys = await startTestSystem({ worker: false });
  admin = await sys.auth(principals.admin);
});
afterAll(async () => sys?.close());

const apac = {
  name: 'Asia Pacific',
  languages: ['en', 'ja'],
  requireReviewerLanguage: true,
  allowDeanonymization: true,
  revealGrantHours: 12,
  approvalRules: {
    reveal_identity: {
      require: [{ stakeholder: 'legal', count: 2 }],
      slaHours: 24,
      remindAtPercent: [50, 80],
      onExpiry: 'escalate',
      escalateTo: 'compliance',
    },
  },
  restricted: [{ sub: 'legal-7', stepKinds: ['reveal_identity'] }],
};

describe('regions and approval rules', () => {
  it('a fresh installation has eu and us with the example rules of the design', async () => {
    const res = await sys.http.get('/v1/regions/eu').set('Authorization', admin);
    expect(res.status).toBe(200);
    const eu = RegionSchema.parse(res.body);
    expect(eu.allowDeanonymization).toBe(false);
    expect(eu.approvalRules.reveal_identity).toMatchObject({
      require: [
        { stakeholder: 'privacy', count: 1 },
        { stakeholder: 'legal', count: 1 },
      ],
      slaHours: 48,
    });
    const us = RegionSchema.parse((await sys.http.get('/v1/regions/us').set('Authorization', admin)).body);
    expect(us.approvalRules.reveal_identity?.require).toEqual([{ stakeholder: 'legal', count: 1 }]);
    expect(us.approvalRules.escalate_hr_action?.require.map((r) => r.stakeholder)).toEqual(['hr', 'legal']);
  });

  it('an administrator creates a region, then replaces it; both are audited', async () => {
    const created = await sys.http.put('/v1/regions/apac').set('Authorization', admin).send(apac);
    expect(created.status).toBe(201);
    expect(RegionSchema.parse(created.body)).toMatchObject({ code: 'apac', version: 1, revealGrantHours: 12 });
    const replaced = await sys.http
      .put('/v1/regions/apac')
      .set('Authorization', admin)
      .send({ ...apac, revealGrantHours: 6 });
    expect(replaced.status).toBe(200);
    expect(replaced.body).toMatchObject({ version: 2, revealGrantHours: 6 });
    const read = await sys.http.get('/v1/regions/apac').set('Authorization', admin);
    expect(read.body.approvalRules.reveal_identity.escalateTo).toBe('compliance');
    const entries = await sys.db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.targetType, 'region'), eq(auditLog.targetId, 'apac')));
    expect(entries.map((e) => [e.action, e.actor, e.outcome])).toEqual([
      ['region.create', principals.admin.sub, 'allowed'],
      ['region.update', principals.admin.sub, 'allowed'],
    ]);
  });

  const invalid: Array<[string, (r: typeof apac) => unknown, string, RegExp]> = [
    [
      'k below 1',
      (r) => ({
        ...r,
        approvalRules: { reveal_identity: { ...r.approvalRules.reveal_identity, require: [{ stakeholder: 'legal', count: 0 }] } },
      }),
      'body.approvalRules.reveal_identity.require.0.count',
      /at least 1/,
    ],
    [
      'an unknown stakeholder',
      (r) => ({
        ...r,
        approvalRules: {
          reveal_identity: { ...r.approvalRules.reveal_identity, require: [{ stakeholder: 'finance', count: 1 }] },
        },
      }),
      'body.approvalRules.reveal_identity.require.0.stakeholder',
      /expected one of .*'legal'/,
    ],
    [
      'an unknown step kind',
      (r) => ({ ...r, approvalRules: { delete_everything: r.approvalRules.reveal_identity } }),
      'body.approvalRules',
      /Unrecognized key.*delete_everything/,
    ],
    [
      'an SLA of zero',
      (r) => ({ ...r, approvalRules: { reveal_identity: { ...r.approvalRules.reveal_identity, slaHours: 0 } } }),
      'body.approvalRules.reveal_identity.slaHours',
      /greater than 0/,
    ],
    [
      'a reminder at or after the SLA',
      (r) => ({ ...r, approvalRules: { reveal_identity: { ...r.approvalRules.reveal_identity, remindAtPercent: [50, 100] } } }),
      'body.approvalRules.reveal_identity.remindAtPercent.1',
      /less than or equal to 99/,
    ],
    [
      'reminders out of order',
      (r) => ({ ...r, approvalRules: { reveal_identity: { ...r.approvalRules.reveal_identity, remindAtPercent: [80, 50] } } }),
      'body.approvalRules.reveal_identity.remindAtPercent.1',
      /increasing/,
    ],
    [
      'escalation without a role',
      (r) => ({ ...r, approvalRules: { reveal_identity: { ...r.approvalRules.reveal_identity, escalateTo: undefined } } }),
      'body.approvalRules.reveal_identity.escalateTo',
      /escalateTo/,
    ],
    ['an unknown field', (r) => ({ ...r, colour: 'blue' }), 'body', /Unrecognized key.*colour/],
    ['a wrong type', (r) => ({ ...r, languages: 'en' }), 'body.languages', /Expected array/],
  ];
  for (const [what, mutate, field, message] of invalid) {
    it(`refuses ${what} with a 400 naming ${field}, and changes nothing`, async () => {
      const before = await sys.http.get('/v1/regions/apac').set('Authorization', admin);
      const res = await sys.http
        .put('/v1/regions/apac')
        .set('Authorization', admin)
        .send(mutate(structuredClone(apac)) as object);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('validation_error');
      const detail = res.body.error.details.find((d: { field: string }) => d.field === field);
      expect(detail, JSON.stringify(res.body.error.details)).toBeDefined();
      expect(detail.message).toMatch(message);
      expect(res.body.error.message).toContain(field);
      const after = await sys.http.get('/v1/regions/apac').set('Authorization', admin);
      expect(after.body).toEqual(before.body);
    });
  }

  it('refuses a malformed region code in the path', async () => {
    const res = await sys.http.put('/v1/regions/EU!').set('Authorization', admin).send(apac);
    expect(res.status).toBe(400);
    expect(res.body.error.details[0].field).toBe('path.code');
  });

  it('a non-administrator is refused with 403 and the attempt is audited as denied', async () => {
    const res = await sys.http
      .put('/v1/regions/eu')
      .set('Authorization', await sys.auth(principals.investigator))
      .send(apac);
    expect(res.status).toBe(403);
    const [entry] = await sys.db.select().from(auditLog).where(eq(auditLog.requestId, res.headers['x-request-id']!));
    expect(entry).toMatchObject({ actor: principals.investigator.sub, outcome: 'denied', category: 'regions' });
    expect(entry!.reason).toContain('regions:write');
  });
});
