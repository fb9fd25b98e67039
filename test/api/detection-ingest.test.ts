import { and, eq, inArray, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditLog, connectorData, identityVault, signalBatches, signals, subjects } from '../../db/schema';
import { openIdentity } from '../../infra/identity';
import { openText } from '../../infra/sealed';
import { at, DAY, ev, importPeople, ingest, person, subjectIdOf, uniq } from '../helpers/detection';
import { principals, startTestSystem, type TestSystem } from '../helpers/system';

let sys: TestSystem;
beforeAll(async () => {
  sys = await startTestSystem();
});
afterAll(async () => sys?.close());

const connector = () => sys.auth(principals.connector);

describe('roster import (connector)', () => {
  it('creates pseudonymized subjects from JSON; the same roster again changes nothing; a changed record updates', async () => {
    const group = uniq('g');
    const a = person(group);
    const b = { ...person(group), upn: 'b@corp.example', manager: 'boss@corp.example', department: 'Sales' };
    expect(await importPeople(sys, [a, b])).toEqual({ created: 2, updated: 0, unchanged: 0, rejected: [] });
    const idA = await subjectIdOf(sys, a.externalId);
    const [row] = await sys.db.select().from(subjects).where(eq(subjects.id, idA));
    expect(row).toMatchObject({ region: 'eu', groups: [group] });
    expect(row!.pseudonym).toMatch(/^Anon-[2-9A-Z]{4}-[2-9A-Z]{2}$/);

    const [vaultBefore] = await sys.db.select().from(identityVault).where(eq(identityVault.subjectId, idA));
    expect(await importPeople(sys, [a, b])).toEqual({ created: 0, updated: 0, unchanged: 2, rejected: [] });
    const [vaultSame] = await sys.db.select().from(identityVault).where(eq(identityVault.subjectId, idA));
    expect(vaultSame).toEqual(vaultBefore);

    const moved = { ...a, displayName: 'Renamed Person', region: 'us', groups: [group, 'moved'] };
    expect(await importPeople(sys, [moved, b])).toEqual({ created: 0, updated: 1, unchanged: 1, rejected: [] });
    const [after] = await sys.db.select().from(subjects).where(eq(subjects.id, idA));
    expect(after).toMatchObject({ region: 'us', groups: [group, 'moved'].sort(), pseudonym: row!.pseudonym });
    const [vaultAfter] = await sys.db.select().from(identityVault).where(eq(identityVault.subjectId, idA));
    expect(vaultAfter!.version).toBe(vaultBefore!.version + 1);
    expect(openIdentity(sys.config.keys.vault, vaultAfter!).displayName).toBe('Renamed Person');
  });

  it('imports a CSV as HR systems export it: header synonyms, quoted cells, groups separated by ";", unknown columns ignored', async () => {
    const g = uniq('csv');
    const csv = [
      'Employee ID,Full Name,Email Address,UserPrincipalName,Manager,Department,Groups,Region,Salary',
      `${g}-1,"Doe, Jane",jane@corp.example,jane@corp.example,boss@corp.example,Sales,"${g};sales-emea",eu,100000`,
      `${g}-2,Bob Roe,bob@corp.example,,,"R&D",${g},us,90000`,
    ].join('\r\n');
    const res = await sys.http
      .post('/v1/subjects/import')
      .set('Authorization', await connector())
      .set('Content-Type', 'text/csv')
      .send(csv);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toEqual({ created: 2, updated: 0, unchanged: 0, rejected: [], ignoredColumns: ['Salary'] });
    const [jane] = await sys.db
      .select()
      .from(subjects)
      .where(eq(subjects.id, await subjectIdOf(sys, `${g}-1`)));
    expect(jane).toMatchObject({ region: 'eu', department: 'Sales', groups: [g, 'sales-emea'].sort() });
    const [vault] = await sys.db.select().from(identityVault).where(eq(identityVault.subjectId, jane!.id));
    expect(openIdentity(sys.config.keys.vault, vault!)).toMatchObject({
      externalId: `${g}-1`,
      displayName: 'Doe, Jane',
      email: 'jane@corp.example',
    });

    const again = await sys.http
      .post('/v1/subjects/import')
      .set('Authorization', await connector())
      .set('Content-Type', 'text/csv')
      .send(csv);
    expect(again.body).toMatchObject({ created: 0, updated: 0, unchanged: 2 });
  });

  it('a CSV roster sent again changes nothing; a changed department updates that subject and re-seals its identity; a changed region leaves the vault alone', async () => {
    const g = uniq('csvre');
    const header = 'Employee ID,Full Name,Email Address,Department,Groups,Region';
    const line = (n: number, department: string, region = 'eu') =>
      `${g}-${n},Person ${n},p${n}.${g}@corp.example,${department},${g},${region}`;
    const importCsv = async (rows: string[]) => {
      const res = await sys.http
        .post('/v1/subjects/import')
        .set('Authorization', await connector())
        .set('Content-Type', 'text/csv')
        .send([header, ...rows].join('\n'));
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return res.body as unknown;
    };
    const original = [line(1, 'Sales'), line(2, 'Finance'), line(3, 'Legal')];
    expect(await importCsv(original)).toEqual({ created: 3, updated: 0, unchanged: 0, rejected: [], ignoredColumns: [] });
    const [id1, id2, id3] = await Promise.all([1, 2, 3].map((n) => subjectIdOf(sys, `${g}-${n}`)));
    const ids = [id1!, id2!, id3!];
    const readSubjects = async () =>
      new Map((await sys.db.select().from(subjects).where(inArray(subjects.id, ids))).map((r) => [r.id, r]));
    const readVault = async () =>
      new Map(
        (await sys.db.select().from(identityVault).where(inArray(identityVault.subjectId, ids))).map((r) => [r.subjectId, r]),
      );
    const subjectsBefore = await readSubjects();
    const vaultBefore = await readVault();
    expect(subjectsBefore.get(id2!)).toMatchObject({ department: 'Finance', region: 'eu', groups: [g] });

    // The same file again: nothing is written, not even a timestamp.
    expect(await importCsv(original)).toEqual({ created: 0, updated: 0, unchanged: 3, rejected: [], ignoredColumns: [] });
    expect(await readSubjects()).toEqual(subjectsBefore);
    expect(await readVault()).toEqual(vaultBefore);

    // One record's department changes: the department is part of the sealed identity.
    const changed = [line(1, 'Sales'), line(2, 'Audit'), line(3, 'Legal')];
    expect(await importCsv(changed)).toEqual({ created: 0, updated: 1, unchanged: 2, rejected: [], ignoredColumns: [] });
    const subjectsChanged = await readSubjects();
    expect(subjectsChanged.get(id2!)).toMatchObject({
      department: 'Audit',
      region: 'eu',
      groups: [g],
      pseudonym: subjectsBefore.get(id2!)!.pseudonym,
    });
    expect(subjectsChanged.get(id1!)).toEqual(subjectsBefore.get(id1!));
    expect(subjectsChanged.get(id3!)).toEqual(subjectsBefore.get(id3!));
    const vaultChanged = await readVault();
    const resealed = vaultChanged.get(id2!)!;
    expect(resealed.version).toBe(vaultBefore.get(id2!)!.version + 1);
    expect(resealed.ciphertext).not.toBe(vaultBefore.get(id2!)!.ciphertext);
    expect(resealed.fingerprint).not.toBe(vaultBefore.get(id2!)!.fingerprint);
    expect(openIdentity(sys.config.keys.vault, resealed)).toMatchObject({
      externalId: `${g}-2`,
      displayName: 'Person 2',
      email: `p2.${g}@corp.example`,
      department: 'Audit',
    });
    expect(vaultChanged.get(id1!)).toEqual(vaultBefore.get(id1!));
    expect(vaultChanged.get(id3!)).toEqual(vaultBefore.get(id3!));

    // A region is a scoping attribute, not identity: the subject moves, its vault row stays as it was.
    const moved = [line(1, 'Sales'), line(2, 'Audit'), line(3, 'Legal', 'us')];
    expect(await importCsv(moved)).toEqual({ created: 0, updated: 1, unchanged: 2, rejected: [], ignoredColumns: [] });
    expect((await readSubjects()).get(id3!)).toMatchObject({ region: 'us', department: 'Legal' });
    const vaultMoved = await readVault();
    expect(vaultMoved.get(id3!)).toEqual(vaultBefore.get(id3!));
    expect(vaultMoved.get(id2!)).toEqual(resealed);
  });

  it('a CSV without the columns it needs is a 400 naming them', async () => {
    const res = await sys.http
      .post('/v1/subjects/import')
      .set('Authorization', await connector())
      .set('Content-Type', 'text/csv')
      .send('Name,Email\nA,a@x.example\n');
    expect(res.status).toBe(400);
    expect(res.body.error.message).toContain('externalId, region');
  });

  it('rejects bad records by index with a reason and imports the rest', async () => {
    const g = uniq('g');
    const good = person(g);
    const res = await sys.http
      .post('/v1/subjects/import')
      .set('Authorization', await connector())
      .send({
        subjects: [
          { externalId: 'X1', displayName: 'No Region' },
          good,
          { ...person(g), region: 'mars' },
          { ...person(g), email: 'not-an-email' },
          { ...good, displayName: 'Same person twice' },
          { ...person(g), nickname: 'extra field' },
        ],
      });
    expect(res.status).toBe(200);
    expect(res.body.created).toBe(1);
    expect(res.body.rejected.map((r: { index: number }) => r.index)).toEqual([0, 2, 3, 4, 5]);
    expect(res.body.rejected[0].reason).toMatch(/^region: /);
    expect(res.body.rejected[1].reason).toContain('unknown region');
    expect(res.body.rejected[2].reason).toMatch(/^email: /);
    expect(res.body.rejected[3].reason).toContain('repeats the record at index 1');
    expect(res.body.rejected[4].reason).toContain('nickname');
  });

  it('an import is audited with counts only', async () => {
    const p = person(uniq('g'));
    const res = await sys.http
      .post('/v1/subjects/import')
      .set('Authorization', await connector())
      .send({ subjects: [p] });
    const [entry] = await sys.db.select().from(auditLog).where(eq(auditLog.requestId, res.headers['x-request-id']!));
    expect(entry).toMatchObject({
      action: 'subjects.import',
      category: 'subjects',
      actor: principals.connector.sub,
      outcome: 'allowed',
    });
    expect(entry!.details).toEqual({ created: 1, updated: 0, unchanged: 0, rejected: 0, format: 'json' });
  });
});

describe('identity fields live only in the vault', () => {
  it('a canary identity is found in no table but the vault, and there only encrypted; nor in any log line', async () => {
    const CANARY = 'Zyxcanary';
    const p = {
      externalId: `${CANARY}-EMP-77`,
      displayName: `${CANARY} Quixote`,
      email: `${CANARY.toLowerCase()}.q@corp.example`,
      upn: `${CANARY}Q@corp.example`,
      manager: `${CANARY}Boss@corp.example`,
      department: 'Finance',
      groups: [uniq('g')],
      region: 'eu',
    };
    await importPeople(sys, [p]);
    // Signals about the person, including HR remarks that name them (sealed too).
    await ingest(sys, [
      ev.resignation(p.externalId),
      ev.performanceReview(p.externalId, at(0), `Discussed with ${CANARY} Quixote`),
      ev.usb(p.externalId, 3),
    ]);
    // Re-import with a change, so update paths are covered too.
    await importPeople(sys, [{ ...p, department: 'Audit' }]);

    const tables = await sys.db.execute<{ table_name: string }>(sql`
      select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE'`);
    const hits: Record<string, number> = {};
    for (const { table_name } of tables.rows) {
      const r = await sys.db.execute<{ n: number }>(
        sql`select count(*)::int as n from ${sql.identifier(table_name)} t where t::text ilike ${'%' + CANARY + '%'}`,
      );
      if (r.rows[0]!.n > 0) hits[table_name] = r.rows[0]!.n;
    }
    expect(hits).toEqual({});
    // The vault holds it, decryptable with the vault key only.
    const [vault] = await sys.db
      .select()
      .from(identityVault)
      .where(eq(identityVault.subjectId, await subjectIdOf(sys, p.externalId)));
    expect(openIdentity(sys.config.keys.vault, vault!)).toMatchObject({
      displayName: p.displayName,
      email: p.email,
      upn: p.upn,
      manager: p.manager,
    });
    expect(sys.logs.join('\n').toLowerCase()).not.toContain(CANARY.toLowerCase());
  });
});

describe('signals (connector)', () => {
  it('keeps the good events of a batch, names each bad one by index, and treats an unknown subject as a rejection', async () => {
    const p = person(uniq('g'));
    await importPeople(sys, [p]);
    const events = [
      ev.resignation(p.externalId),
      { ...ev.usb(p.externalId, 5), occurredAt: 'yesterday' },
      ev.dlp(p.externalId, 'high'),
      ev.usb('NO-SUCH-PERSON', 1),
      { ...ev.dlp(p.externalId, 'medium'), severity: undefined },
      'not an event',
      ev.activity(p.externalId, 'email_to_external_domain', 2),
    ];
    const r = await ingest(sys, events);
    expect(r.status).toBe(202);
    expect(r.body.accepted).toBe(3);
    expect(r.body.duplicates).toBe(0);
    expect(r.body.rejected).toEqual([
      { index: 1, reason: expect.stringMatching(/^occurredAt: /) },
      { index: 3, reason: expect.stringContaining('unknown subject') },
      { index: 4, reason: expect.stringMatching(/^severity: /) },
      { index: 5, reason: 'an event must be an object' },
    ]);
    expect(JSON.stringify(r.body.rejected)).not.toContain('NO-SUCH-PERSON');
    const stored = await sys.db.select().from(signals).where(eq(signals.batchId, r.body.batchId));
    expect(stored.map((s) => s.type).sort()).toEqual(['dlp_alert', 'email_to_external_domain', 'resignation']);
    expect(new Set(stored.map((s) => s.subjectId))).toEqual(new Set([await subjectIdOf(sys, p.externalId)]));
  });

  it('accepts every activity kind with counts and sizes', async () => {
    const p = person(uniq('g'));
    await importPeople(sys, [p]);
    const kinds = [
      'file_downloaded',
      'file_copied_to_usb',
      'file_uploaded_to_personal_cloud',
      'file_printed',
      'email_to_external_domain',
    ];
    const events = kinds.map((k, i) => ({
      ...ev.activity(p.externalId, k, i + 1),
      attributes: { count: i + 1, bytes: 1000 * (i + 1), ...(k === 'email_to_external_domain' ? { domain: 'gmail.com' } : {}) },
    }));
    events.push({ ...ev.endpoint(p.externalId), attributes: { alertType: 'unwanted_software', status: 'in_progress' } } as never);
    const r = await ingest(sys, events);
    expect(r.body).toMatchObject({ accepted: 6, rejected: [] });
    const stored = await sys.db.select().from(signals).where(eq(signals.batchId, r.body.batchId));
    expect(stored.find((s) => s.type === 'file_printed')).toMatchObject({ count: 4, attributes: { count: 4, bytes: 4000 } });
  });

  it('refuses a batch of more than 5,000 events whole with 413, storing nothing', async () => {
    const p = person(uniq('g'));
    await importPeople(sys, [p]);
    const events = Array.from({ length: 5001 }, () => ev.usb(p.externalId, 1));
    const before = await sys.db.select({ n: sql<number>`count(*)::int` }).from(signals);
    const res = await sys.http
      .post('/v1/signals')
      .set('Authorization', await connector())
      .send({ events });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('payload_too_large');
    const after = await sys.db.select({ n: sql<number>`count(*)::int` }).from(signals);
    expect(after[0]!.n).toBe(before[0]!.n);
  });

  it('accepts a batch of exactly 5,000 events and stores every one of them', async () => {
    const p = person(uniq('g'));
    await importPeople(sys, [p]);
    const events = Array.from({ length: 5000 }, () => ev.usb(p.externalId, 1));
    const r = await ingest(sys, events);
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({ accepted: 5000, duplicates: 0, rejected: [] });
    const [stored] = await sys.db
      .select({ n: sql<number>`count(*)::int`, ids: sql<number>`count(distinct ${signals.externalId})::int` })
      .from(signals)
      .where(eq(signals.batchId, r.body.batchId));
    expect(stored).toEqual({ n: 5000, ids: 5000 });
  });

  it('refuses an HR CSV of more than 5,000 rows whole with 413, storing nothing; its first 5,000 rows are accepted', async () => {
    const p = person(uniq('g'));
    await importPeople(sys, [p]);
    const g = uniq('big');
    const header = 'Event ID,Employee ID,Event Type,Event Date,Last Working Date';
    const lines = Array.from({ length: 5001 }, (_, i) => `${g}-${i},${p.externalId},Resignation,2026-11-01,2026-11-30`);
    const countAll = async () => ({
      signals: (await sys.db.select({ n: sql<number>`count(*)::int` }).from(signals))[0]!.n,
      batches: (await sys.db.select({ n: sql<number>`count(*)::int` }).from(signalBatches))[0]!.n,
    });
    const before = await countAll();
    const res = await sys.http
      .post('/v1/signals')
      .set('Authorization', await connector())
      .set('Content-Type', 'text/csv')
      .send([header, ...lines].join('\n'));
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('payload_too_large');
    expect(res.body.error.message).toContain('5000');
    expect(await countAll()).toEqual(before);

    // The same rows, one fewer: the refusal above was the size alone.
    const ok = await sys.http
      .post('/v1/signals')
      .set('Authorization', await connector())
      .set('Content-Type', 'text/csv')
      .send([header, ...lines.slice(0, 5000)].join('\n'));
    expect(ok.status, JSON.stringify(ok.body)).toBe(202);
    expect(ok.body).toMatchObject({ accepted: 5000, duplicates: 0, rejected: [] });
    await sys.client.workflow.getHandle(ok.body.scoringWorkflowId).result();
    const [stored] = await sys.db
      .select({ n: sql<number>`count(*)::int` })
      .from(signals)
      .where(eq(signals.batchId, ok.body.batchId));
    expect(stored!.n).toBe(5000);
  });

  it('a replayed event is a duplicate: counted, stored once, also when repeated within one batch', async () => {
    const p = person(uniq('g'));
    await importPeople(sys, [p]);
    const events = [ev.resignation(p.externalId), ev.usb(p.externalId, 2), ev.usb(p.externalId, 3)];
    const first = await ingest(sys, [...events, events[1]]);
    expect(first.body).toMatchObject({ accepted: 3, duplicates: 1, rejected: [] });
    const second = await ingest(sys, events);
    expect(second.body).toMatchObject({ accepted: 0, duplicates: 3, rejected: [] });
    const keys = events.map((e) => e.externalId);
    const rows = await sys.db.select().from(signals).where(inArray(signals.externalId, keys));
    expect(rows).toHaveLength(3);
  });

  it('a connector only reaches subjects of its regions: others are unknown', async () => {
    const p = person(uniq('g'), 'eu');
    await importPeople(sys, [p]);
    const res = await sys.http
      .post('/v1/signals')
      .set('Authorization', await sys.auth({ sub: 'us-connector', roles: ['connector'], regions: ['us'] }))
      .send({ events: [ev.usb(p.externalId, 1)] });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      accepted: 0,
      rejected: [{ index: 0, reason: expect.stringContaining('unknown subject') }],
      scoringWorkflowId: null,
    });
  });

  it('HR events arrive as CSV with a header row: all five kinds; stable derived ids make the file idempotent; remarks are sealed', async () => {
    const g = uniq('hr');
    const people = [person(g), person(g), person(g), person(g), person(g)];
    await importPeople(sys, people);
    const [a, b, c, d, e] = people.map((p) => p.externalId);
    const csv = [
      'Employee ID,Event Type,Event Date,Last Working Date,Rating,Effective Date,Remarks,Old Level,New Level,Office',
      `${a},Resignation,2026-11-01,2026-11-30,,,,,,Berlin`,
      `${b},termination,2026-11-03,2026-11-03,,,,,,Paris`,
      `${c},Performance Review,,,2,2026-10-15,"Missed targets, discussed with manager",,,Rome`,
      `${d},PIP,,,,2026-10-20,Improvement plan started,,,Rome`,
      `${e},Job Level Change,,,,2026-10-01,,L5,L4,Oslo`,
    ].join('\n');
    const res = await sys.http
      .post('/v1/signals')
      .set('Authorization', await connector())
      .set('Content-Type', 'text/csv')
      .send(csv);
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.body).toMatchObject({ accepted: 5, duplicates: 0, rejected: [], ignoredColumns: ['Office'] });
    const scoring = sys.client.workflow.getHandle(res.body.scoringWorkflowId);
    await scoring.result();
    // The batch's scoring workflow was started eagerly: its first task came back with the start
    // response to this process's worker (shared native connection, as in `npm start`).
    const { events } = await scoring.fetchHistory();
    expect(events![0]!.workflowExecutionStartedEventAttributes?.eagerExecutionAccepted).toBe(true);
    const rows = await sys.db.select().from(signals).where(eq(signals.batchId, res.body.batchId));
    const byType = Object.fromEntries(rows.map((r) => [r.type, r]));
    expect(Object.keys(byType).sort()).toEqual([
      'job_level_change',
      'performance_improvement_plan',
      'performance_review',
      'resignation',
      'termination',
    ]);
    expect(byType.resignation).toMatchObject({ source: 'hr', attributes: { lastWorkingDate: '2026-11-30' } });
    expect(byType.resignation!.occurredAt.toISOString()).toBe('2026-11-01T00:00:00.000Z');
    expect(byType.performance_review!.attributes).toEqual({ rating: 2, effectiveDate: '2026-10-15' });
    expect(byType.performance_review!.occurredAt.toISOString()).toBe('2026-10-15T00:00:00.000Z');
    expect(openText(sys.config.keys.vault, byType.performance_review!.sealed!)).toEqual({
      remarks: 'Missed targets, discussed with manager',
    });
    expect(byType.job_level_change!.attributes).toEqual({ oldLevel: 'L5', newLevel: 'L4', effectiveDate: '2026-10-01' });
    for (const r of rows) expect(r.externalId).toMatch(/^hrcsv-[0-9a-f]{32}$/);
    const again = await sys.http
      .post('/v1/signals')
      .set('Authorization', await connector())
      .set('Content-Type', 'text/csv')
      .send(csv);
    expect(again.body).toMatchObject({ accepted: 0, duplicates: 5 });
  });

  it('HR rules: remarks are at most 200 characters; a resignation carries its last working date', async () => {
    const p = person(uniq('g'));
    await importPeople(sys, [p]);
    const r = await ingest(sys, [
      ev.performanceReview(p.externalId, at(0), 'x'.repeat(201)),
      { ...ev.resignation(p.externalId), attributes: {} },
      ev.performanceReview(p.externalId, at(0), 'y'.repeat(200)),
      ev.levelChange(p.externalId, 'L3', 'L4'),
    ]);
    expect(r.body.accepted).toBe(2);
    expect(r.body.rejected).toEqual([
      { index: 0, reason: 'attributes.remarks: remarks are at most 200 characters' },
      { index: 1, reason: expect.stringMatching(/^attributes.lastWorkingDate: /) },
    ]);
  });

  it('HR events missing a required field, or with a malformed date, are rejected by index naming the field; the rest of the batch is stored', async () => {
    const p = person(uniq('g'));
    await importPeople(sys, [p]);
    const review = ev.performanceReview(p.externalId, at(0), 'Zqx remark kept private');
    const { rating: _rating, ...noRating } = review.attributes;
    const { effectiveDate: _effective, ...noEffectiveDate } = review.attributes;
    const level = ev.levelChange(p.externalId, 'Zqx-old-level', 'Zqx-new-level');
    const events = [
      ev.performanceReview(p.externalId),
      { ...review, attributes: noRating },
      { ...review, externalId: uniq('hr'), attributes: noEffectiveDate },
      ev.levelChange(p.externalId, 'L3', 'L4'),
      { ...level, attributes: { oldLevel: level.attributes.oldLevel } },
      { ...level, externalId: uniq('hr'), attributes: { newLevel: level.attributes.newLevel } },
      { ...ev.performanceReview(p.externalId), attributes: { rating: 3, effectiveDate: '15/10/2026' } },
      {
        ...ev.performanceReview(p.externalId),
        type: 'performance_improvement_plan',
        attributes: { effectiveDate: '2026-13-01' },
      },
      { ...ev.levelChange(p.externalId, 'L5', 'L4'), attributes: { oldLevel: 'L5', newLevel: 'L4', effectiveDate: '2026-1-5' } },
      ev.resignation(p.externalId),
    ];
    const r = await ingest(sys, events);
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({ accepted: 3, duplicates: 0 });
    expect(r.body.rejected).toEqual([
      // A rating is a number or a label: zod's union says "Invalid input", still naming the field.
      { index: 1, reason: expect.stringMatching(/^attributes\.rating: /) },
      { index: 2, reason: 'attributes.effectiveDate: Required' },
      { index: 4, reason: 'attributes.newLevel: Required' },
      // The domain requires the old level too (it is what a demotion is judged against).
      { index: 5, reason: 'attributes.oldLevel: Required' },
      { index: 6, reason: 'attributes.effectiveDate: expected a date YYYY-MM-DD' },
      { index: 7, reason: 'attributes.effectiveDate: not a calendar date' },
      { index: 8, reason: 'attributes.effectiveDate: expected a date YYYY-MM-DD' },
    ]);
    const echoed = JSON.stringify(r.body);
    for (const v of ['Zqx', '15/10/2026', '2026-13-01', '2026-1-5']) expect(echoed).not.toContain(v);
    const stored = await sys.db.select().from(signals).where(eq(signals.batchId, r.body.batchId));
    expect(stored.map((s) => s.externalId).sort()).toEqual(
      [events[0], events[3], events[9]].map((e) => (e as { externalId: string }).externalId).sort(),
    );
  });

  it('an HR date that is no day of the calendar (30 February, 31 April) is rejected as such', async () => {
    const p = person(uniq('g'));
    await importPeople(sys, [p]);
    const review = ev.performanceReview(p.externalId);
    const events = [
      { ...review, attributes: { rating: 2, effectiveDate: '2026-02-30' } },
      { ...ev.resignation(p.externalId), attributes: { lastWorkingDate: '2026-04-31' } },
      ev.performanceReview(p.externalId),
    ];
    const r = await ingest(sys, events);
    expect(r.body.rejected).toEqual([
      { index: 0, reason: 'attributes.effectiveDate: not a calendar date' },
      { index: 1, reason: 'attributes.lastWorkingDate: not a calendar date' },
    ]);
    const stored = await sys.db.select().from(signals).where(eq(signals.batchId, r.body.batchId));
    expect(stored.map((s) => s.attributes)).toEqual([{ rating: 1, effectiveDate: at(0).slice(0, 10) }]);
  });

  it('a performance improvement plan sent as JSON keeps rating and effective date in attributes and its remarks only sealed, up to 200 characters', async () => {
    const p = person(uniq('g'));
    await importPeople(sys, [p]);
    const pip = (remarks: string) => ({
      source: 'hr',
      externalId: uniq('pip'),
      subject: p.externalId,
      type: 'performance_improvement_plan',
      occurredAt: '2026-10-20T08:30:00Z',
      attributes: { rating: 'Needs improvement', effectiveDate: '2026-10-20', remarks },
    });
    const remark = 'Plan agreed after missed quarterly goals; Zqx reviewed';
    const longest = `${'Zqx long remark '.repeat(12)}${'z'.repeat(8)}`;
    expect(longest).toHaveLength(200);
    const events = [pip(remark), pip(longest)];
    const r = await ingest(sys, events);
    expect(r.body).toMatchObject({ accepted: 2, duplicates: 0, rejected: [] });
    const rows = await sys.db.select().from(signals).where(eq(signals.batchId, r.body.batchId));
    const byId = new Map(rows.map((row) => [row.externalId, row]));
    for (const [event, text] of [
      [events[0]!, remark],
      [events[1]!, longest],
    ] as const) {
      const row = byId.get(event.externalId)!;
      expect(row).toMatchObject({ source: 'hr', type: 'performance_improvement_plan', severity: null, count: 1 });
      expect(row.occurredAt.toISOString()).toBe('2026-10-20T08:30:00.000Z');
      expect(row.attributes).toEqual({ rating: 'Needs improvement', effectiveDate: '2026-10-20' });
      expect(row.sealed).not.toBeNull();
      expect(row.sealed).not.toContain('Zqx');
      expect(openText(sys.config.keys.vault, row.sealed!)).toEqual({ remarks: text });
    }
    // Nowhere in the stored rows in clear, whatever column.
    const clear = await sys.db.execute<{ n: number }>(
      sql`select count(*)::int as n from signals t where t.batch_id = ${r.body.batchId} and t::text ilike ${'%Zqx%'}`,
    );
    expect(clear.rows[0]!.n).toBe(0);
  });

  it('a termination sent as JSON keeps its last working and termination dates; without attributes it stores none', async () => {
    const p = person(uniq('g'));
    await importPeople(sys, [p]);
    const dated = {
      ...ev.termination(p.externalId, '2026-11-03T00:00:00Z'),
      attributes: { lastWorkingDate: '2026-11-30', terminationDate: '2026-11-03' },
    };
    const { attributes: _none, ...bare } = ev.termination(p.externalId);
    const r = await ingest(sys, [dated, bare]);
    expect(r.body).toMatchObject({ accepted: 2, rejected: [] });
    const rows = await sys.db.select().from(signals).where(eq(signals.batchId, r.body.batchId));
    const byId = new Map(rows.map((row) => [row.externalId, row]));
    expect(byId.get(dated.externalId)).toMatchObject({
      source: 'hr',
      type: 'termination',
      subjectId: await subjectIdOf(sys, p.externalId),
      attributes: { lastWorkingDate: '2026-11-30', terminationDate: '2026-11-03' },
      sealed: null,
    });
    expect(byId.get(dated.externalId)!.attributes).toEqual({ lastWorkingDate: '2026-11-30', terminationDate: '2026-11-03' });
    expect(byId.get(dated.externalId)!.occurredAt.toISOString()).toBe('2026-11-03T00:00:00.000Z');
    expect(byId.get(bare.externalId)!.attributes).toEqual({});
  });

  it('a job level change sent as JSON keeps its old and new levels (trimmed) and effective date; its remarks are sealed', async () => {
    const p = person(uniq('g'));
    await importPeople(sys, [p]);
    const plain = ev.levelChange(p.externalId, 'L5', 'L4');
    const detailed = {
      ...ev.levelChange(p.externalId, ' Senior Engineer ', 'Engineer'),
      attributes: {
        oldLevel: ' Senior Engineer ',
        newLevel: 'Engineer',
        effectiveDate: '2026-10-01',
        demotion: true,
        remarks: 'Zqx asked to step back',
      },
    };
    const r = await ingest(sys, [plain, detailed]);
    expect(r.body).toMatchObject({ accepted: 2, rejected: [] });
    const rows = await sys.db.select().from(signals).where(eq(signals.batchId, r.body.batchId));
    const byId = new Map(rows.map((row) => [row.externalId, row]));
    expect(byId.get(plain.externalId)).toMatchObject({ type: 'job_level_change', source: 'hr', sealed: null });
    expect(byId.get(plain.externalId)!.attributes).toEqual({ oldLevel: 'L5', newLevel: 'L4' });
    const d = byId.get(detailed.externalId)!;
    expect(d.attributes).toEqual({
      oldLevel: 'Senior Engineer',
      newLevel: 'Engineer',
      effectiveDate: '2026-10-01',
      demotion: true,
    });
    expect(openText(sys.config.keys.vault, d.sealed!)).toEqual({ remarks: 'Zqx asked to step back' });
  });

  it('each batch is recorded and audited with counts only; its status shows the scoring result', async () => {
    const p = person(uniq('g'));
    await importPeople(sys, [p]);
    const res = await sys.http
      .post('/v1/signals')
      .set('Authorization', await connector())
      .send({ events: [ev.usb(p.externalId, 1), { bad: true }] });
    expect(res.status).toBe(202);
    expect(res.headers.location).toBe(`/v1/signals/batches/${res.body.batchId}`);
    await sys.client.workflow.getHandle(res.body.scoringWorkflowId).result();
    const [entry] = await sys.db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.requestId, res.headers['x-request-id']!), eq(auditLog.action, 'signals.ingest')));
    expect(entry).toMatchObject({ targetType: 'signal_batch', targetId: res.body.batchId, outcome: 'allowed' });
    expect(entry!.details).toEqual({ accepted: 1, duplicates: 0, rejected: 1, subjects: 1, format: 'json' });
    const [batch] = await sys.db.select().from(signalBatches).where(eq(signalBatches.id, res.body.batchId));
    expect(batch!.scoredAt).not.toBeNull();
    const status = await sys.http.get(res.headers.location!).set('Authorization', await connector());
    expect(status.body).toMatchObject({ batchId: res.body.batchId, status: 'scored', accepted: 1, rejected: 1 });
    const other = await sys.http
      .get(res.headers.location!)
      .set('Authorization', await sys.auth({ sub: 'other-connector', roles: ['connector'], regions: ['*'] }));
    expect(other.status).toBe(404);
  });

  it('notes which kinds of connector data arrived (what policy prerequisites check)', async () => {
    const p = person(uniq('g'));
    await importPeople(sys, [p]);
    await ingest(sys, [ev.endpoint(p.externalId, at(DAY))]);
    const rows = await sys.db.select().from(connectorData).where(eq(connectorData.source, 'endpoint'));
    expect(rows.map((r) => r.type)).toEqual(['endpoint_alert']);
  });
});
