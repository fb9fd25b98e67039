/**
 * CSV files as HR systems and spreadsheets really export them (BOM, CRLF, blank lines, quoting,
 * non-ASCII names, header variants, other delimiters and charsets), sent through HTTP to the roster
 * import and the HR signal ingest, with the outcome read back from the stored rows and the vault.
 * The basic CSV paths (synonyms, idempotent re-sends, the 5,000-row limit) are in
 * detection-ingest.test.ts.
 */
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identityVault, signals, subjects } from '../../db/schema';
import { openIdentity } from '../../infra/identity';
import { openText } from '../../infra/sealed';
import { importPeople, person, subjectIdOf, uniq } from '../helpers/detection';
import { principals, startTestSystem, type TestSystem } from '../helpers/system';

let sys: TestSystem;
beforeAll(async () => {
  sys = await startTestSystem();
});
afterAll(async () => sys?.close());

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

async function postCsv(path: '/v1/subjects/import' | '/v1/signals', body: string | Buffer, contentType = 'text/csv') {
  return sys.http
    .post(path)
    .set('Authorization', await sys.auth(principals.connector))
    .set('Content-Type', contentType)
    .send(body);
}

/** The subject row and its decrypted vault identity. */
async function stored(externalId: string) {
  const id = await subjectIdOf(sys, externalId);
  const [subject] = await sys.db.select().from(subjects).where(eq(subjects.id, id));
  const [vault] = await sys.db.select().from(identityVault).where(eq(identityVault.subjectId, id));
  return { subject: subject!, identity: openIdentity(sys.config.keys.vault, vault!) };
}

async function counts() {
  const n = async (table: typeof subjects | typeof signals | typeof identityVault) =>
    (await sys.db.select({ n: sql<number>`count(*)::int` }).from(table))[0]!.n;
  return { subjects: await n(subjects), vault: await n(identityVault), signals: await n(signals) };
}

/** Tables whose rows contain `needle` anywhere in their text form. */
async function tablesContaining(needle: string): Promise<string[]> {
  const tables = await sys.db.execute<{ table_name: string }>(sql`
    select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE'`);
  const hits: string[] = [];
  for (const { table_name } of tables.rows) {
    const r = await sys.db.execute<{ n: number }>(
      sql`select count(*)::int as n from ${sql.identifier(table_name)} t where t::text ilike ${'%' + needle + '%'}`,
    );
    if (r.rows[0]!.n > 0) hits.push(table_name);
  }
  return hits;
}

describe('roster CSV shapes', () => {
  it('an Excel "CSV UTF-8" file (BOM, CRLF, blank lines inside and at the end) imports every row; indexes count records, not lines', async () => {
    const g = uniq('bom');
    const text = [
      'Employee ID,Full Name,Email Address,Groups,Region',
      `${g}-1,Ada Byron,ada.${g}@corp.example,${g},eu`,
      '',
      `${g}-2,Bo Lund,bo.${g}@corp.example,${g},us`,
      '',
      '',
      `${g}-3,Cy Mars,cy.${g}@corp.example,${g},mars`,
      `${g}-4,Di Vo,di.${g}@corp.example,${g},eu`,
      '',
      '',
    ].join('\r\n');
    const res = await postCsv('/v1/subjects/import', Buffer.concat([BOM, Buffer.from(text, 'utf8')]));
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    // The BOM did not end up in the first header (it would be an unknown column, externalId missing).
    expect(res.body).toEqual({
      created: 3,
      updated: 0,
      unchanged: 0,
      rejected: [{ index: 2, reason: expect.stringMatching(/^region: unknown region/) }],
      ignoredColumns: [],
    });
    const ada = await stored(`${g}-1`);
    // Neither the BOM nor a CR is left on any value.
    expect(ada.identity).toEqual({
      externalId: `${g}-1`,
      displayName: 'Ada Byron',
      email: `ada.${g}@corp.example`,
      upn: null,
      manager: null,
      department: null,
    });
    expect(ada.subject).toMatchObject({ region: 'eu', groups: [g] });
    expect((await stored(`${g}-2`)).subject).toMatchObject({ region: 'us', groups: [g] });
    expect((await stored(`${g}-4`)).identity.displayName).toBe('Di Vo');
    await expect(subjectIdOf(sys, `${g}-3`)).rejects.toThrow('subject not imported');
  });

  it('a row of empty cells (a formatted but empty spreadsheet row) is rejected by index naming externalId; the other rows are imported', async () => {
    const g = uniq('blankrow');
    const text = ['Employee ID,Full Name,Region', `${g}-1,Ann,eu`, ',,', ' , , ', `${g}-2,Bo,eu`].join('\r\n');
    const res = await postCsv('/v1/subjects/import', text);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toEqual({
      created: 2,
      updated: 0,
      unchanged: 0,
      rejected: [
        { index: 1, reason: 'externalId: Required' },
        { index: 2, reason: 'externalId: Required' },
      ],
      ignoredColumns: [],
    });
    expect((await stored(`${g}-2`)).identity.displayName).toBe('Bo');
  });

  it('quoted cells keep their commas, doubled quotes and line breaks exactly', async () => {
    const g = uniq('quote');
    const text = [
      'Employee ID,Full Name,Department,Manager,Groups,Region',
      `${g}-1,"Smith, Jane",Sales,"Boss, The",${g},eu`,
      `${g}-2,"Jane ""JJ"" Doe","Research\nand Development",boss@corp.example,"${g};extra, more",eu`,
      `"${g}-3","O'Brien, ""Pat""",,,"${g}",us`,
    ].join('\r\n');
    const res = await postCsv('/v1/subjects/import', text);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toEqual({ created: 3, updated: 0, unchanged: 0, rejected: [], ignoredColumns: [] });

    const one = await stored(`${g}-1`);
    expect(one.identity).toMatchObject({ displayName: 'Smith, Jane', manager: 'Boss, The', department: 'Sales' });
    const two = await stored(`${g}-2`);
    expect(two.identity).toMatchObject({ displayName: 'Jane "JJ" Doe', department: 'Research\nand Development' });
    // Department is kept in clear on the subject too, line break included; groups split on ; and ,
    expect(two.subject).toMatchObject({ department: 'Research\nand Development', groups: [g, 'extra', 'more'].sort() });
    const three = await stored(`${g}-3`);
    expect(three.identity).toMatchObject({ externalId: `${g}-3`, displayName: `O'Brien, "Pat"`, department: null });
    expect(three.subject).toMatchObject({ region: 'us', department: null, groups: [g] });
  });

  it('non-ASCII names (é, ß, 中文, a decomposed é, emoji) survive sealing and decryption exactly, and re-sending them changes nothing', async () => {
    const g = uniq('utf');
    const people = [
      { id: `${g}-1`, name: 'Zoë Lefèvre-Müller', dept: 'Forschung & Entwicklung – Zürich' },
      { id: `${g}-2`, name: 'Groß, Jürgen', dept: 'Straßenbau' },
      { id: `${g}-3`, name: '王小明 中文', dept: '研发部' },
      // As macOS tools write it: "e" + combining acute accent; it must not be normalized to "é".
      { id: `Ü${g}-4`, name: 'Rene\u0301 Åsa Øvergård 🚀', dept: 'Ωmega' },
    ];
    const text = ['Employee ID,Full Name,Department,Region', ...people.map((p) => `${p.id},"${p.name}",${p.dept},eu`)].join('\n');
    const res = await postCsv('/v1/subjects/import', Buffer.from(text, 'utf8'), 'text/csv; charset=utf-8');
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ created: 4, rejected: [] });
    for (const p of people) {
      const { subject, identity } = await stored(p.id);
      expect(identity).toMatchObject({ externalId: p.id, displayName: p.name, department: p.dept });
      expect([...identity.displayName]).toEqual([...p.name]);
      expect(subject.department).toBe(p.dept);
    }
    expect((await stored(`Ü${g}-4`)).identity.displayName).not.toBe('Rene\u0301 Åsa Øvergård 🚀'.normalize('NFC'));

    const again = await postCsv('/v1/subjects/import', Buffer.from(text, 'utf8'), 'text/csv; charset=utf-8');
    expect(again.body).toMatchObject({ created: 0, updated: 0, unchanged: 4, rejected: [] });
  });

  it('headers match whatever their case, spacing and punctuation, by documented synonyms, in any order; unknown columns are listed and never stored', async () => {
    const g = uniq('hdr');
    const canary = uniq('Qzcanary');
    const header = ` REGION ,work_email,Salary, employee-number ,Home Address,FULL NAME,dept,Member Of,Manager Name,User Principal Name`;
    const text = [
      header,
      `eu,w1.${g}@corp.example,${canary}-90000,${g}-1,"${canary} Lane 12",Ann Lee,Legal,"${g}|legal",Big Boss,ann.${g}@corp.example`,
      `us,w2.${g}@corp.example,${canary}-80000,${g}-2,"${canary} Road 3",Ben Ho,IT,${g},,`,
    ].join('\r\n');
    const res = await postCsv('/v1/subjects/import', text);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toEqual({ created: 2, updated: 0, unchanged: 0, rejected: [], ignoredColumns: ['Salary', 'Home Address'] });

    const ann = await stored(`${g}-1`);
    expect(ann.identity).toEqual({
      externalId: `${g}-1`,
      displayName: 'Ann Lee',
      email: `w1.${g}@corp.example`,
      upn: `ann.${g}@corp.example`,
      manager: 'Big Boss',
      department: 'Legal',
    });
    expect(ann.subject).toMatchObject({ region: 'eu', department: 'Legal', groups: [g, 'legal'].sort() });
    const ben = await stored(`${g}-2`);
    expect(ben.identity).toEqual({
      externalId: `${g}-2`,
      displayName: 'Ben Ho',
      email: `w2.${g}@corp.example`,
      upn: null,
      manager: null,
      department: 'IT',
    });
    expect(ben.subject).toMatchObject({ region: 'us', groups: [g] });

    // The unknown columns' values are nowhere: not in any table, not in the sealed identity, not in a log line.
    expect(await tablesContaining(canary)).toEqual([]);
    expect(JSON.stringify([ann.identity, ben.identity])).not.toContain(canary);
    expect(sys.logs.join('\n')).not.toContain(canary);
  });
});

describe('CSV files that cannot be imported', () => {
  it('a header-only file, an empty body and a body of blank lines are refused with a 400 naming the problem; nothing is stored', async () => {
    const before = await counts();
    const cases: Array<[path: '/v1/subjects/import' | '/v1/signals', body: string | Buffer, message: RegExp]> = [
      ['/v1/subjects/import', 'Employee ID,Full Name,Region\r\n', /no rows after the header/],
      ['/v1/subjects/import', Buffer.concat([BOM, Buffer.from('Employee ID,Full Name,Region\r\n\r\n\r\n')]), /no rows/],
      ['/v1/signals', 'Employee ID,Event Type,Event Date,Last Working Date\n', /no rows after the header/],
      ['/v1/subjects/import', '', /header row is required/],
      ['/v1/signals', '', /header row is required/],
      ['/v1/subjects/import', '\r\n\r\n', /header row is required/],
    ];
    for (const [path, body, message] of cases) {
      const res = await postCsv(path, body);
      expect(res.status, `${path} ${JSON.stringify(body.toString())}: ${JSON.stringify(res.body)}`).toBe(400);
      expect(res.body.error.code).toBe('validation_error');
      expect(res.body.error.message).toMatch(message);
    }
    expect(await counts()).toEqual(before);
  });

  it('a header naming the same field twice (also by two synonyms) is refused with a 400 naming the column; nothing is stored', async () => {
    const g = uniq('dup');
    const before = await counts();
    const roster = await postCsv('/v1/subjects/import', `Employee ID,Full Name,Employee Number,Region\n${g}-1,Ann,${g}-1b,eu\n`);
    expect(roster.status).toBe(400);
    expect(roster.body.error.message).toBe('Invalid CSV: column "Employee Number" repeats field externalId');
    const same = await postCsv('/v1/subjects/import', `Region,Employee ID,Full Name,region\neu,${g}-2,Bo,us\n`);
    expect(same.status).toBe(400);
    expect(same.body.error.message).toBe('Invalid CSV: column "region" repeats field region');
    const hr = await postCsv('/v1/signals', `Employee ID,Event Type,Event Date,Date\n${g}-1,resignation,2026-11-01,2026-11-02\n`);
    expect(hr.status).toBe(400);
    expect(hr.body.error.message).toBe('Invalid CSV: column "Date" repeats field occurredAt');
    expect(await counts()).toEqual(before);
  });

  it('a roster row with fewer or more cells than the header is rejected by index with a reason; the other rows are imported', async () => {
    const g = uniq('ragged');
    const text = [
      'Employee ID,Full Name,Region,Department',
      `${g}-1,Ann,eu,Sales`,
      `${g}-2,Bo,eu`,
      `${g}-3,Cy,eu,Legal`,
      `${g}-4,Di,eu,IT,surplus`,
      `${g}-5,Ed,us,HR`,
    ].join('\n');
    const res = await postCsv('/v1/subjects/import', text);
    // The docs: "Bad records are rejected by index with a reason; the others are kept."
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({
      created: 3,
      rejected: [
        { index: 1, reason: expect.stringMatching(/cell|column|field/i) },
        { index: 3, reason: expect.stringMatching(/cell|column|field/i) },
      ],
    });
    for (const n of [1, 3, 5]) expect((await stored(`${g}-${n}`)).identity.externalId).toBe(`${g}-${n}`);
    await expect(subjectIdOf(sys, `${g}-2`)).rejects.toThrow('subject not imported');
    await expect(subjectIdOf(sys, `${g}-4`)).rejects.toThrow('subject not imported');
  });

  it('an HR row with fewer or more cells than the header is rejected by index with a reason; the other events are stored', async () => {
    const people = [person(uniq('hrragged')), person(uniq('hrragged')), person(uniq('hrragged'))];
    await importPeople(sys, people);
    const [a, b, c] = people.map((p) => p.externalId);
    const text = [
      'Employee ID,Event Type,Event Date,Last Working Date',
      `${a},Resignation,2026-11-01,2026-11-30`,
      `${b},Resignation,2026-11-02`,
      `${c},Resignation,2026-11-03,2026-11-30,extra`,
    ].join('\n');
    const res = await postCsv('/v1/signals', text);
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.body).toMatchObject({
      accepted: 1,
      rejected: [
        { index: 1, reason: expect.stringMatching(/cell|column|field/i) },
        { index: 2, reason: expect.stringMatching(/cell|column|field/i) },
      ],
    });
    const rows = await sys.db.select().from(signals).where(eq(signals.batchId, res.body.batchId));
    expect(rows.map((r) => r.subjectId)).toEqual([await subjectIdOf(sys, a!)]);
  });
});

describe('delimiters and charsets other than the default', () => {
  it('a semicolon-delimited file (European Excel) is either imported correctly or refused with a 4xx that names the delimiter', async () => {
    const g = uniq('semi');
    const files = [
      // Plain: one "column" named "Employee ID;Full Name;Region" to a comma parser.
      { id: `${g}-1`, name: 'Ann Lee', text: `Employee ID;Full Name;Region\r\n${g}-1;Ann Lee;eu\r\n` },
      // Excel quotes only cells holding the delimiter: a comma in a name stays unquoted.
      { id: `${g}-2`, name: 'Lee, Ann', text: `Employee ID;Full Name;Region\r\n${g}-2;Lee, Ann;eu\r\n` },
      { id: `${g}-3`, name: 'Lee; Ann', text: `Employee ID;Full Name;Region\r\n${g}-3;"Lee; Ann";eu\r\n` },
    ];
    const outcomes: string[] = [];
    for (const f of files) {
      const before = await counts();
      const res = await postCsv('/v1/subjects/import', f.text);
      const name = res.status === 200 ? (await stored(f.id).catch(() => null))?.identity.displayName : undefined;
      const understood =
        res.status === 200
          ? res.body.created === 1 && res.body.rejected.length === 0 && name === f.name
          : res.status >= 400 &&
            res.status < 500 &&
            /delimiter|semicolon|separat|";"/i.test(String(res.body.error?.message)) &&
            JSON.stringify(await counts()) === JSON.stringify(before);
      if (!understood)
        outcomes.push(`${JSON.stringify(f.text)} → ${res.status} ${JSON.stringify(res.body.error?.message ?? res.body)}`);
    }
    expect(outcomes, 'files neither imported correctly nor refused for their delimiter').toEqual([]);
  });

  it('a file declared latin1 or windows-1252 is decoded by its charset: the names reach the vault exactly', async () => {
    const g = uniq('latin');
    const latin1 = Buffer.concat([
      Buffer.from(`Employee ID,Full Name,Department,Region\r\n${g}-1,Ren`, 'latin1'),
      Buffer.from([0xe9]), // é
      Buffer.from(' M', 'latin1'),
      Buffer.from([0xfc]), // ü
      Buffer.from('ller,Stra', 'latin1'),
      Buffer.from([0xdf]), // ß
      Buffer.from('enbau,eu\r\n', 'latin1'),
    ]);
    const res = await postCsv('/v1/subjects/import', latin1, 'text/csv; charset=latin1');
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ created: 1, rejected: [] });
    const rene = await stored(`${g}-1`);
    expect(rene.identity).toMatchObject({ displayName: 'René Müller', department: 'Straßenbau' });
    expect(rene.subject.department).toBe('Straßenbau');

    // windows-1252 places letters where ISO-8859-1 has control characters: 0x8E is Ž, 0x9A is š.
    const cp1252 = Buffer.concat([
      Buffer.from(`Employee ID,Full Name,Region\r\n${g}-2,`, 'latin1'),
      Buffer.from([0x8e]),
      Buffer.from('ofia Ka', 'latin1'),
      Buffer.from([0x9a]),
      Buffer.from('par,eu\r\n', 'latin1'),
    ]);
    const res2 = await postCsv('/v1/subjects/import', cp1252, 'text/csv; charset=windows-1252');
    expect(res2.status, JSON.stringify(res2.body)).toBe(200);
    expect((await stored(`${g}-2`)).identity.displayName).toBe('Žofia Kašpar');
  });

  it('a charset the server cannot decode is refused with 415; nothing is stored', async () => {
    const before = await counts();
    const res = await postCsv(
      '/v1/subjects/import',
      `Employee ID,Full Name,Region\n${uniq('cs')}-1,Ann,eu\n`,
      'text/csv; charset=x-no-such-charset',
    );
    expect(res.status).toBe(415);
    expect(res.body.error).toMatchObject({ code: 'unsupported_media_type', message: expect.stringMatching(/encoding|charset/i) });
    expect(await counts()).toEqual(before);
  });

  it('a Latin-1 file sent without a charset is refused as not UTF-8, not stored with replacement characters', async () => {
    const g = uniq('nocs');
    // Excel's plain "CSV (Comma delimited)" on Windows writes windows-1252 and declares nothing.
    const body = Buffer.concat([
      Buffer.from(`Employee ID,Full Name,Region\r\n${g}-1,Ren`, 'latin1'),
      Buffer.from([0xe9]),
      Buffer.from(' Dubois,eu\r\n', 'latin1'),
    ]);
    const before = await counts();
    const res = await postCsv('/v1/subjects/import', body);
    const storedName = res.status === 200 ? (await stored(`${g}-1`)).identity.displayName : null;
    expect(storedName, 'the file was accepted and the name stored mis-decoded').toBeNull();
    expect([400, 415]).toContain(res.status);
    expect(res.body.error.message).toMatch(/UTF-8|charset|encoding/i);
    expect(await counts()).toEqual(before);
  });
});

describe('HR event CSV shapes', () => {
  it('an HR export with BOM, CRLF, reordered synonym headers, blank lines and a quoted two-line remark stores every event as sent; the remark is sealed exactly', async () => {
    const people = [person(uniq('hrcsv')), person(uniq('hrcsv'))];
    await importPeople(sys, people);
    const [a, b] = people.map((p) => p.externalId);
    const canary = uniq('Qzcost');
    const remark = 'Missed Q3 targets, discussed with "Jürgen".\nFollow-up: 中文 résumé — next week';
    const text = [
      ' Comments ,DATE,event,Person ID,Effective Date,Performance Rating,Last Day,Cost Center',
      `"${remark.replace(/"/g, '""')}",,Performance Review,${a},2026-10-15,2,,${canary}`,
      '',
      `,2026-11-01,resigned,${b},,,2026-11-30,${canary}`,
      '',
      '',
    ].join('\r\n');
    const res = await postCsv('/v1/signals', Buffer.concat([BOM, Buffer.from(text, 'utf8')]));
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.body).toMatchObject({ accepted: 2, duplicates: 0, rejected: [], ignoredColumns: ['Cost Center'] });
    await sys.client.workflow.getHandle(res.body.scoringWorkflowId).result();

    const rows = await sys.db.select().from(signals).where(eq(signals.batchId, res.body.batchId));
    const byType = Object.fromEntries(rows.map((r) => [r.type, r]));
    expect(Object.keys(byType).sort()).toEqual(['performance_review', 'resignation']);
    const review = byType.performance_review!;
    expect(review).toMatchObject({ source: 'hr', subjectId: await subjectIdOf(sys, a!) });
    expect(review.attributes).toEqual({ rating: 2, effectiveDate: '2026-10-15' });
    expect(review.occurredAt.toISOString()).toBe('2026-10-15T00:00:00.000Z');
    // Line break (LF inside a CRLF file), comma, doubled quotes and non-ASCII: exactly as written.
    expect(openText(sys.config.keys.vault, review.sealed!)).toEqual({ remarks: remark });
    const resignation = byType.resignation!;
    expect(resignation).toMatchObject({ source: 'hr', subjectId: await subjectIdOf(sys, b!), sealed: null });
    expect(resignation.attributes).toEqual({ lastWorkingDate: '2026-11-30' });
    expect(resignation.occurredAt.toISOString()).toBe('2026-11-01T00:00:00.000Z');
    expect(await tablesContaining(canary)).toEqual([]);
  });
});
