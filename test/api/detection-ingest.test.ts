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
