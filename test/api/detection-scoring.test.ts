/**
 * Scoring end to end: signals through the API, one scoring workflow per batch, scores and alerts
 * in Postgres. Threshold, severity rising, boosters, idempotency, concurrency, the daily cap, scope
 * and the users view.
 */
import { randomUUID } from 'node:crypto';
import { and, eq, inArray } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scoreSubjects } from '../../activities/scoring';
import { subjectCache } from '../../db/queries/scoring-cache';
import { createLogger } from '../../infra/logger';
import { recordConfirmedViolation } from '../../db/queries/subjects';
import { alerts, policyDailyAlerts, subjectPolicyScores } from '../../db/schema';
import type { ScoreSubjectsResult } from '../../workflows/definitions';
import {
  activePolicy,
  at,
  DAY,
  departing as departingPerson,
  ev,
  importPeople,
  ingest,
  person,
  policyBody,
  type Person,
  scoreOf as scoreOfPair,
  scoringOf,
  subjectIdOf,
  uniq,
} from '../helpers/detection';
import { principals, startTestSystem, type TestSystem } from '../helpers/system';

let sys: TestSystem;
beforeAll(async () => {
  sys = await startTestSystem();
});
afterAll(async () => sys?.close());

const alertsOf = (subjectId: string, policyId: string) =>
  sys.db
    .select()
    .from(alerts)
    .where(and(eq(alerts.subjectId, subjectId), eq(alerts.policyId, policyId)));
const scoreOf = (subjectId: string, policyId: string) => scoreOfPair(sys, subjectId, policyId);

const departing = (over: Parameters<typeof policyBody>[2] = {}) => departingPerson(sys, over);

describe('threshold', () => {
  it('one point below the minimum risk score raises no alert; reaching it raises one', async () => {
    const { policy, p, sid } = await departing({ indicators: { file_copied_to_usb: 1 } });
    const first = await ingest(sys, [ev.resignation(p.externalId), ev.usb(p.externalId, 39)]);
    expect(first.scoring!.alertsCreated).toEqual([]);
    expect((await scoreOf(sid, policy.id))!.score).toBe(39);
    expect(await alertsOf(sid, policy.id)).toEqual([]);

    const second = await ingest(sys, [ev.usb(p.externalId, 1, at(2 * DAY))]);
    expect(second.scoring!.alertsCreated).toHaveLength(1);
    const [alert] = await alertsOf(sid, policy.id);
    expect(alert).toMatchObject({ score: 40, severity: 'low', status: 'needs_review', id: second.scoring!.alertsCreated[0] });
    expect((await scoreOf(sid, policy.id))!.alertId).toBe(alert!.id);
  });
});

describe('severity rising', () => {
  it('a later, higher score raises the open alert’s score and severity; it stays one alert', async () => {
    const { policy, p, sid } = await departing();
    const a = await ingest(sys, [ev.resignation(p.externalId), ev.usb(p.externalId, 15)]);
    const [low] = await alertsOf(sid, policy.id);
    expect(low).toMatchObject({ score: 45, severity: 'low', id: a.scoring!.alertsCreated[0] });

    const b = await ingest(sys, [ev.usb(p.externalId, 7, at(2 * DAY))]);
    expect(b.scoring).toMatchObject({ alertsCreated: [], alertsRaised: [low!.id] });
    const [medium] = await alertsOf(sid, policy.id);
    expect(medium).toMatchObject({ id: low!.id, score: 66, severity: 'medium' });
    expect(medium!.updatedAt.getTime()).toBeGreaterThan(low!.updatedAt.getTime());

    await ingest(sys, [ev.usb(p.externalId, 5, at(3 * DAY))]);
    const all = await alertsOf(sid, policy.id);
    expect(all).toHaveLength(1);
    expect(all[0]).toMatchObject({ id: low!.id, score: 81, severity: 'high' });
    // The factors explain the score: trigger + one indicator with every contributing signal.
    const usb = all[0]!.riskFactors.find((f) => f.name === 'file_copied_to_usb')!;
    expect(usb.points).toBe(81);
    expect(usb.signalIds).toHaveLength(3);
  });
});

describe('boosters', () => {
  it('priority group: a member’s score is boosted, with the booster named in the risk factors', async () => {
    const g = uniq('g');
    const vip = uniq('vip');
    const policy = await activePolicy(
      sys,
      policyBody('data_theft_departing_users', g, {
        priorityGroups: [vip],
        boosters: { priorityGroup: 50, aboveUsualActivity: 0, previousViolation: 0 },
      }),
    );
    const member = { ...person(g), groups: [g, vip] };
    const other = person(g);
    await importPeople(sys, [member, other]);
    await ingest(sys, [
      ev.resignation(member.externalId),
      ev.usb(member.externalId, 10),
      ev.resignation(other.externalId),
      ev.usb(other.externalId, 10),
    ]);
    const [boosted] = await alertsOf(await subjectIdOf(sys, member.externalId), policy.id);
    expect(boosted).toMatchObject({ score: 45 });
    expect(boosted!.riskFactors.find((f) => f.kind === 'booster')).toMatchObject({
      name: 'priority_group',
      points: 15,
      detail: { groups: [vip] },
    });
    expect((await scoreOf(await subjectIdOf(sys, other.externalId), policy.id))!.score).toBe(30);
  });

  it('activity above the subject’s own usual daily level boosts the score', async () => {
    const { policy, p, sid } = await departing({ boosters: { priorityGroup: 0, aboveUsualActivity: 50, previousViolation: 0 } });
    // Usual: 4 copies a day on active days before the trigger; then 10 in one day after it.
    await ingest(sys, [
      ev.usb(p.externalId, 4, at(-5 * DAY)),
      ev.usb(p.externalId, 4, at(-12 * DAY)),
      ev.resignation(p.externalId),
      ev.usb(p.externalId, 10, at(DAY)),
    ]);
    const score = (await scoreOf(sid, policy.id))!;
    expect(score.score).toBe(45);
    expect(score.riskFactors.find((f) => f.kind === 'booster')).toMatchObject({
      name: 'above_usual_activity',
      points: 15,
      detail: { usualDailyLevel: 4, peakCount: 10 },
    });
  });

  it('a previous confirmed violation boosts the score', async () => {
    const { policy, p, sid } = await departing({ boosters: { priorityGroup: 0, aboveUsualActivity: 0, previousViolation: 50 } });
    await ingest(sys, [ev.resignation(p.externalId), ev.usb(p.externalId, 10)]);
    expect((await scoreOf(sid, policy.id))!.score).toBe(30);
    await recordConfirmedViolation(sys.db, { subjectId: sid, caseId: randomUUID(), resolvedAt: new Date() });
    await ingest(sys, [ev.usb(p.externalId, 1, at(2 * DAY))]);
    const score = (await scoreOf(sid, policy.id))!;
    expect(score.score).toBe(50);
    expect(score.riskFactors.find((f) => f.kind === 'booster')).toMatchObject({
      name: 'previous_confirmed_violation',
      points: 17,
    });
  });
});

describe('idempotency', () => {
  it('duplicate events and a re-run of the same batch change nothing', async () => {
    const { policy, p, sid } = await departing();
    const events = [ev.resignation(p.externalId), ev.usb(p.externalId, 15), ev.usb(p.externalId, 10, at(2 * DAY))];
    const first = await ingest(sys, events);
    const snapshot = async () => ({
      alerts: await alertsOf(sid, policy.id),
      score: await scoreOf(sid, policy.id),
      counter: await sys.db.select().from(policyDailyAlerts).where(eq(policyDailyAlerts.policyId, policy.id)),
    });
    const before = await snapshot();
    expect(before.alerts).toHaveLength(1);
    expect(before.score!.score).toBe(75);

    // The same events again: all duplicates; the re-score finds nothing to change.
    const replay = await ingest(sys, events);
    expect(replay.body).toMatchObject({ accepted: 0, duplicates: 3 });
    expect(replay.scoring).toMatchObject({ scoresChanged: 0, alertsCreated: [], alertsRaised: [] });
    expect(await snapshot()).toEqual(before);

    // The same batch's scoring run again (as a retried activity would).
    const rerun = (await sys.client.workflow.execute('scoreSignalBatchWorkflow', {
      taskQueue: sys.taskQueue,
      workflowId: `rerun-${first.body.batchId}`,
      args: [{ batchId: first.body.batchId, subjectIds: [sid] }],
    })) as ScoreSubjectsResult;
    expect(rerun).toMatchObject({ pairsScored: 1, scoresChanged: 0, alertsCreated: [], alertsRaised: [] });
    expect(await snapshot()).toEqual(before);
  });

  it('a dismissed alert is not raised again by the same evidence; new evidence raises a new alert', async () => {
    const { policy, p, sid } = await departing();
    await ingest(sys, [ev.resignation(p.externalId), ev.usb(p.externalId, 15)]);
    const [first] = await alertsOf(sid, policy.id);
    const res = await sys.http
      .post(`/v1/alerts/${first!.id}/dismiss`)
      .set('Authorization', await sys.auth(principals.analyst))
      .send({ reason: 'benign_activity', comment: 'Approved backup to an encrypted drive' });
    expect(res.status).toBe(200);
    const again = await sys.client.workflow.execute('scoreSignalBatchWorkflow', {
      taskQueue: sys.taskQueue,
      workflowId: `rerun-${randomUUID()}`,
      args: [{ batchId: randomUUID(), subjectIds: [sid] }],
    });
    expect(again).toMatchObject({ alertsCreated: [] });
    expect(await alertsOf(sid, policy.id)).toHaveLength(1);

    await ingest(sys, [ev.usb(p.externalId, 5, at(2 * DAY))]);
    const all = await alertsOf(sid, policy.id);
    expect(all).toHaveLength(2);
    expect(all.find((a) => a.id !== first!.id)).toMatchObject({ status: 'needs_review', score: 60 });
  });
});

describe('concurrency', () => {
  it('concurrent batches touching the same subject converge on the right score and one alert', async () => {
    const { policy, p, sid } = await departing();
    // The trigger and the activity arrive in different, concurrent batches.
    const batches = [
      [ev.resignation(p.externalId)],
      ...Array.from({ length: 7 }, (_, i) => [
        ev.usb(p.externalId, 2, at(DAY + i * 1000)),
        ev.usb(p.externalId, 1, at(DAY + i * 1000 + 1)),
      ]),
    ];
    const results = await Promise.all(batches.map((events) => ingest(sys, events)));
    expect(results.reduce((n, r) => n + r.body.accepted, 0)).toBe(15);
    expect((await scoreOf(sid, policy.id))!.score).toBe(63);
    const list = await alertsOf(sid, policy.id);
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ score: 63, severity: 'medium' });
    expect(results.flatMap((r) => r.scoring?.alertsCreated ?? [])).toEqual([list[0]!.id]);
  });

  it('many concurrent batches over a few subjects: every subject ends with its full score and exactly one alert', async () => {
    const g = uniq('g');
    const policy = await activePolicy(sys, policyBody('data_theft_departing_users', g));
    const trio = [person(g), person(g), person(g)];
    await importPeople(sys, trio);
    // Ten concurrent batches, each carrying a trigger or activity for every one of the three.
    const batches = Array.from({ length: 10 }, (_, i) =>
      trio.map((p) => (i === 3 ? ev.resignation(p.externalId) : ev.usb(p.externalId, 2, at(DAY + i * 1000)))),
    );
    await Promise.all(batches.map((events) => ingest(sys, events)));
    for (const p of trio) {
      const sid = await subjectIdOf(sys, p.externalId);
      expect((await scoreOf(sid, policy.id))!.score).toBe(54);
      const list = await alertsOf(sid, policy.id);
      expect(list).toHaveLength(1);
      expect(list[0]).toMatchObject({ score: 54, status: 'needs_review' });
    }
  });
});

describe('the daily alert cap', () => {
  // The cap counts new alerts per policy per UTC day of the scoring's `now`. A batch's own scoring
  // uses the real clock, so these tests score at fixed days instead (the last seconds of one UTC
  // day and the first of the next): the result never depends on when the suite runs.
  const DAY_D = new Date('2031-06-30T23:59:58Z');
  const DAY_D1 = new Date('2031-07-01T00:00:02Z');
  const scoreAt = (now: Date, subjectIds: string[], policyId: string) =>
    scoreSubjects({ db: sys.db, logger: createLogger({ level: 'warn' }) }, { subjectIds, policyIds: [policyId] }, now);
  const countersOf = async (policyId: string) =>
    (await sys.db.select().from(policyDailyAlerts).where(eq(policyDailyAlerts.policyId, policyId)))
      .map((r) => ({ day: r.day, count: r.count }))
      .sort((a, b) => (a.day < b.day ? -1 : 1));

  /**
   * Sends `events` while `people` sit in a holding group outside the policy's scope, then brings
   * them back into `group`: the batch's own scoring (at the real date) does not score them for the
   * policy, and the test scores them itself at a chosen `now`.
   */
  async function arriveUnscored(people: Person[], group: string, policyId: string, events: unknown[]) {
    const hold = uniq('hold');
    await importPeople(
      sys,
      people.map((p) => ({ ...p, groups: [hold] })),
    );
    const ids = await Promise.all(people.map((p) => subjectIdOf(sys, p.externalId)));
    const rows = () =>
      sys.db
        .select()
        .from(subjectPolicyScores)
        .where(and(eq(subjectPolicyScores.policyId, policyId), inArray(subjectPolicyScores.subjectId, ids)))
        .orderBy(subjectPolicyScores.subjectId);
    const before = await rows();
    const batch = await ingest(sys, events);
    // The premise: the batch's own scoring left the policy's scores, alerts and counter alone.
    expect(batch.scoring).toMatchObject({ alertsCreated: [], alertsRaised: [] });
    expect(await rows()).toEqual(before);
    expect((await countersOf(policyId)).every((c) => c.day.startsWith('2031-'))).toBe(true);
    await importPeople(
      sys,
      people.map((p) => ({ ...p, groups: [group] })),
    );
    return ids;
  }

  it('holds under concurrent scorings of one UTC day, and capped subjects show as suppressed', async () => {
    const g = uniq('g');
    const policy = await activePolicy(sys, policyBody('data_theft_departing_users', g, { dailyAlertCap: 3 }));
    const people = Array.from({ length: 6 }, () => person(g));
    const ids = await arriveUnscored(
      people,
      g,
      policy.id,
      people.flatMap((p) => [ev.resignation(p.externalId), ev.usb(p.externalId, 15)]),
    );
    expect(await sys.db.select().from(subjectPolicyScores).where(eq(subjectPolicyScores.policyId, policy.id))).toEqual([]);

    const results = await Promise.all([0, 2, 4].map((i) => scoreAt(DAY_D, ids.slice(i, i + 2), policy.id)));
    const raised = await sys.db
      .select()
      .from(alerts)
      .where(and(eq(alerts.policyId, policy.id), inArray(alerts.subjectId, ids)));
    expect(raised).toHaveLength(3);
    expect(results.flatMap((r) => r.alertsCreated).sort()).toEqual(raised.map((a) => a.id).sort());
    expect(results.reduce((n, r) => n + r.suppressedByCap, 0)).toBe(3);
    const scores = await sys.db.select().from(subjectPolicyScores).where(eq(subjectPolicyScores.policyId, policy.id));
    expect(scores).toHaveLength(6);
    expect(scores.every((s) => s.score === 45)).toBe(true);
    const suppressed = scores.filter((s) => s.suppressedByCap);
    expect(suppressed).toHaveLength(3);
    // The suppressed are exactly those without an alert, and their rows link none.
    expect(suppressed.map((s) => s.subjectId).sort()).toEqual(ids.filter((id) => !raised.some((a) => a.subjectId === id)).sort());
    expect(suppressed.every((s) => s.alertId === null)).toBe(true);
    expect(await countersOf(policy.id)).toEqual([{ day: '2031-06-30', count: 3 }]);

    // Another subject the same day: still capped.
    const late = person(g);
    const [lateId] = await arriveUnscored([late], g, policy.id, [ev.resignation(late.externalId), ev.usb(late.externalId, 15)]);
    expect(await scoreAt(DAY_D, [lateId!], policy.id)).toMatchObject({ alertsCreated: [], suppressedByCap: 1 });
    expect(await alertsOf(lateId!, policy.id)).toEqual([]);
    expect((await scoreOf(lateId!, policy.id))!.suppressedByCap).toBe(true);
    expect(await countersOf(policy.id)).toEqual([{ day: '2031-06-30', count: 3 }]);
  });

  it('raising an already-open alert does not count against the cap, and a reached cap does not hold it back', async () => {
    const g = uniq('g');
    const policy = await activePolicy(sys, policyBody('data_theft_departing_users', g, { dailyAlertCap: 2 }));
    const [a, b, c] = [person(g), person(g), person(g)];
    const [sa] = await arriveUnscored([a], g, policy.id, [ev.resignation(a.externalId), ev.usb(a.externalId, 15)]);
    const first = await scoreAt(DAY_D, [sa!], policy.id);
    expect(first.alertsCreated).toHaveLength(1);
    const alertA = first.alertsCreated[0]!;
    expect(await countersOf(policy.id)).toEqual([{ day: '2031-06-30', count: 1 }]);

    // A later, higher score for the same subject: a raise, not a new alert; the counter is unchanged.
    await arriveUnscored([a], g, policy.id, [ev.usb(a.externalId, 7, at(2 * DAY))]);
    expect(await scoreAt(DAY_D, [sa!], policy.id)).toMatchObject({
      alertsCreated: [],
      alertsRaised: [alertA],
      suppressedByCap: 0,
    });
    expect(await alertsOf(sa!, policy.id)).toEqual([expect.objectContaining({ id: alertA, score: 66, severity: 'medium' })]);
    expect(await countersOf(policy.id)).toEqual([{ day: '2031-06-30', count: 1 }]);

    // So the cap still has room for a second subject's alert that day.
    const [sb] = await arriveUnscored([b], g, policy.id, [ev.resignation(b.externalId), ev.usb(b.externalId, 15)]);
    const second = await scoreAt(DAY_D, [sb!], policy.id);
    expect(second).toMatchObject({ suppressedByCap: 0 });
    expect(second.alertsCreated).toHaveLength(1);
    expect(await countersOf(policy.id)).toEqual([{ day: '2031-06-30', count: 2 }]);

    // The cap is now reached: a new subject is held back, yet the open alert still rises.
    await arriveUnscored([a], g, policy.id, [ev.usb(a.externalId, 5, at(3 * DAY))]);
    const [sc] = await arriveUnscored([c], g, policy.id, [ev.resignation(c.externalId), ev.usb(c.externalId, 15)]);
    expect(await scoreAt(DAY_D, [sa!, sc!], policy.id)).toMatchObject({
      alertsCreated: [],
      alertsRaised: [alertA],
      suppressedByCap: 1,
    });
    expect(await alertsOf(sa!, policy.id)).toEqual([expect.objectContaining({ id: alertA, score: 81, severity: 'high' })]);
    expect(await scoreOf(sa!, policy.id)).toMatchObject({ score: 81, alertId: alertA, suppressedByCap: false });
    expect(await scoreOf(sc!, policy.id)).toMatchObject({ score: 45, alertId: null, suppressedByCap: true });
    expect(await alertsOf(sc!, policy.id)).toEqual([]);
    expect(await countersOf(policy.id)).toEqual([{ day: '2031-06-30', count: 2 }]);
  });

  it('resets the next UTC day: a subject held back on day D gets its alert when scored on D+1', async () => {
    const g = uniq('g');
    const policy = await activePolicy(sys, policyBody('data_theft_departing_users', g, { dailyAlertCap: 1 }));
    const pair = [person(g), person(g)];
    const ids = await arriveUnscored(
      pair,
      g,
      policy.id,
      pair.flatMap((p) => [ev.resignation(p.externalId), ev.usb(p.externalId, 15)]),
    );
    const onD = await scoreAt(DAY_D, ids, policy.id);
    expect(onD).toMatchObject({ suppressedByCap: 1 });
    expect(onD.alertsCreated).toHaveLength(1);
    const [alerted] = await sys.db.select().from(alerts).where(eq(alerts.id, onD.alertsCreated[0]!));
    const held = ids.find((id) => id !== alerted!.subjectId)!;
    expect(await alertsOf(held, policy.id)).toEqual([]);

    // Scored again the same day (two seconds before midnight UTC): still held back.
    expect(await scoreAt(DAY_D, [held], policy.id)).toMatchObject({ alertsCreated: [], suppressedByCap: 1 });
    expect((await scoreOf(held, policy.id))!.suppressedByCap).toBe(true);

    // Four seconds later it is the next UTC day: the held-back subject gets its alert; the one
    // already alerted keeps its single open alert.
    const onD1 = await scoreAt(DAY_D1, ids, policy.id);
    expect(onD1).toMatchObject({ suppressedByCap: 0, alertsRaised: [] });
    expect(onD1.alertsCreated).toHaveLength(1);
    const heldAlerts = await alertsOf(held, policy.id);
    expect(heldAlerts).toEqual([
      expect.objectContaining({ id: onD1.alertsCreated[0], score: 45, severity: 'low', status: 'needs_review' }),
    ]);
    expect(await scoreOf(held, policy.id)).toMatchObject({ suppressedByCap: false, alertId: heldAlerts[0]!.id });
    expect(await alertsOf(alerted!.subjectId, policy.id)).toHaveLength(1);
    expect(await countersOf(policy.id)).toEqual([
      { day: '2031-06-30', count: 1 },
      { day: '2031-07-01', count: 1 },
    ]);
  });

  it('a batch’s own scoring applies the cap too', async () => {
    // One batch is one scoring with one `now`: robust at midnight, whatever the real date.
    const g = uniq('g');
    const policy = await activePolicy(sys, policyBody('data_theft_departing_users', g, { dailyAlertCap: 1 }));
    const pair = [person(g), person(g)];
    await importPeople(sys, pair);
    const r = await ingest(
      sys,
      pair.flatMap((p) => [ev.resignation(p.externalId), ev.usb(p.externalId, 15)]),
    );
    expect(r.scoring).toMatchObject({ suppressedByCap: 1 });
    expect(r.scoring!.alertsCreated).toHaveLength(1);
    const ids = await Promise.all(pair.map((p) => subjectIdOf(sys, p.externalId)));
    const raised = await sys.db
      .select()
      .from(alerts)
      .where(and(eq(alerts.policyId, policy.id), inArray(alerts.subjectId, ids)));
    expect(raised.map((a) => a.id)).toEqual(r.scoring!.alertsCreated);
    const counters = await countersOf(policy.id);
    expect(counters.map((c) => c.count)).toEqual([1]);
  });
});

describe('the per-process cache of subjects’ signals', () => {
  it('gives the scores a full read gives: after sequential and concurrent batches, a cold re-scoring changes nothing', async () => {
    const g = uniq('g');
    const policy = await activePolicy(
      sys,
      policyBody('data_theft_departing_users', g, {
        boosters: { priorityGroup: 0, aboveUsualActivity: 50, previousViolation: 0 },
        thresholds: { minRiskScore: 20, severity: { medium: 30, high: 45 } },
      }),
    );
    const people = [person(g), person(g), person(g)];
    await importPeople(sys, people);
    const ids = await Promise.all(people.map((p) => subjectIdOf(sys, p.externalId)));
    const [a, b, c] = people.map((p) => p.externalId) as [string, string, string];
    // Baseline activity before the triggers (the above-usual booster depends on it), a first
    // trigger, then activity, a later trigger, more baseline: sequential batches warm the cache,
    // concurrent ones complete it from snapshots it did not see.
    for (const p of [a, b, c]) await ingest(sys, [ev.usb(p, 1, at(-5 * DAY)), ev.usb(p, 1, at(-4 * DAY))]);
    await ingest(sys, [ev.resignation(a), ev.resignation(b, at(2 * DAY))]);
    await ingest(sys, [ev.usb(a, 3, at(DAY)), ev.usb(b, 3, at(3 * DAY)), ev.usb(c, 1, at(DAY))]);
    await Promise.all([
      ingest(sys, [ev.usb(a, 4, at(DAY + 5)), ev.termination(c, at(DAY / 2))]),
      ingest(sys, [ev.usb(b, 1, at(-3 * DAY)), ev.usb(c, 6, at(DAY + 7))]),
      ingest(sys, [ev.resignation(a, at(10 * DAY)), ev.usb(a, 2, at(11 * DAY)), ev.usb(a, 1, at(-2 * DAY))]),
      ingest(sys, [ev.usb(b, 5, at(2 * DAY + 9)), ev.usb(c, 2, at(-DAY))]),
    ]);
    await ingest(sys, [ev.usb(a, 1, at(12 * DAY)), ev.usb(b, 1, at(4 * DAY)), ev.usb(c, 1, at(2 * DAY))]);
    const before = await sys.db.select().from(subjectPolicyScores).where(eq(subjectPolicyScores.policyId, policy.id));
    expect(before).toHaveLength(3);
    expect(before.some((r) => r.riskFactors.some((f) => f.name === 'above_usual_activity'))).toBe(true);

    subjectCache(sys.db).clear();
    const cold = await scoreSubjects(
      { db: sys.db, logger: createLogger({ level: 'warn' }) },
      { subjectIds: ids, policyIds: [policy.id] },
    );
    expect(cold).toMatchObject({ pairsScored: 3, scoresChanged: 0, alertsCreated: [], alertsRaised: [] });
    const after = await sys.db.select().from(subjectPolicyScores).where(eq(subjectPolicyScores.policyId, policy.id));
    const byPair = (rows: typeof before) => Object.fromEntries(rows.map((r) => [r.subjectId, r]));
    expect(byPair(after)).toEqual(byPair(before));
  });
});

describe('scope', () => {
  it('covers included groups and subjects, minus the excluded ones, in the policy’s regions only', async () => {
    const g = uniq('g');
    const pilot = uniq('pilot');
    const [inGroup, excluded, byId, usOne, outsider] = [person(pilot), person(pilot), person(g), person(pilot, 'us'), person(g)];
    await importPeople(sys, [inGroup, excluded, byId, usOne, outsider]);
    const [sIn, sEx, sId, sUs, sOut] = (await Promise.all(
      [inGroup, excluded, byId, usOne, outsider].map((p) => subjectIdOf(sys, p.externalId)),
    )) as [string, string, string, string, string];
    const policy = await activePolicy(
      sys,
      policyBody('data_theft_departing_users', pilot, {
        scope: { regions: ['eu'], include: { groups: [pilot], subjects: [sId] }, exclude: { subjects: [sEx] } },
      }),
    );
    const everyone = [inGroup, excluded, byId, usOne, outsider];
    await ingest(
      sys,
      everyone.flatMap((p) => [ev.resignation(p.externalId), ev.usb(p.externalId, 15)]),
    );
    expect((await alertsOf(sIn, policy.id)).length).toBe(1);
    expect((await alertsOf(sId, policy.id)).length).toBe(1);
    for (const s of [sEx, sUs, sOut]) {
      expect(await scoreOf(s, policy.id)).toBeNull();
      expect(await alertsOf(s, policy.id)).toEqual([]);
    }

    // The users view shows the same: who is in scope, who was triggered, when, and the score.
    const view = await sys.http
      .get(`/v1/subjects?policyId=${policy.id}&limit=500`)
      .set('Authorization', await sys.auth(principals.admin));
    expect(view.status).toBe(200);
    const entry = (sid: string) => view.body.items.find((i: { subject: { id: string } }) => i.subject.id === sid)?.policies[0];
    expect(entry(sIn)).toMatchObject({
      policyId: policy.id,
      inScope: true,
      triggered: true,
      score: 45,
      severity: 'low',
      triggeredAt: at(0),
    });
    expect(entry(sId)).toMatchObject({ inScope: true, triggered: true });
    expect(entry(sEx)).toMatchObject({ inScope: false, triggered: false, score: null });
    expect(entry(sUs)).toMatchObject({ inScope: false, triggered: false });
    expect(entry(sOut)).toMatchObject({ inScope: false, triggered: false });

    const inScope = await sys.http
      .get(`/v1/subjects?policyId=${policy.id}&inScope=true&limit=500`)
      .set('Authorization', await sys.auth(principals.admin));
    expect(inScope.body.items.map((i: { subject: { id: string } }) => i.subject.id).sort()).toEqual([sIn, sId].sort());
    const triggered = await sys.http
      .get(`/v1/subjects?policyId=${policy.id}&triggered=true`)
      .set('Authorization', await sys.auth(principals.admin));
    expect(triggered.body.items.map((i: { subject: { id: string } }) => i.subject.id).sort()).toEqual([sIn, sId].sort());
  });

  it('a group in scope.exclude takes its members out, even when an included group covers them', async () => {
    const [g, excludedGroup, otherGroup] = [uniq('g'), uniq('contractors'), uniq('staff')];
    const [excluded, kept] = [person(g, 'eu', { groups: [g, excludedGroup] }), person(g, 'eu', { groups: [g, otherGroup] })];
    await importPeople(sys, [excluded, kept]);
    const [sEx, sKept] = [await subjectIdOf(sys, excluded.externalId), await subjectIdOf(sys, kept.externalId)];
    const policy = await activePolicy(
      sys,
      policyBody('data_theft_departing_users', g, {
        scope: { include: { groups: [g] }, exclude: { groups: [excludedGroup] } },
      }),
    );
    const r = await ingest(
      sys,
      [excluded, kept].flatMap((p) => [ev.resignation(p.externalId), ev.usb(p.externalId, 15)]),
    );
    expect(await scoreOf(sEx, policy.id)).toBeNull();
    expect(await alertsOf(sEx, policy.id)).toEqual([]);
    expect((await scoreOf(sKept, policy.id))!.score).toBe(45);
    const kAlerts = await alertsOf(sKept, policy.id);
    expect(kAlerts).toEqual([expect.objectContaining({ score: 45, severity: 'low', status: 'needs_review' })]);
    expect(r.scoring!.alertsCreated).toEqual([kAlerts[0]!.id]);

    const view = await sys.http
      .get(`/v1/subjects?policyId=${policy.id}&inScope=true&limit=500`)
      .set('Authorization', await sys.auth(principals.admin));
    expect(view.status).toBe(200);
    expect(view.body.items.map((i: { subject: { id: string } }) => i.subject.id)).toEqual([sKept]);
  });
});

describe('users view', () => {
  it('lists subjects by pseudonym only, pages with a cursor, and shows only the caller’s regions', async () => {
    const g = uniq('g');
    const people = [person(g, 'eu'), person(g, 'eu'), person(g, 'us')];
    await importPeople(sys, people);
    const admin = await sys.auth(principals.adminEu);
    const seen: Array<{ subject: { id: string; pseudonym: string }; region: string }> = [];
    let cursor: string | null = null;
    do {
      const res: { status: number; body: { items: typeof seen; nextCursor: string | null } } = await sys.http
        .get(`/v1/subjects?limit=2${cursor ? `&cursor=${cursor}` : ''}`)
        .set('Authorization', admin);
      expect(res.status).toBe(200);
      seen.push(...res.body.items);
      cursor = res.body.nextCursor;
    } while (cursor);
    expect(seen.every((s) => s.region === 'eu')).toBe(true);
    expect(new Set(seen.map((s) => s.subject.id)).size).toBe(seen.length);
    const ids = await Promise.all(people.map((p) => subjectIdOf(sys, p.externalId)));
    expect(seen.map((s) => s.subject.id)).toEqual(expect.arrayContaining(ids.slice(0, 2)));
    const body = JSON.stringify(seen);
    for (const p of people) {
      expect(body).not.toContain(p.externalId);
      expect(body).not.toContain(p.displayName);
      expect(body).not.toContain(p.email);
    }
    for (const s of seen) expect(Object.keys(s.subject).sort()).toEqual(['id', 'pseudonym']);
  });

  /** The users view of one policy (plus `filters`): the subjects listed, and a subject’s entry for that policy. */
  async function viewOf(policyId: string, filters = '') {
    const res = await sys.http
      .get(`/v1/subjects?policyId=${policyId}&limit=500${filters}`)
      .set('Authorization', await sys.auth(principals.admin));
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const items = res.body.items as Array<{ subject: { id: string }; policies: Array<Record<string, unknown>> }>;
    return { ids: items.map((i) => i.subject.id), entry: (sid: string) => items.find((i) => i.subject.id === sid)?.policies[0] };
  }

  it('a subject taken out of a policy’s scope by a scope change is no longer shown in scope or triggered', async () => {
    // Scopes have no department field: a department is a roster group here.
    const [sales, pilot] = [uniq('dept'), uniq('pilot')];
    const policy = await activePolicy(sys, policyBody('data_theft_departing_users', sales));
    const [stays, leaves] = [person(sales, 'eu', { groups: [sales, pilot] }), person(sales)];
    await importPeople(sys, [stays, leaves]);
    const [sStays, sLeaves] = [await subjectIdOf(sys, stays.externalId), await subjectIdOf(sys, leaves.externalId)];
    await ingest(
      sys,
      [stays, leaves].flatMap((p) => [ev.resignation(p.externalId), ev.usb(p.externalId, 15)]),
    );
    const before = await viewOf(policy.id, '&inScope=true&triggered=true');
    expect(before.ids.sort()).toEqual([sStays, sLeaves].sort());
    const [alert] = await alertsOf(sLeaves, policy.id);

    const patched = await sys.http
      .patch(`/v1/policies/${policy.id}`)
      .set('Authorization', await sys.auth(principals.admin))
      .send({ scope: { include: { groups: [pilot] } } });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    await sys.client.workflow.getHandle(patched.body.backfillWorkflowId).result();
    // Scoring leaves the pair's old score row in place; the view must not present it as current.
    expect((await scoreOf(sLeaves, policy.id))!.score).toBe(45);

    const view = await viewOf(policy.id);
    expect(view.entry(sStays)).toMatchObject({
      inScope: true,
      triggered: true,
      score: 45,
      triggeredAt: at(0),
      previousTrigger: null,
    });
    expect(view.entry(sLeaves)).toMatchObject({
      inScope: false,
      triggered: false,
      triggeredAt: null,
      score: null,
      severity: null,
      scoredAt: null,
      suppressedByCap: false,
      // The trigger from before the change stays visible, marked as out of scope, with its open alert.
      previousTrigger: { triggeredAt: at(0), score: 45, severity: 'low', scoredAt: expect.any(String) },
      alertId: alert!.id,
    });
    expect((await viewOf(policy.id, '&inScope=true')).ids).toEqual([sStays]);
    expect((await viewOf(policy.id, '&triggered=true')).ids).toEqual([sStays]);
    expect((await viewOf(policy.id, '&inScope=false&triggered=true')).ids).toEqual([]);
    expect((await viewOf(policy.id, '&triggered=false')).ids).toContain(sLeaves);
  });

  it('a subject re-imported with groups outside a policy’s scope is no longer shown in scope or triggered', async () => {
    const g = uniq('dept');
    const policy = await activePolicy(sys, policyBody('data_theft_departing_users', g));
    const p = person(g);
    await importPeople(sys, [p]);
    const sid = await subjectIdOf(sys, p.externalId);
    await ingest(sys, [ev.resignation(p.externalId), ev.usb(p.externalId, 15)]);
    expect((await viewOf(policy.id, '&triggered=true')).ids).toEqual([sid]);

    expect(await importPeople(sys, [{ ...p, groups: [uniq('other')] }])).toMatchObject({ updated: 1 });
    const view = await viewOf(policy.id);
    expect(view.entry(sid)).toMatchObject({
      inScope: false,
      triggered: false,
      score: null,
      triggeredAt: null,
      previousTrigger: { triggeredAt: at(0), score: 45, severity: 'low' },
    });
    expect((await viewOf(policy.id, '&triggered=true')).ids).toEqual([]);
    expect((await viewOf(policy.id, '&inScope=true')).ids).toEqual([]);
    // The view without a policy filter applies the same rule to every policy.
    const all = await sys.http.get('/v1/subjects?limit=500').set('Authorization', await sys.auth(principals.admin));
    const mine = all.body.items.find((i: { subject: { id: string } }) => i.subject.id === sid);
    expect(mine.policies.find((x: { policyId: string }) => x.policyId === policy.id)).toMatchObject({
      inScope: false,
      triggered: false,
      score: null,
    });
  });

  it('filters that need a policy say so', async () => {
    const res = await sys.http.get('/v1/subjects?triggered=true').set('Authorization', await sys.auth(principals.admin));
    expect(res.status).toBe(400);
    expect(res.body.error.message).toContain('triggered needs policyId');
  });
});

it('scoring results reach Postgres before the batch workflow completes (what the API lists)', async () => {
  const { policy, p, sid } = await departing();
  const res = await sys.http
    .post('/v1/signals')
    .set('Authorization', await sys.auth(principals.connector))
    .send({ events: [ev.resignation(p.externalId), ev.usb(p.externalId, 20)] });
  const result = await scoringOf(sys, res.body.scoringWorkflowId);
  const list = await sys.http.get(`/v1/alerts?policyId=${policy.id}`).set('Authorization', await sys.auth(principals.analyst));
  expect(list.body.items.map((a: { id: string }) => a.id)).toEqual(result!.alertsCreated);
  expect(list.body.items[0].subject.id).toBe(sid);
});
