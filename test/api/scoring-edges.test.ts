/**
 * Scoring edges that only show end to end (the pure math is covered by
 * test/unit/scoring-edges.test.ts): what a policy PATCH leaves of the boosters, and timestamps
 * finer than the millisecond as connectors send them.
 */
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { at, DAY, departing as departingPerson, ev, ingest, scoreOf as scoreOfPair, type policyBody } from '../helpers/detection';
import { principals, startTestSystem, type TestSystem } from '../helpers/system';

let sys: TestSystem;
beforeAll(async () => {
  sys = await startTestSystem();
});
afterAll(async () => sys?.close());

const scoreOf = (subjectId: string, policyId: string) => scoreOfPair(sys, subjectId, policyId);

const departing = (over: Parameters<typeof policyBody>[2] = {}) => departingPerson(sys, over);

describe('a policy PATCH and the boosters', () => {
  // The docs call PATCH a change and say 0 turns a booster off; they do not say whether a partial
  // `boosters` object is merged. An administrator who turns one booster on expects the others to
  // stay as they were, not to come back on at their defaults (25 % and 50 %) and change scores.
  it('turning one booster on leaves the boosters that were off, off — in the policy and in the re-scored pair', async () => {
    const { policy, p, sid } = await departing({ boosters: { priorityGroup: 0, aboveUsualActivity: 0, previousViolation: 0 } });
    // Usual level 1 a day before the trigger, 20 copies the day after it: above usual if that booster is on.
    await ingest(sys, [ev.usb(p.externalId, 1, at(-3 * DAY)), ev.resignation(p.externalId), ev.usb(p.externalId, 20, at(DAY))]);
    expect((await scoreOf(sid, policy.id))!.score).toBe(60);

    const patched = await sys.http
      .patch(`/v1/policies/${policy.id}`)
      .set('Authorization', await sys.auth(principals.admin))
      .send({ boosters: { priorityGroup: 50 } });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    if (patched.body.backfillWorkflowId) await sys.client.workflow.getHandle(patched.body.backfillWorkflowId).result();

    const score = (await scoreOf(sid, policy.id))!;
    expect(score.riskFactors.filter((f) => f.kind === 'booster')).toEqual([]);
    expect(score.score).toBe(60);
    expect(patched.body.boosters).toEqual({ priorityGroup: 50, aboveUsualActivity: 0, previousViolation: 0 });
  });
});

describe('timestamps finer than the millisecond', () => {
  // Connectors (Defender, Graph) send seven fractional digits; Postgres keeps them (microseconds),
  // and scoring compares times to the millisecond (docs/detection.md): activity in an earlier
  // millisecond than the trigger's is outside its window, even a fraction of one apart.
  it('activity in the millisecond before the trigger is not in its window, though stored to the microsecond', async () => {
    const { policy, p, sid } = await departing();
    const trigger = at(0).replace('.000Z', '.0012Z');
    const justBefore = at(0).replace('.000Z', '.0009Z');
    const inside = at(DAY);
    await ingest(sys, [
      ev.resignation(p.externalId, trigger),
      ev.usb(p.externalId, 10, justBefore),
      ev.usb(p.externalId, 1, inside),
    ]);
    // Stored as sent: the copies 300 µs before the resignation.
    const stored = await sys.db.execute<{ type: string; us: number }>(
      sql`select type, extract(microseconds from occurred_at)::int % 1000000 as us from signals
          where subject_id = ${sid}::uuid and occurred_at < ${inside}::timestamptz order by occurred_at`,
    );
    expect(stored.rows).toEqual([
      { type: 'file_copied_to_usb', us: 900 },
      { type: 'resignation', us: 1200 },
    ]);
    const score = (await scoreOf(sid, policy.id))!;
    expect(score.riskFactors.find((f) => f.name === 'file_copied_to_usb')).toMatchObject({ points: 3, detail: { count: 1 } });
    expect(score.score).toBe(3);
  });
});
