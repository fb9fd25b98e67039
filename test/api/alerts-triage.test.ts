/**
 * The analyst's alert queue: filters, keyset pages, detail with risk factors, dismiss (single and
 * bulk), assign; region scope; audit. Alerts are raised by real scoring.
 */
import { randomUUID } from 'node:crypto';
import { and, desc, eq, inArray, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alerts, auditLog } from '../../db/schema';
import {
  activePolicy,
  at,
  DAY,
  ev,
  importPeople,
  ingest,
  person,
  policyBody,
  subjectIdOf,
  uniq,
  type Person,
} from '../helpers/detection';
import { principals, startTestSystem, type TestSystem } from '../helpers/system';

let sys: TestSystem;
let policyId: string;
let group: string;
let people: Person[];
const alertIdOf = new Map<string, string>();

/** USB copies per person → score 3 × n (thresholds 40 / 60 / 80). */
const COPIES = [14, 25, 30, 14, 22];
const REGIONS = ['eu', 'eu', 'eu', 'us', 'us'];

beforeAll(async () => {
  sys = await startTestSystem();
  group = uniq('triage');
  policyId = (await activePolicy(sys, policyBody('data_theft_departing_users', group))).id;
  people = REGIONS.map((r) => person(group, r));
  await importPeople(sys, people);
  const r = await ingest(
    sys,
    people.flatMap((p, i) => [ev.resignation(p.externalId), ev.usb(p.externalId, COPIES[i]!)]),
  );
  expect(r.scoring!.alertsCreated).toHaveLength(5);
  for (const p of people) {
    const sid = await subjectIdOf(sys, p.externalId);
    const [a] = await sys.db
      .select()
      .from(alerts)
      .where(and(eq(alerts.subjectId, sid), eq(alerts.policyId, policyId)));
    alertIdOf.set(p.externalId, a!.id);
  }
});
afterAll(async () => sys?.close());

const analyst = () => sys.auth(principals.analyst);
const euAnalyst = () => sys.auth({ sub: 'analyst-eu', roles: ['analyst'], regions: ['eu'] });
type Item = {
  id: string;
  severity: string;
  region: string;
  score: number;
  subject: { id: string; pseudonym: string };
  status: string;
  assignee: string | null;
};
const list = async (q: string, authz?: string, policy = policyId) => {
  const res = await sys.http.get(`/v1/alerts?policyId=${policy}&${q}`).set('Authorization', authz ?? (await analyst()));
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body as { items: Item[]; nextCursor: string | null };
};

describe('the alert queue', () => {
  it('filters by severity, region, status and time, and shows subjects by pseudonym only', async () => {
    expect((await list('')).items).toHaveLength(5);
    expect((await list('severity=high')).items.map((a) => a.score)).toEqual([90]);
    expect((await list('severity=medium')).items.map((a) => a.score).sort()).toEqual([66, 75]);
    expect((await list('region=us')).items.map((a) => a.region)).toEqual(['us', 'us']);
    expect((await list('status=dismissed')).items).toEqual([]);
    expect((await list(`createdFrom=${new Date(Date.now() + 60_000).toISOString()}`)).items).toEqual([]);
    expect((await list(`createdTo=${new Date(Date.now() + 60_000).toISOString()}`)).items).toHaveLength(5);
    const body = JSON.stringify((await list('')).items);
    for (const p of people) {
      expect(body).not.toContain(p.externalId);
      expect(body).not.toContain(p.displayName);
      expect(body).not.toContain(p.email);
    }
    for (const a of (await list('')).items) {
      expect(Object.keys(a.subject).sort()).toEqual(['id', 'pseudonym']);
      expect(a.subject.pseudonym).toMatch(/^Anon-/);
    }
  });

  it('splits alerts by creation time: createdFrom inclusive, createdTo exclusive; newer alerts first', async () => {
    const g = uniq('created');
    const pid = (await activePolicy(sys, policyBody('data_theft_departing_users', g))).id;
    const [e1, u1, e2, u2] = [person(g, 'eu'), person(g, 'us'), person(g, 'eu'), person(g, 'us')];
    await importPeople(sys, [e1!, u1!, e2!, u2!]);
    // Two batches scored one after the other: their alerts are created at two different times.
    const batch = async (ps: Person[]) =>
      (
        await ingest(
          sys,
          ps.flatMap((p) => [ev.resignation(p.externalId), ev.usb(p.externalId, 15)]),
        )
      ).scoring!.alertsCreated;
    const first = await batch([e1!, u1!]);
    const second = await batch([e2!, u2!]);
    expect(first).toHaveLength(2);
    expect(second).toHaveLength(2);
    const createdAt = async () =>
      new Map((await sys.db.select().from(alerts).where(eq(alerts.policyId, pid))).map((a) => [a.id, a.createdAt.getTime()]));
    const ids = async (q: string) => (await list(q, undefined, pid)).items.map((a) => a.id);
    const iso = (ms: number) => encodeURIComponent(new Date(ms).toISOString());
    const sorted = (xs: string[]) => [...xs].sort();

    // A bound strictly between the two batches' real creation times (read back as ms, floored).
    let t = await createdAt();
    const firstLast = Math.max(...first.map((id) => t.get(id)!));
    const secondFirst = Math.min(...second.map((id) => t.get(id)!));
    expect(secondFirst - firstLast, 'the batches are at least 2 ms apart').toBeGreaterThanOrEqual(2);
    const mid = Math.floor((firstLast + secondFirst) / 2);
    expect(sorted(await ids(`createdFrom=${iso(mid)}`))).toEqual(sorted(second));
    expect(sorted(await ids(`createdTo=${iso(mid)}`))).toEqual(sorted(first));
    // Newest first across the two creation times.
    const all = await ids('');
    expect(sorted(all.slice(0, 2))).toEqual(sorted(second));
    expect(sorted(all.slice(2))).toEqual(sorted(first));

    // Bounds equal to a creation time. The API takes bounds to the millisecond while Postgres keeps
    // microseconds, so align the stored times to the millisecond to make equality reachable.
    await sys.db.execute(sql`update alerts set created_at = date_trunc('milliseconds', created_at) where policy_id = ${pid}`);
    t = await createdAt();
    const t1 = t.get(first[0]!)!;
    const t2 = t.get(second[0]!)!;
    expect(first.map((id) => t.get(id))).toEqual([t1, t1]);
    expect(second.map((id) => t.get(id))).toEqual([t2, t2]);
    expect(sorted(await ids(`createdFrom=${iso(t2)}`))).toEqual(sorted(second));
    expect(sorted(await ids(`createdTo=${iso(t2)}`))).toEqual(sorted(first));
    expect(sorted(await ids(`createdFrom=${iso(t1)}&createdTo=${iso(t2)}`))).toEqual(sorted(first));
    expect(sorted(await ids(`createdFrom=${iso(t1)}&createdTo=${iso(t2 + 1)}`))).toEqual(sorted([...first, ...second]));
    expect(await ids(`createdFrom=${iso(t2 + 1)}`)).toEqual([]);
    expect(await ids(`createdTo=${iso(t1)}`)).toEqual([]);
  });

  it('pages with an opaque cursor, newest first, without repeats', async () => {
    const all: Item[] = [];
    const sizes: number[] = [];
    let cursor: string | null = null;
    do {
      const page: { items: Item[]; nextCursor: string | null } = await list(`limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      all.push(...page.items);
      sizes.push(page.items.length);
      cursor = page.nextCursor;
    } while (cursor);
    const newestFirst = await sys.db
      .select({ id: alerts.id })
      .from(alerts)
      .where(eq(alerts.policyId, policyId))
      .orderBy(desc(alerts.createdAt), desc(alerts.id));
    expect(newestFirst.map((r) => r.id).sort()).toEqual([...alertIdOf.values()].sort());
    const ids = all.map((a) => a.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual(newestFirst.map((r) => r.id));
    expect(sizes).toEqual([2, 2, 1]);
    const bad = await sys.http.get('/v1/alerts?cursor=not-a-cursor').set('Authorization', await analyst());
    expect(bad.status).toBe(400);
    const unknown = await sys.http.get('/v1/alerts?colour=red').set('Authorization', await analyst());
    expect(unknown.status).toBe(400);
  });

  it('a principal sees only alerts of its regions: filtered out of lists, 404 for an item', async () => {
    const items = (await list('', await euAnalyst())).items;
    expect(items.map((a) => a.region)).toEqual(['eu', 'eu', 'eu']);
    const usAlert = alertIdOf.get(people[3]!.externalId)!;
    const res = await sys.http.get(`/v1/alerts/${usAlert}`).set('Authorization', await euAnalyst());
    expect(res.status).toBe(404);
    const dismiss = await sys.http
      .post(`/v1/alerts/${usAlert}/dismiss`)
      .set('Authorization', await euAnalyst())
      .send({ reason: 'false_positive', comment: 'x' });
    expect(dismiss.status).toBe(404);
    const assign = await sys.http
      .post(`/v1/alerts/${usAlert}/assign`)
      .set('Authorization', await euAnalyst())
      .send({ assignee: 'analyst-eu' });
    expect(assign.status).toBe(404);
  });

  it('an alert id that does not exist is a 404 in the error shape; a malformed id is a 400 naming it', async () => {
    const res = await sys.http.get(`/v1/alerts/${randomUUID()}`).set('Authorization', await analyst());
    expect(res.status).toBe(404);
    expect(res.body).toEqual({
      error: { code: 'not_found', message: 'Alert not found', requestId: res.headers['x-request-id'] },
    });
    const malformed = await sys.http.get('/v1/alerts/not-a-uuid').set('Authorization', await analyst());
    expect(malformed.status).toBe(400);
    expect(malformed.body.error).toMatchObject({ code: 'validation_error', details: [{ field: 'path.id' }] });
  });

  it('an alert’s detail carries the risk factors that make up its score, each traced to signals', async () => {
    const id = alertIdOf.get(people[2]!.externalId)!;
    const res = await sys.http.get(`/v1/alerts/${id}`).set('Authorization', await sys.auth(principals.investigator));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      id,
      score: 90,
      severity: 'high',
      status: 'needs_review',
      policy: { id: policyId, template: 'data_theft_departing_users' },
      triggeredAt: at(0),
    });
    const factors = res.body.riskFactors as Array<{ kind: string; name: string; points: number; signalIds: string[] }>;
    expect(factors.map((f) => [f.kind, f.name, f.points])).toEqual([
      ['trigger', 'resignation', 0],
      ['indicator', 'file_copied_to_usb', 90],
    ]);
    const ids = factors.flatMap((f) => f.signalIds);
    const rows = await sys.db.execute<{ type: string }>(
      sql`select type from signals where id = any(${sql.param(ids.map(Number))}::bigint[]) order by type`,
    );
    expect(rows.rows.map((r) => r.type)).toEqual(['file_copied_to_usb', 'resignation']);
  });
});

describe('triage', () => {
  it('dismisses with a reason from the fixed list and a comment; audited; a second dismissal is a conflict', async () => {
    const id = alertIdOf.get(people[0]!.externalId)!;
    const bad = await sys.http
      .post(`/v1/alerts/${id}/dismiss`)
      .set('Authorization', await analyst())
      .send({ reason: 'bored', comment: 'x' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain('body.reason');
    expect(bad.body.error.details).toEqual([{ field: 'body.reason', message: expect.any(String) }]);
    const [untouched] = await sys.db.select().from(alerts).where(eq(alerts.id, id));
    expect(untouched).toMatchObject({ status: 'needs_review', dismissReason: null });
    const noComment = await sys.http
      .post(`/v1/alerts/${id}/dismiss`)
      .set('Authorization', await analyst())
      .send({ reason: 'false_positive' });
    expect(noComment.status).toBe(400);

    const res = await sys.http
      .post(`/v1/alerts/${id}/dismiss`)
      .set('Authorization', await analyst())
      .send({ reason: 'authorized_business_activity', comment: 'Migration to the new file server' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      id,
      status: 'dismissed',
      dismissal: {
        reason: 'authorized_business_activity',
        comment: 'Migration to the new file server',
        by: principals.analyst.sub,
      },
    });
    const [entry] = await sys.db.select().from(auditLog).where(eq(auditLog.requestId, res.headers['x-request-id']!));
    expect(entry).toMatchObject({
      action: 'alert.dismiss',
      targetType: 'alert',
      targetId: id,
      region: 'eu',
      details: { reason: 'authorized_business_activity' },
    });

    const again = await sys.http
      .post(`/v1/alerts/${id}/dismiss`)
      .set('Authorization', await analyst())
      .send({ reason: 'false_positive', comment: 'x' });
    expect(again.status).toBe(409);
    expect((await list('status=dismissed')).items.map((a) => a.id)).toEqual([id]);
  });

  it('assigns and unassigns an open alert, audited; filters by assignee', async () => {
    const id = alertIdOf.get(people[1]!.externalId)!;
    const res = await sys.http
      .post(`/v1/alerts/${id}/assign`)
      .set('Authorization', await analyst())
      .send({ assignee: 'investigator-1' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id, assignee: 'investigator-1' });
    expect((await list('assignee=investigator-1')).items.map((a) => a.id)).toEqual([id]);
    expect((await list('unassigned=true')).items.map((a) => a.id)).not.toContain(id);
    const [entry] = await sys.db.select().from(auditLog).where(eq(auditLog.requestId, res.headers['x-request-id']!));
    expect(entry).toMatchObject({ action: 'alert.assign', targetId: id, details: { assignee: 'investigator-1' } });
    const un = await sys.http
      .post(`/v1/alerts/${id}/assign`)
      .set('Authorization', await analyst())
      .send({ assignee: null });
    expect(un.body.assignee).toBeNull();
    const dismissed = alertIdOf.get(people[0]!.externalId)!;
    const closed = await sys.http
      .post(`/v1/alerts/${dismissed}/assign`)
      .set('Authorization', await analyst())
      .send({ assignee: 'x' });
    expect(closed.status).toBe(409);
  });

  it('a confirmed alert (owned by its case) cannot be dismissed', async () => {
    const id = alertIdOf.get(people[4]!.externalId)!;
    await sys.db.update(alerts).set({ status: 'confirmed' }).where(eq(alerts.id, id));
    const res = await sys.http
      .post(`/v1/alerts/${id}/dismiss`)
      .set('Authorization', await analyst())
      .send({ reason: 'false_positive', comment: 'x' });
    expect(res.status).toBe(409);
    expect(res.body.error.details).toEqual({ status: 'confirmed' });
  });
});

describe('bulk dismiss', () => {
  it('dismisses up to 400 alerts at once; lists what it could not dismiss; one audit entry per region', async () => {
    const g = uniq('bulk');
    await activePolicy(sys, policyBody('data_theft_departing_users', g, { dailyAlertCap: 1000 }));
    const crowd = Array.from({ length: 400 }, (_, i) => person(g, i % 4 === 0 ? 'us' : 'eu'));
    await importPeople(sys, crowd);
    const r = await ingest(
      sys,
      crowd.flatMap((p) => [ev.resignation(p.externalId), ev.usb(p.externalId, 15, at(DAY))]),
    );
    expect(r.scoring!.alertsCreated).toHaveLength(400);
    const ids = r.scoring!.alertsCreated;

    const tooMany = await sys.http
      .post('/v1/alerts/dismiss')
      .set('Authorization', await analyst())
      .send({ ids: [...ids, randomUUID()], reason: 'policy_needs_tuning', comment: 'Pilot group too broad' });
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.error.message).toContain('at most 400');

    const alreadyDismissed = alertIdOf.get(people[0]!.externalId)!;
    const missing = randomUUID();
    const res = await sys.http
      .post('/v1/alerts/dismiss')
      .set('Authorization', await analyst())
      .send({
        ids: [...ids.slice(0, 398), alreadyDismissed, missing],
        reason: 'policy_needs_tuning',
        comment: 'Pilot group too broad',
      });
    expect(res.status).toBe(200);
    expect(res.body.dismissed).toHaveLength(398);
    expect(res.body.failed).toEqual([
      { id: alreadyDismissed, reason: 'not_needs_review', status: 'dismissed' },
      { id: missing, reason: 'not_found' },
    ]);
    const rows = await sys.db
      .select()
      .from(alerts)
      .where(inArray(alerts.id, ids.slice(0, 398)));
    expect(rows.every((a) => a.status === 'dismissed' && a.dismissReason === 'policy_needs_tuning')).toBe(true);
    const entries = await sys.db.select().from(auditLog).where(eq(auditLog.requestId, res.headers['x-request-id']!));
    expect(entries.map((e) => e.region).sort()).toEqual(['eu', 'us']);
    expect(entries.reduce((n, e) => n + (e.details!.count as number), 0)).toBe(398);
    expect(new Set(entries.flatMap((e) => e.details!.alertIds as string[]))).toEqual(new Set(res.body.dismissed));
  });

  it('a reason outside the fixed list is a 400 naming body.reason and dismisses none of the alerts', async () => {
    const ids = [alertIdOf.get(people[2]!.externalId)!, alertIdOf.get(people[3]!.externalId)!];
    const before = await sys.db.select().from(alerts).where(inArray(alerts.id, ids));
    expect(before.map((a) => a.status)).toEqual(['needs_review', 'needs_review']);
    const res = await sys.http
      .post('/v1/alerts/dismiss')
      .set('Authorization', await analyst())
      .send({ ids, reason: 'bored', comment: 'Nothing to see' });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('validation_error');
    expect(res.body.error.message).toContain('body.reason');
    expect(res.body.error.details).toEqual([{ field: 'body.reason', message: expect.any(String) }]);
    const after = await sys.db.select().from(alerts).where(inArray(alerts.id, ids));
    expect(after.map((a) => [a.status, a.dismissReason])).toEqual([
      ['needs_review', null],
      ['needs_review', null],
    ]);
    const entries = await sys.db.select().from(auditLog).where(eq(auditLog.requestId, res.headers['x-request-id']!));
    expect(entries.filter((e) => e.outcome === 'allowed')).toEqual([]);
  });

  it('a regional analyst’s bulk dismissal skips alerts outside its regions as not found', async () => {
    const g = uniq('bulk');
    await activePolicy(sys, policyBody('data_theft_departing_users', g));
    const [eu, us] = [person(g, 'eu'), person(g, 'us')];
    await importPeople(sys, [eu, us]);
    const r = await ingest(
      sys,
      [eu, us].flatMap((p) => [ev.resignation(p.externalId), ev.usb(p.externalId, 15)]),
    );
    const res = await sys.http
      .post('/v1/alerts/dismiss')
      .set('Authorization', await euAnalyst())
      .send({ ids: r.scoring!.alertsCreated, reason: 'duplicate', comment: 'Same as earlier alert' });
    expect(res.body.dismissed).toHaveLength(1);
    expect(res.body.failed).toEqual([{ id: expect.any(String), reason: 'not_found' }]);
    const [usRow] = await sys.db.select().from(alerts).where(eq(alerts.id, res.body.failed[0].id));
    expect(usRow).toMatchObject({ region: 'us', status: 'needs_review' });
  });
});
