/**
 * Edges of two auditor/analyst surfaces, through HTTP against the real system:
 * - the case history auditors read: paging across a continue-as-new that happens between two page
 *   reads, `include=all` against `readable`, cursor and limit bounds, who may read it;
 * - alert triage under concurrency (dismiss racing an assignment and a new score raise, forced
 *   with a row lock held by the test), the queue's assignment filters, bulk dismissal's `failed`
 *   reasons, and the users view's filters and paging at their bounds.
 */
import { randomUUID } from 'node:crypto';
import { and, eq, inArray, sql } from 'drizzle-orm';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaseHistoryPage } from '../../api/routes/history';
import { alerts, auditLog, workflowHistoryArchive } from '../../db/schema';
import { workflowIds } from '../../workflows/definitions';
import { caseDriver, caseForImportedPerson, people, waitFor, type TestPrincipal } from '../helpers/cases';
import {
  activePolicy,
  at,
  DAY,
  ev,
  importPeople,
  ingest,
  person,
  policyBody,
  scoringOf,
  subjectIdOf,
  uniq,
} from '../helpers/detection';
import { principals, startTestSystem, type TestSystem } from '../helpers/system';

let sys: TestSystem;
beforeAll(async () => {
  sys = await startTestSystem({ env: { CASE_CONTINUE_AS_NEW_AFTER_EVENTS: '40' } });
});
afterAll(async () => sys?.close());

type Page = ReturnType<typeof CaseHistoryPage.parse>;
type Event = Page['items'][number];
const key = (e: Event) => `${e.workflowId}/${e.runId}/${e.eventId}`;

async function historyPage(caseId: string, q: string, who: TestPrincipal = people.auditor) {
  const res = await sys.http.get(`/v1/cases/${caseId}/history?${q}`).set('Authorization', await sys.auth(who));
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return CaseHistoryPage.parse(res.body);
}

async function readAll(caseId: string, include: 'readable' | 'all', limit = 500) {
  const items: Event[] = [];
  let first: Page | undefined;
  let cursor: string | null = null;
  do {
    const page: Page = await historyPage(caseId, `include=${include}&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
    first ??= page;
    items.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return { first: first!, items };
}

async function addNotes(caseId: string, n: number, label: string) {
  const auth = await sys.auth(people.investigator);
  for (let i = 0; i < n; i++) {
    const res = await sys.http
      .post(`/v1/cases/${caseId}/notes`)
      .set('Authorization', auth)
      .send({ body: `${label} ${i}` });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
  }
}

describe('GET /v1/cases/{id}/history: paging a live case', () => {
  it('a cursor taken before the case continues as new goes on with no event missed or repeated; earlier runs come from the archive', async () => {
    const drive = caseDriver(sys);
    const { caseId, person: who } = await caseForImportedPerson(sys, drive, 'us', 'History Paging');
    const wfId = workflowIds.case(caseId);
    await addNotes(caseId, 3, 'early note');

    const first = await historyPage(caseId, 'limit=7');
    expect(first.items.map((e) => e.position)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(first.nextCursor).not.toBeNull();
    expect(first.workflows.filter((w) => w.workflowId === wfId)).toHaveLength(1);

    // Enough Updates for the case workflow to continue as new (threshold 40 events) between two page reads.
    await addNotes(caseId, 30, 'late note');
    const runs = await waitFor(
      () => sys.db.select().from(workflowHistoryArchive).where(eq(workflowHistoryArchive.workflowId, wfId)),
      (r) => r.length >= 1,
      20_000,
    );
    expect(runs.length, 'the continued-as-new run is archived').toBeGreaterThanOrEqual(1);

    const paged: Event[] = [...first.items];
    let cursor = first.nextCursor;
    while (cursor) {
      const page = await historyPage(caseId, `limit=7&cursor=${cursor}`);
      paged.push(...page.items);
      cursor = page.nextCursor;
    }
    // Each closed run is archived by its own activity, shortly after it closed: read once every one is.
    const fresh = await waitFor(
      () => readAll(caseId, 'readable'),
      (f) =>
        f.first.workflows.filter((w) => w.workflowId === wfId && w.status !== 'running').every((r) => r.source === 'archive'),
      20_000,
    );
    expect(paged.map(key)).toEqual(fresh.items.map(key));
    expect(new Set(paged.map(key)).size).toBe(paged.length);
    expect(paged.map((e) => e.position)).toEqual(paged.map((_, i) => i + 1));
    const notes = paged.filter((e) => e.type === 'WorkflowExecutionUpdateAccepted' && e.details.update === 'addNote');
    expect(notes).toHaveLength(33);

    // Live case, earlier run archived: the page says so, run by run.
    const caseRuns = fresh.first.workflows.filter((w) => w.workflowId === wfId);
    expect(caseRuns.length).toBeGreaterThanOrEqual(2);
    expect(caseRuns.map((r) => r.run)).toEqual(caseRuns.map((_, i) => i + 1));
    expect(caseRuns.at(-1)).toMatchObject({ status: 'running', source: 'temporal', closedAt: null });
    expect(caseRuns.slice(0, -1).every((r) => r.status === 'continued_as_new' && r.source === 'archive')).toBe(true);
    expect(fresh.first).toMatchObject({ source: 'mixed', complete: true, missing: [] });

    // The subject's identity never reaches the decoded history, bookkeeping included.
    const everything = JSON.stringify((await readAll(caseId, 'all')).items);
    for (const secret of [who.displayName, who.email, who.upn, who.externalId]) expect(everything).not.toContain(secret);
  });

  it('include=all adds only Temporal’s bookkeeping events to the readable list; cursors, limits and offsets are checked', async () => {
    const drive = caseDriver(sys);
    const { caseId } = await caseForImportedPerson(sys, drive, 'us', 'History Include');
    await addNotes(caseId, 4, 'include note');
    const readable = await readAll(caseId, 'readable', 5);
    const all = await readAll(caseId, 'all', 9);
    expect(all.items.map((e) => e.position)).toEqual(all.items.map((_, i) => i + 1));
    expect(new Set(all.items.map(key)).size).toBe(all.items.length);
    const readableKeys = new Set(readable.items.map(key));
    // Same relative order, and what `all` adds is bookkeeping only.
    expect(all.items.filter((e) => readableKeys.has(key(e))).map(key)).toEqual(readable.items.map(key));
    const extra = new Set(all.items.filter((e) => !readableKeys.has(key(e))).map((e) => e.type));
    expect(extra.size).toBeGreaterThan(0);
    for (const t of extra)
      expect(['WorkflowTaskScheduled', 'WorkflowTaskStarted', 'WorkflowTaskCompleted', 'ActivityTaskStarted']).toContain(t);

    const auth = await sys.auth(people.auditor);
    const get = (q: string) => sys.http.get(`/v1/cases/${caseId}/history?${q}`).set('Authorization', auth);
    const readableCursor = (await historyPage(caseId, 'limit=2')).nextCursor!;
    const crossed = await get(`include=all&cursor=${readableCursor}`);
    expect(crossed.status).toBe(400);
    expect(crossed.body.error.details).toEqual([{ field: 'query.cursor', message: 'made for another include' }]);
    const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    for (const bad of [enc(['readable', -1]), enc(['readable', 1.5]), enc(['everything', 2]), 'x'.repeat(201)]) {
      const res = await get(`cursor=${bad}`);
      expect(res.status, bad).toBe(400);
      expect(res.body.error.code).toBe('validation_error');
    }
    for (const q of ['limit=0', 'limit=501', 'include=raw', 'colour=red']) expect((await get(q)).status, q).toBe(400);
    // A cursor at (or past) the end: an empty last page.
    const past = await historyPage(caseId, `cursor=${enc(['readable', readable.items.length])}`);
    expect(past).toMatchObject({ items: [], nextCursor: null });
    // limit equal to the number of events: one page, no cursor.
    const exact = await historyPage(caseId, `limit=${readable.items.length}`);
    expect(exact.items.map(key)).toEqual(readable.items.map(key));
    expect(exact.nextCursor).toBeNull();
  });

  it('a regional auditor reads its region’s case; other roles are refused, and another region’s raw download is a 404 audited as denied', async () => {
    const drive = caseDriver(sys);
    const { caseId } = await caseForImportedPerson(sys, drive, 'us', 'History Access');
    const usAuditor: TestPrincipal = { sub: 'auditor-us', roles: ['auditor'], regions: ['us'] };
    const euAuditor: TestPrincipal = { sub: 'auditor-eu', roles: ['auditor'], regions: ['eu'] };
    const page = await historyPage(caseId, 'limit=3', usAuditor);
    expect(page.caseId).toBe(caseId);
    expect(page.items[0]).toMatchObject({ position: 1, type: 'WorkflowExecutionStarted', workflowId: workflowIds.case(caseId) });

    for (const who of [principals.admin, principals.analyst, principals.investigator, principals.legal]) {
      const res = await sys.http.get(`/v1/cases/${caseId}/history`).set('Authorization', await sys.auth(who));
      expect(res.status, who.sub).toBe(403);
      expect(JSON.stringify(res.body)).not.toContain('WorkflowExecutionStarted');
    }
    const raw = await sys.http.get(`/v1/cases/${caseId}/history/raw`).set('Authorization', await sys.auth(euAuditor));
    expect(raw.status).toBe(404);
    expect(raw.body.error.code).toBe('not_found');
    const entries = await sys.db.select().from(auditLog).where(eq(auditLog.requestId, raw.headers['x-request-id']!));
    expect(entries.map((e) => [e.action, e.outcome, e.actor, e.region])).toEqual([
      ['case.history.download', 'denied', 'auditor-eu', 'us'],
    ]);
    const missing = await sys.http.get(`/v1/cases/${randomUUID()}/history`).set('Authorization', await sys.auth(people.auditor));
    expect(missing.status).toBe(404);
  });
});

// ---------------------------------------------------------------------------------------------
// Alert triage

const analyst = () => sys.auth(principals.analyst);

/** Alerts of (subject, policy), oldest first. */
const alertsOf = (sid: string, policyId: string) =>
  sys.db
    .select()
    .from(alerts)
    .where(and(eq(alerts.subjectId, sid), eq(alerts.policyId, policyId)))
    .orderBy(alerts.createdAt);

/** A person in `region` with one open alert of a fresh policy (score 45: 15 USB copies at 3 points). */
async function openAlert(region = 'eu') {
  const g = uniq('race');
  const policy = await activePolicy(sys, policyBody('data_theft_departing_users', g));
  const p = person(g, region);
  await importPeople(sys, [p]);
  const sid = await subjectIdOf(sys, p.externalId);
  await ingest(sys, [ev.resignation(p.externalId), ev.usb(p.externalId, 15)]);
  const [a] = await alertsOf(sid, policy.id);
  expect(a).toMatchObject({ status: 'needs_review', score: 45 });
  return { policyId: policy.id, p, sid, alertId: a!.id };
}

/**
 * Hold a row lock on an alert from a connection of the test's own, so that requests reaching the
 * row queue behind it in a chosen order; `waiting(n)` resolves once n other backends wait for a lock.
 */
async function lockAlert(id: string) {
  const c = new pg.Client({ connectionString: sys.config.database.url });
  await c.connect();
  await c.query('begin');
  await c.query('select id from alerts where id = $1 for update', [id]);
  const waiting = async (n: number) => {
    const count = async () =>
      (
        await sys.db.execute<{ n: number }>(
          sql`select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`,
        )
      ).rows[0]!.n;
    expect(await waitFor(count, (v) => v >= n, 20_000)).toBeGreaterThanOrEqual(n);
  };
  return {
    waiting,
    release: async () => {
      await c.query('commit');
      await c.end();
    },
  };
}

/** Start a supertest request now (supertest sends only when awaited). */
const started = <T>(req: PromiseLike<T>): Promise<T> => Promise.resolve(req);

describe('triage under concurrency', () => {
  it('an assignment that loses the race to a dismissal is a 409 naming the status the alert has now', async () => {
    const { alertId } = await openAlert();
    const lock = await lockAlert(alertId);
    let dismiss, assign;
    try {
      dismiss = started(
        sys.http
          .post(`/v1/alerts/${alertId}/dismiss`)
          .set('Authorization', await analyst())
          .send({ reason: 'false_positive', comment: 'Known backup job' }),
      );
      await lock.waiting(1);
      assign = started(
        sys.http
          .post(`/v1/alerts/${alertId}/assign`)
          .set('Authorization', await sys.auth(principals.investigator))
          .send({ assignee: 'investigator-1' }),
      );
      await lock.waiting(2);
    } finally {
      await lock.release();
    }
    const [d, a] = await Promise.all([dismiss!, assign!]);
    expect(d.status).toBe(200);
    expect(d.body).toMatchObject({ id: alertId, status: 'dismissed', assignee: null });
    const [row] = await sys.db.select().from(alerts).where(eq(alerts.id, alertId));
    expect(row).toMatchObject({ status: 'dismissed', assignee: null });
    const assignAudit = await sys.db.select().from(auditLog).where(eq(auditLog.requestId, a.headers['x-request-id']!));
    expect(assignAudit.filter((e) => e.outcome === 'allowed')).toEqual([]);
    expect(a.status).toBe(409);
    // The answer must describe the alert as it is, not as it was before the dismissal committed.
    expect(a.body.error.details).toEqual({ status: 'dismissed' });
    expect(a.body.error.message).toContain('dismissed');
  });

  it('new evidence scored while the alert is being dismissed is not lost: it raises a new alert', async () => {
    const { policyId, p, sid, alertId } = await openAlert();
    const lock = await lockAlert(alertId);
    let dismiss, signals;
    try {
      dismiss = started(
        sys.http
          .post(`/v1/alerts/${alertId}/dismiss`)
          .set('Authorization', await analyst())
          .send({ reason: 'benign_activity', comment: 'Approved backup to an encrypted drive' }),
      );
      await lock.waiting(1);
      // New evidence: 5 more copies two days later (score 60), scored against a snapshot in which
      // the alert is still open; its raise then waits behind the dismissal for the row.
      signals = await sys.http
        .post('/v1/signals')
        .set('Authorization', await sys.auth(principals.connector))
        .send({ events: [ev.usb(p.externalId, 5, at(2 * DAY))] });
      expect(signals.status, JSON.stringify(signals.body)).toBe(202);
      await lock.waiting(2);
    } finally {
      await lock.release();
    }
    expect((await dismiss!).status).toBe(200);
    const scoring = await scoringOf(sys, signals!.body.scoringWorkflowId);
    expect(scoring!.pairsScored).toBe(1);

    const rows = await alertsOf(sid, policyId);
    // The dismissed alert keeps the score the analyst saw; the new evidence must show up in the queue.
    expect(rows.find((r) => r.id === alertId)).toMatchObject({ status: 'dismissed', score: 45 });
    const queue = await sys.http
      .get(`/v1/alerts?subjectId=${sid}&policyId=${policyId}&status=needs_review`)
      .set('Authorization', await analyst());
    expect(queue.status).toBe(200);
    expect(queue.body.items.map((a: { score: number }) => a.score)).toEqual([60]);
  });
});

describe('the alert queue’s assignment filters and the assign input', () => {
  it('assignee names are trimmed and bounded; unassigned=false lists only assigned alerts; contradictory filters list nothing', async () => {
    const g = uniq('assign');
    const policy = await activePolicy(sys, policyBody('data_theft_departing_users', g));
    const crowd = [person(g), person(g), person(g)];
    await importPeople(sys, crowd);
    const r = await ingest(
      sys,
      crowd.flatMap((x) => [ev.resignation(x.externalId), ev.usb(x.externalId, 15)]),
    );
    const [a1, a2, a3] = r.scoring!.alertsCreated as [string, string, string];
    const assign = async (id: string, assignee: unknown) =>
      sys.http
        .post(`/v1/alerts/${id}/assign`)
        .set('Authorization', await analyst())
        .send({ assignee });

    for (const bad of ['', '   ', 'x'.repeat(201), 42]) {
      const res = await assign(a1, bad);
      expect(res.status, JSON.stringify(bad)).toBe(400);
      expect(res.body.error.details[0].field).toBe('body.assignee');
    }
    const [untouched] = await sys.db.select().from(alerts).where(eq(alerts.id, a1));
    expect(untouched!.assignee).toBeNull();

    const long = 'y'.repeat(200);
    expect((await assign(a1, long)).body.assignee).toBe(long);
    const trimmed = await assign(a2, '  investigator-7  ');
    expect(trimmed.status).toBe(200);
    expect(trimmed.body.assignee).toBe('investigator-7');

    const ids = async (q: string) => {
      const res = await sys.http.get(`/v1/alerts?policyId=${policy.id}&${q}`).set('Authorization', await analyst());
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return (res.body.items as Array<{ id: string }>).map((a) => a.id).sort();
    };
    expect(await ids('assignee=investigator-7')).toEqual([a2]);
    expect(await ids(`assignee=${long}`)).toEqual([a1]);
    expect(await ids('unassigned=true')).toEqual([a3]);
    expect(await ids('unassigned=true&assignee=investigator-7')).toEqual([]);
    expect((await sys.http.get('/v1/alerts?assignee=').set('Authorization', await analyst())).status).toBe(400);
    // `unassigned=false` is accepted, so it must mean something: the assigned alerts.
    expect(await ids('unassigned=false')).toEqual([a1, a2].sort());
  });
});

describe('bulk dismissal’s failed list', () => {
  it('names each id that was not dismissed, never revealing another region’s alert; duplicates count once', async () => {
    const g = uniq('bulkmix');
    const policy = await activePolicy(sys, policyBody('data_theft_departing_users', g));
    const [e1, e2, e3, e4, u1, u2] = [person(g), person(g), person(g), person(g), person(g, 'us'), person(g, 'us')];
    await importPeople(sys, [e1, e2, e3, e4, u1, u2]);
    await ingest(
      sys,
      [e1, e2, e3, e4, u1, u2].flatMap((x) => [ev.resignation(x.externalId), ev.usb(x.externalId, 15)]),
    );
    const idOf = async (x: { externalId: string }) => (await alertsOf(await subjectIdOf(sys, x.externalId), policy.id))[0]!.id;
    const [open, dismissedEu, confirmed, open2, usOpen, usDismissed] = await Promise.all([e1, e2, e3, e4, u1, u2].map(idOf));
    await sys.db
      .update(alerts)
      .set({ status: 'dismissed', dismissReason: 'duplicate' })
      .where(inArray(alerts.id, [dismissedEu!, usDismissed!]));
    await sys.db.update(alerts).set({ status: 'confirmed' }).where(eq(alerts.id, confirmed!));
    const missing = randomUUID();

    const euAnalyst: TestPrincipal = { sub: 'analyst-eu', roles: ['analyst'], regions: ['eu'] };
    const res = await sys.http
      .post('/v1/alerts/dismiss')
      .set('Authorization', await sys.auth(euAnalyst))
      .send({
        ids: [open, usOpen, dismissedEu, missing, open, confirmed, usDismissed, open2],
        reason: 'insufficient_evidence',
        comment: 'Batch review',
      });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toEqual({
      dismissed: [open, open2],
      failed: [
        { id: usOpen, reason: 'not_found' },
        { id: dismissedEu, reason: 'not_needs_review', status: 'dismissed' },
        { id: missing, reason: 'not_found' },
        { id: confirmed, reason: 'not_needs_review', status: 'confirmed' },
        { id: usDismissed, reason: 'not_found' },
      ],
    });
    const after = new Map((await sys.db.select().from(alerts).where(eq(alerts.policyId, policy.id))).map((a) => [a.id, a]));
    expect(after.get(usOpen!)).toMatchObject({ status: 'needs_review', dismissReason: null });
    expect(after.get(confirmed!)).toMatchObject({ status: 'confirmed', dismissReason: null });
    expect(after.get(dismissedEu!)).toMatchObject({ status: 'dismissed', dismissReason: 'duplicate' });
    expect(after.get(open!)).toMatchObject({
      status: 'dismissed',
      dismissReason: 'insufficient_evidence',
      dismissedBy: 'analyst-eu',
    });

    const entries = await sys.db.select().from(auditLog).where(eq(auditLog.requestId, res.headers['x-request-id']!));
    expect(
      entries
        .map((e) => [e.outcome, e.region, (e.details as { alertIds: string[] }).alertIds])
        .sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
    ).toEqual([
      ['allowed', 'eu', [open, open2].sort()],
      ['denied', 'us', [usOpen, usDismissed].sort()],
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// The users view

type ViewItem = {
  subject: { id: string; pseudonym: string; displayName?: string };
  region: string;
  policies: Array<Record<string, unknown>>;
};

async function view(q: string, who: Parameters<TestSystem['auth']>[0] = principals.admin) {
  const res = await sys.http.get(`/v1/subjects?${q}`).set('Authorization', await sys.auth(who));
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body as { items: ViewItem[]; nextCursor: string | null };
}

async function viewAll(q: string, limit: number) {
  const items: ViewItem[] = [];
  const sizes: number[] = [];
  let cursor: string | null = null;
  do {
    const page: { items: ViewItem[]; nextCursor: string | null } = await view(
      `${q}&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`,
    );
    items.push(...page.items);
    sizes.push(page.items.length);
    cursor = page.nextCursor;
  } while (cursor);
  return { ids: items.map((i) => i.subject.id), items, sizes };
}

describe('the users view', () => {
  it('policyId with inScope / triggered pages exactly: each subject once, filters complementary, a full last page has no cursor', async () => {
    const g = uniq('view');
    const policy = await activePolicy(
      sys,
      policyBody('data_theft_departing_users', g, { scope: { regions: ['eu'], include: { groups: [g] } } }),
    );
    const hit = [person(g), person(g), person(g)];
    const quiet = person(g);
    const elsewhere = person(g, 'us');
    await importPeople(sys, [...hit, quiet, elsewhere]);
    await ingest(
      sys,
      [...hit, elsewhere].flatMap((x) => [ev.resignation(x.externalId), ev.usb(x.externalId, 15)]),
    );
    const sid = async (x: { externalId: string }) => subjectIdOf(sys, x.externalId);
    const hitIds = await Promise.all(hit.map(sid));
    const [quietId, elsewhereId] = [await sid(quiet), await sid(elsewhere)];

    const base = `policyId=${policy.id}`;
    for (const limit of [1, 2, 3]) {
      const t = await viewAll(`${base}&triggered=true`, limit);
      expect(t.ids.sort(), `limit ${limit}`).toEqual([...hitIds].sort());
      expect(t.sizes.at(-1), `limit ${limit}`).toBeGreaterThan(0);
      expect(t.sizes.reduce((a, b) => a + b, 0)).toBe(3);
    }
    const exact = await view(`${base}&triggered=true&limit=3`);
    expect(exact.items).toHaveLength(3);
    expect(exact.nextCursor).toBeNull();
    for (const item of exact.items) {
      expect(item.policies).toHaveLength(1);
      expect(item.policies[0]).toMatchObject({ policyId: policy.id, inScope: true, triggered: true, score: 45, severity: 'low' });
      expect(Object.keys(item.subject).sort()).toEqual(['id', 'pseudonym']);
    }
    const inScope = await viewAll(`${base}&inScope=true`, 2);
    expect(inScope.ids.sort()).toEqual([...hitIds, quietId].sort());
    const inScopeQuiet = await viewAll(`${base}&inScope=true&triggered=false`, 1);
    expect(inScopeQuiet.ids).toEqual([quietId]);
    expect(inScopeQuiet.items[0]!.policies[0]).toMatchObject({ inScope: true, triggered: false, score: null, alertId: null });
    // Out of scope by region: never triggered for this policy, though another region's scoring left nothing behind.
    const out = await viewAll(`${base}&inScope=false&region=us`, 500);
    expect(out.ids).toContain(elsewhereId);
    expect(out.items.find((i) => i.subject.id === elsewhereId)!.policies[0]).toMatchObject({ inScope: false, triggered: false });
    const all = await viewAll(base, 500);
    const t = new Set((await viewAll(`${base}&triggered=true`, 500)).ids);
    const f = new Set((await viewAll(`${base}&triggered=false`, 500)).ids);
    expect([...t].filter((x) => f.has(x))).toEqual([]);
    expect(t.size + f.size).toBe(all.ids.length);

    for (const q of [`${base}&triggered=yes`, `${base}&limit=0`, `${base}&limit=501`, 'policyId=not-a-uuid', 'inScope=true']) {
      const res = await sys.http.get(`/v1/subjects?${q}`).set('Authorization', await sys.auth(principals.admin));
      expect(res.status, q).toBe(400);
    }
    const unknown = await sys.http
      .get(`/v1/subjects?policyId=${randomUUID()}`)
      .set('Authorization', await sys.auth(principals.admin));
    expect(unknown.status).toBe(404);
  });

  it('a subject named in the scope by its id in upper case is matched like the same id in lower case', async () => {
    const g = uniq('caseid');
    const [included, excluded] = [person(uniq('elsewhere')), person(g)];
    await importPeople(sys, [included, excluded]);
    const [inc, exc] = [await subjectIdOf(sys, included.externalId), await subjectIdOf(sys, excluded.externalId)];
    // UUIDs are case-insensitive (RFC 4122 / 9562); Postgres compares them so.
    const policy = await activePolicy(
      sys,
      policyBody('data_theft_departing_users', g, {
        scope: { include: { groups: [g], subjects: [inc.toUpperCase()] }, exclude: { subjects: [exc.toUpperCase()] } },
      }),
    );
    await ingest(
      sys,
      [included, excluded].flatMap((x) => [ev.resignation(x.externalId), ev.usb(x.externalId, 15)]),
    );
    const entry = async (id: string) =>
      (await viewAll(`policyId=${policy.id}`, 500)).items.find((i) => i.subject.id === id)!.policies[0];
    const listedInScope = (await viewAll(`policyId=${policy.id}&inScope=true`, 500)).ids;
    const pick = (e: Record<string, unknown> | undefined) => ({ inScope: e?.inScope, triggered: e?.triggered, score: e?.score });
    // One comparison, so a failure shows the filter, the entries and the alerts together.
    expect({
      includedListedInScope: listedInScope.includes(inc),
      excludedListedInScope: listedInScope.includes(exc),
      included: pick(await entry(inc)),
      excluded: pick(await entry(exc)),
      excludedAlerts: (await alertsOf(exc, policy.id)).length,
    }).toEqual({
      includedListedInScope: true,
      excludedListedInScope: false,
      included: { inScope: true, triggered: true, score: 45 },
      excluded: { inScope: false, triggered: false, score: null },
      excludedAlerts: 0,
    });
  });

  it('names appear only for analysts, only in regions that allow it, once anonymization is off; admins never see them', async () => {
    const g = uniq('names');
    const policy = await activePolicy(sys, policyBody('data_theft_departing_users', g));
    const [eu, us] = [person(g, 'eu'), person(g, 'us')];
    await importPeople(sys, [eu, us]);
    await ingest(
      sys,
      [eu, us].flatMap((x) => [ev.resignation(x.externalId), ev.usb(x.externalId, 15)]),
    );
    const [euId, usId] = [await subjectIdOf(sys, eu.externalId), await subjectIdOf(sys, us.externalId)];
    const off = await sys.http
      .patch('/v1/settings')
      .set('Authorization', await sys.auth(principals.admin))
      .send({ showAnonymizedNames: false });
    expect(off.status, JSON.stringify(off.body)).toBe(200);
    try {
      const byId = (items: ViewItem[]) => new Map(items.map((i) => [i.subject.id, i.subject]));
      const asAnalyst = byId((await view(`policyId=${policy.id}&triggered=true&limit=500`, principals.analyst)).items);
      expect(asAnalyst.get(usId)!.displayName).toBe(us.displayName);
      expect(asAnalyst.get(euId)!.displayName).toBeUndefined();
      const asAdmin = await view(`policyId=${policy.id}&triggered=true&limit=500`, principals.admin);
      expect(JSON.stringify(asAdmin)).not.toContain(us.displayName);
      expect(asAdmin.items.every((i) => i.subject.displayName === undefined)).toBe(true);

      // Triage answers follow the same rule: the US alert's dismissal shows the name to the analyst only.
      const [usAlert] = await alertsOf(usId, policy.id);
      const dismissed = await sys.http
        .post(`/v1/alerts/${usAlert!.id}/dismiss`)
        .set('Authorization', await analyst())
        .send({ reason: 'other', comment: 'Checked with the manager' });
      expect(dismissed.body.subject).toEqual({
        id: usId,
        pseudonym: expect.stringMatching(/^Anon-/),
        displayName: us.displayName,
      });
      const audited = await sys.db.select().from(auditLog).where(eq(auditLog.requestId, dismissed.headers['x-request-id']!));
      expect(audited.find((e) => e.action === 'identity.display_names')).toMatchObject({ details: { subjectIds: [usId] } });
      const [euAlert] = await alertsOf(euId, policy.id);
      const euAssigned = await sys.http
        .post(`/v1/alerts/${euAlert!.id}/assign`)
        .set('Authorization', await analyst())
        .send({ assignee: 'analyst-1' });
      expect(Object.keys(euAssigned.body.subject).sort()).toEqual(['id', 'pseudonym']);
      expect(JSON.stringify(euAssigned.body)).not.toContain(eu.displayName);
    } finally {
      await sys.http
        .patch('/v1/settings')
        .set('Authorization', await sys.auth(principals.admin))
        .send({ showAnonymizedNames: true });
    }
  });
});
