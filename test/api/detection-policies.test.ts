/**
 * Policies: the administrator's lifecycle, prerequisites, and each template's trigger, end to end
 * (API → signals → scoring workflow → alerts).
 */
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alerts, auditLog, policies, subjectPolicyScores } from '../../db/schema';
import {
  activate,
  activePolicy,
  at,
  createPolicy,
  DAY,
  ev,
  importPeople,
  ingest,
  person,
  policyBody,
  subjectIdOf,
  uniq,
} from '../helpers/detection';
import { principals, startTestSystem, type TestSystem } from '../helpers/system';

let sys: TestSystem;
beforeAll(async () => {
  sys = await startTestSystem();
});
afterAll(async () => sys?.close());

const admin = () => sys.auth(principals.admin);

async function alertsOf(subjectId: string, policyId: string) {
  return sys.db
    .select()
    .from(alerts)
    .where(and(eq(alerts.subjectId, subjectId), eq(alerts.policyId, policyId)));
}
async function scoreOf(subjectId: string, policyId: string) {
  const [row] = await sys.db
    .select()
    .from(subjectPolicyScores)
    .where(and(eq(subjectPolicyScores.subjectId, subjectId), eq(subjectPolicyScores.policyId, policyId)));
  return row ?? null;
}

// Runs first in this file's fresh database: no connector data has arrived yet.
describe('activation checks each template’s prerequisites', () => {
  it('refuses, for every template, with the list of the connector data still missing, and audits the refusal', async () => {
    const expected = {
      data_theft_departing_users: 'hr_departures',
      data_leaks: 'dlp_alerts',
      security_policy_violations: 'endpoint_alerts',
      risky_users: 'hr_performance',
    } as const;
    for (const [template, missing] of Object.entries(expected)) {
      const p = await createPolicy(sys, policyBody(template as keyof typeof expected, uniq('g')));
      expect(p.prerequisites).toMatchObject({ met: false, missing: [{ id: missing }] });
      const res = await activate(sys, p.id);
      expect(res.status, template).toBe(422);
      expect(res.body.error.code).toBe('precondition_failed');
      expect(res.body.error.details.missing.map((m: { id: string }) => m.id)).toEqual([missing]);
      const [entry] = await sys.db.select().from(auditLog).where(eq(auditLog.requestId, res.headers['x-request-id']!));
      expect(entry).toMatchObject({
        action: 'policy.activate',
        outcome: 'denied',
        targetId: p.id,
        reason: 'prerequisites missing',
      });
      const still = await sys.http.get(`/v1/policies/${p.id}`).set('Authorization', await admin());
      expect(still.body.status).toBe('draft');
    }
  });

  it('once the data has arrived, the same policy activates; data for another template does not count', async () => {
    const p = await createPolicy(sys, policyBody('risky_users', uniq('g')));
    const q = await createPolicy(sys, policyBody('data_theft_departing_users', uniq('g')));
    const someone = person(uniq('g'));
    await importPeople(sys, [someone]);
    await ingest(sys, [ev.performanceReview(someone.externalId)]);
    expect((await activate(sys, p.id)).status).toBe(200);
    const refused = await activate(sys, q.id);
    expect(refused.status).toBe(422);
    expect(refused.body.error.details.missing.map((m: { id: string }) => m.id)).toEqual(['hr_departures']);
  });
});

describe('policy lifecycle (administrator)', () => {
  it('creates a draft from a template, reads, updates, activates and pauses it; every change is audited', async () => {
    const g = uniq('g');
    const body = { ...policyBody('data_leaks', g), indicators: undefined, scope: { regions: ['eu'], include: { groups: [g] } } };
    const created = await createPolicy(sys, body);
    expect(created).toMatchObject({ status: 'draft', version: 1, template: 'data_leaks' });
    // No indicators given: the template's defaults.
    expect((created as unknown as { indicators: Record<string, number> }).indicators).toMatchObject({
      dlp_alert_high: 20,
      file_copied_to_usb: 3,
    });

    const read = await sys.http.get(`/v1/policies/${created.id}`).set('Authorization', await admin());
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({
      id: created.id,
      scope: { regions: ['eu'], include: { groups: [g], subjects: [] }, exclude: { groups: [], subjects: [] } },
      trigger: 'a High-severity DLP alert',
    });

    const patched = await sys.http
      .patch(`/v1/policies/${created.id}`)
      .set('Authorization', await admin())
      .send({ thresholds: { minRiskScore: 30, severity: { medium: 50, high: 70 } }, dailyAlertCap: 5, activationWindowDays: 7 });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    expect(patched.body).toMatchObject({
      version: 2,
      dailyAlertCap: 5,
      activationWindowDays: 7,
      thresholds: { minRiskScore: 30 },
      backfillWorkflowId: null,
    });

    const someone = person(uniq('g'));
    await importPeople(sys, [someone]);
    await ingest(sys, [ev.dlp(someone.externalId, 'low')]);
    const activated = await activate(sys, created.id);
    expect(activated.status).toBe(200);
    expect(activated.body).toMatchObject({ status: 'active', prerequisites: { met: true, missing: [] } });
    expect(activated.body.backfillWorkflowId).toBe(`policy-backfill-${created.id}-v2`);

    const paused = await sys.http.post(`/v1/policies/${created.id}/pause`).set('Authorization', await admin());
    expect(paused.body.status).toBe('paused');

    const list = await sys.http.get('/v1/policies?status=paused&limit=100').set('Authorization', await admin());
    expect(list.body.items.map((p: { id: string }) => p.id)).toContain(created.id);

    const entries = await sys.db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.targetType, 'policy'), eq(auditLog.targetId, created.id)));
    expect(entries.map((e) => e.action)).toEqual(['policy.create', 'policy.update', 'policy.activate', 'policy.pause']);
    expect(entries[1]!.details).toEqual({ fields: ['activationWindowDays', 'dailyAlertCap', 'thresholds'], version: 2 });
  });

  it('refuses bad configuration with a 400 naming the field', async () => {
    const g = uniq('g');
    const cases: Array<[object, string]> = [
      [{ ...policyBody('data_leaks', g), activationWindowDays: 31 }, 'body.activationWindowDays'],
      [{ ...policyBody('data_leaks', g), activationWindowDays: 0 }, 'body.activationWindowDays'],
      [
        { ...policyBody('data_leaks', g), thresholds: { minRiskScore: 40, severity: { medium: 90, high: 80 } } },
        'body.thresholds.severity.medium',
      ],
      [{ ...policyBody('data_leaks', g), template: 'insider_trading' }, 'body.template'],
      [{ ...policyBody('data_leaks', g), indicators: { keystrokes: 3 } }, 'body.indicators'],
      [{ ...policyBody('data_leaks', g), scope: { regions: ['mars'] } }, 'body.scope.regions'],
      [{ ...policyBody('data_leaks', g), dailyAlertCap: 0 }, 'body.dailyAlertCap'],
      [{ ...policyBody('data_leaks', g), dailyAlertCap: 2.5 }, 'body.dailyAlertCap'],
      // Weights are 0–100 points.
      [{ ...policyBody('data_leaks', g), indicators: { dlp_alert_high: 101 } }, 'body.indicators.dlp_alert_high'],
      // The minimum risk score is 1–100.
      [
        { ...policyBody('data_leaks', g), thresholds: { minRiskScore: 0, severity: { medium: 60, high: 80 } } },
        'body.thresholds.minRiskScore',
      ],
      [
        { ...policyBody('data_leaks', g), thresholds: { minRiskScore: 101, severity: { medium: 60, high: 80 } } },
        'body.thresholds.minRiskScore',
      ],
    ];
    for (const [body, field] of cases) {
      const res = await sys.http
        .post('/v1/policies')
        .set('Authorization', await admin())
        .send(body);
      expect(res.status, field).toBe(400);
      expect(res.body.error.message, field).toContain(field);
    }
    const p = await createPolicy(sys, policyBody('data_leaks', g));
    const res = await sys.http
      .patch(`/v1/policies/${p.id}`)
      .set('Authorization', await admin())
      .send({ template: 'risky_users' });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toContain("Unrecognized key(s) in object: 'template'");
    // Every refused body carried the same name as `p`: none of them was stored.
    const named = await sys.db
      .select()
      .from(policies)
      .where(eq(policies.name, `data_leaks ${g}`));
    expect(named.map((r) => r.id)).toEqual([p.id]);
  });

  it('accepts the activation window’s bounds, 1 and 30 days', async () => {
    for (const days of [1, 30]) {
      const created = await createPolicy(sys, policyBody('data_leaks', uniq('g'), { activationWindowDays: days }));
      const read = await sys.http.get(`/v1/policies/${created.id}`).set('Authorization', await admin());
      expect(read.status).toBe(200);
      expect(read.body.activationWindowDays, String(days)).toBe(days);
    }
  });

  it('a PATCH of the indicators and the priority groups is applied, and a bad weight changes nothing', async () => {
    const p = await createPolicy(sys, policyBody('data_leaks', uniq('g')));
    const [vip, board] = [uniq('vip'), uniq('board')];
    const indicators = { file_copied_to_usb: 7, dlp_alert_high: 25, email_to_external_domain: 0 };
    const patched = await sys.http
      .patch(`/v1/policies/${p.id}`)
      .set('Authorization', await admin())
      .send({ indicators, priorityGroups: [vip, board] });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    expect(patched.body).toMatchObject({ version: 2, indicators, priorityGroups: [vip, board] });
    const read = await sys.http.get(`/v1/policies/${p.id}`).set('Authorization', await admin());
    expect(read.body).toMatchObject({ version: 2, priorityGroups: [vip, board] });
    expect(read.body.indicators).toEqual(indicators);

    const refused = await sys.http
      .patch(`/v1/policies/${p.id}`)
      .set('Authorization', await admin())
      .send({ indicators: { file_copied_to_usb: 101 } });
    expect(refused.status).toBe(400);
    expect(refused.body.error.message).toContain('body.indicators.file_copied_to_usb');
    const after = await sys.http.get(`/v1/policies/${p.id}`).set('Authorization', await admin());
    expect(after.body).toMatchObject({ version: 2, priorityGroups: [vip, board] });
    expect(after.body.indicators).toEqual(indicators);
  });

  it('a regional administrator manages only policies confined to its regions', async () => {
    const global = await createPolicy(sys, policyBody('data_leaks', uniq('g')));
    const euAdmin = await sys.auth(principals.adminEu);
    expect((await sys.http.get(`/v1/policies/${global.id}`).set('Authorization', euAdmin)).status).toBe(404);
    const outside = await sys.http
      .post('/v1/policies')
      .set('Authorization', euAdmin)
      .send({ ...policyBody('data_leaks', uniq('g')), scope: { regions: ['us'] } });
    expect(outside.status).toBe(400);
    const mine = await sys.http
      .post('/v1/policies')
      .set('Authorization', euAdmin)
      .send({ ...policyBody('data_leaks', uniq('g')), scope: { regions: ['eu'] } });
    expect(mine.status).toBe(201);
    const list = await sys.http.get('/v1/policies?limit=500').set('Authorization', euAdmin);
    const ids = list.body.items.map((p: { id: string }) => p.id);
    expect(ids).toContain(mine.body.id);
    expect(ids).not.toContain(global.id);
  });

  it('a paused policy stops scoring; reactivated, its backfill scores what arrived meanwhile', async () => {
    const g = uniq('g');
    const policy = await activePolicy(sys, policyBody('data_theft_departing_users', g));
    const p = person(g);
    await importPeople(sys, [p]);
    const sid = await subjectIdOf(sys, p.externalId);
    await sys.http.post(`/v1/policies/${policy.id}/pause`).set('Authorization', await admin());
    await ingest(sys, [ev.resignation(p.externalId), ev.usb(p.externalId, 20)]);
    expect(await scoreOf(sid, policy.id)).toBeNull();
    const res = await activate(sys, policy.id);
    expect(res.status).toBe(200);
    expect((await scoreOf(sid, policy.id))?.score).toBe(60);
    expect(await alertsOf(sid, policy.id)).toHaveLength(1);
  });
});

describe('each template’s trigger, end to end', () => {
  it('data theft by departing users: a resignation or a termination triggers; activity alone does not', async () => {
    const g = uniq('g');
    const policy = await activePolicy(sys, policyBody('data_theft_departing_users', g));
    const [resigning, terminated, staying] = [person(g), person(g), person(g)];
    await importPeople(sys, [resigning, terminated, staying]);
    const r = await ingest(sys, [
      ev.resignation(resigning.externalId),
      ev.usb(resigning.externalId, 20),
      ev.termination(terminated.externalId),
      ev.usb(terminated.externalId, 20),
      ev.usb(staying.externalId, 50),
    ]);
    expect(r.scoring!.alertsCreated).toHaveLength(2);
    for (const who of [resigning, terminated]) {
      const sid = await subjectIdOf(sys, who.externalId);
      expect((await scoreOf(sid, policy.id))!.score).toBe(60);
      const [alert] = await alertsOf(sid, policy.id);
      expect(alert).toMatchObject({ status: 'needs_review', score: 60, severity: 'medium', region: 'eu' });
    }
    const staySid = await subjectIdOf(sys, staying.externalId);
    expect(await scoreOf(staySid, policy.id)).toBeNull();
    expect(await alertsOf(staySid, policy.id)).toEqual([]);
  });

  it('data leaks: a High-severity DLP alert triggers; Medium and Low do not', async () => {
    const g = uniq('g');
    const policy = await activePolicy(
      sys,
      policyBody('data_leaks', g, { indicators: { dlp_alert_high: 20, dlp_alert_medium: 10, file_copied_to_usb: 3 } }),
    );
    const [high, medium] = [person(g), person(g)];
    await importPeople(sys, [high, medium]);
    await ingest(sys, [
      ev.dlp(high.externalId, 'high'),
      ev.usb(high.externalId, 10),
      ev.dlp(medium.externalId, 'medium'),
      ev.dlp(medium.externalId, 'low'),
      ev.usb(medium.externalId, 30),
    ]);
    const hs = await subjectIdOf(sys, high.externalId);
    expect((await scoreOf(hs, policy.id))!.score).toBe(50);
    expect((await alertsOf(hs, policy.id))[0]!.riskFactors[0]).toMatchObject({
      kind: 'trigger',
      name: 'dlp_alert_high',
      points: 20,
    });
    const ms = await subjectIdOf(sys, medium.externalId);
    expect(await scoreOf(ms, policy.id)).toBeNull();
    expect(await alertsOf(ms, policy.id)).toEqual([]);
  });

  it('security policy violations: an endpoint-security alert triggers; DLP alerts and activity alone do not', async () => {
    const g = uniq('g');
    const policy = await activePolicy(
      sys,
      // DLP alerts carry weight here, so a DLP alert taken for a trigger would show in a score.
      policyBody('security_policy_violations', g, {
        indicators: { endpoint_alert: 20, file_downloaded: 2, dlp_alert_high: 20, dlp_alert_medium: 10 },
      }),
    );
    const [flagged, clean, dlpOnly] = [person(g), person(g), person(g)];
    await importPeople(sys, [flagged, clean, dlpOnly]);
    await ingest(sys, [
      ev.endpoint(flagged.externalId),
      ev.activity(flagged.externalId, 'file_downloaded', 10),
      ev.activity(clean.externalId, 'file_downloaded', 40),
      ev.dlp(dlpOnly.externalId, 'high'),
      ev.dlp(dlpOnly.externalId, 'high', at(DAY)),
      ev.dlp(dlpOnly.externalId, 'medium'),
      ev.activity(dlpOnly.externalId, 'file_downloaded', 40),
    ]);
    const fs = await subjectIdOf(sys, flagged.externalId);
    expect((await alertsOf(fs, policy.id))[0]).toMatchObject({ score: 40, severity: 'low' });
    expect(await scoreOf(await subjectIdOf(sys, clean.externalId), policy.id)).toBeNull();
    // High DLP alerts and heavy activity, but no endpoint alert: not triggered for this policy.
    const ds = await subjectIdOf(sys, dlpOnly.externalId);
    expect(await scoreOf(ds, policy.id)).toBeNull();
    expect(await alertsOf(ds, policy.id)).toEqual([]);
  });

  it('risky users: a performance review or a demotion triggers; a promotion does not', async () => {
    const g = uniq('g');
    // The template's default weights: performance_review 5, job_level_change 10, file_copied_to_usb 3.
    const policy = await activePolicy(sys, policyBody('risky_users', g, { indicators: undefined }));
    const [reviewed, demoted, promoted] = [person(g), person(g), person(g)];
    await importPeople(sys, [reviewed, demoted, promoted]);
    await ingest(sys, [
      ev.performanceReview(reviewed.externalId),
      ev.usb(reviewed.externalId, 15),
      ev.levelChange(demoted.externalId, 'L6', 'L5'),
      ev.usb(demoted.externalId, 17),
      ev.levelChange(promoted.externalId, 'L5', 'L6'),
      ev.usb(promoted.externalId, 15),
    ]);
    // Review: 5 + 15 × 3 = 50 (low, below the medium band at 60); demotion: 10 + 17 × 3 = 61 (medium).
    const expected = [
      [reviewed, 'performance_review', 5, 50, 'low'],
      [demoted, 'job_level_change', 10, 61, 'medium'],
    ] as const;
    for (const [who, trigger, triggerPoints, score, severity] of expected) {
      const sid = await subjectIdOf(sys, who.externalId);
      const list = await alertsOf(sid, policy.id);
      expect(list).toHaveLength(1);
      expect(list[0], trigger).toMatchObject({ score, severity, status: 'needs_review' });
      expect(list[0]!.riskFactors[0]).toMatchObject({ kind: 'trigger', name: trigger, points: triggerPoints });
      expect((await scoreOf(sid, policy.id))!.score).toBe(score);
    }
    expect(await scoreOf(await subjectIdOf(sys, promoted.externalId), policy.id)).toBeNull();
  });

  it('the window is the activation window after the trigger: activity before it or after it does not count', async () => {
    const g = uniq('g');
    const policy = await activePolicy(sys, policyBody('data_theft_departing_users', g, { activationWindowDays: 3 }));
    const p = person(g);
    await importPeople(sys, [p]);
    await ingest(sys, [
      ev.usb(p.externalId, 30, at(-DAY)),
      ev.resignation(p.externalId, at(0)),
      ev.usb(p.externalId, 5, at(2 * DAY)),
      ev.usb(p.externalId, 30, at(4 * DAY)),
    ]);
    expect((await scoreOf(await subjectIdOf(sys, p.externalId), policy.id))!.score).toBe(15);
  });
});
