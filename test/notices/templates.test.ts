import { and, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { noticeTemplateForStep } from '../../api/notices';
import { NoticeTemplateSchema, NoticeTemplateVersionSchema, SavedNoticeTemplateSchema } from '../../api/routes/notice-templates';
import { auditLog, noticeTemplateVersions } from '../../db/schema';
import { principals, startTestSystem, type TestSystem } from '../helpers/system';

let sys: TestSystem;
let admin: string;
let investigator: string;

beforeAll(async () => {
  sys = await startTestSystem({ worker: false });
  admin = await sys.auth(principals.admin);
  investigator = await sys.auth(principals.investigator);
});
afterAll(async () => sys?.close());

const template = (over: Record<string, unknown> = {}) => ({
  name: 'First notice (EN)',
  language: 'en',
  from: 'insider-risk@example.org',
  fromName: 'Insider Risk Team',
  cc: ['hr@example.org'],
  bcc: ['archive@example.org'],
  subject: 'Notice about case {{case.reference}}',
  htmlBody:
    '<p>Dear {{subject.displayName}},</p><p>Under the policy <b>{{policy.name}}</b> please respond by {{response.deadline}}.</p>',
  textBody: 'Dear {{subject.displayName}},\nUnder the policy {{policy.name}} please respond by {{response.deadline}}.',
  responseDays: 10,
  ...over,
});

describe('notice templates', () => {
  it('an administrator creates a template (version 1), audited, and reads it back', async () => {
    const res = await sys.http.put('/v1/notice-templates/first-en').set('Authorization', admin).send(template());
    expect(res.status).toBe(201);
    const body = SavedNoticeTemplateSchema.parse(res.body);
    expect(body).toMatchObject({
      id: 'first-en',
      version: 1,
      language: 'en',
      changed: true,
      htmlSanitized: false,
      createdBy: 'admin-1',
    });
    expect(body.placeholders).toEqual(['subject.displayName', 'case.reference', 'policy.name', 'response.deadline']);
    const audit = await sys.db.select().from(auditLog).where(eq(auditLog.requestId, res.headers['x-request-id']!));
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({
      action: 'notice_template.create',
      category: 'notice_templates',
      targetId: 'first-en',
      outcome: 'allowed',
    });

    const read = await sys.http.get('/v1/notice-templates/first-en').set('Authorization', investigator);
    expect(read.status).toBe(200);
    const parsed = NoticeTemplateSchema.extend({ versions: z.array(NoticeTemplateVersionSchema) }).parse(read.body);
    expect(parsed.versions.map((v) => v.version)).toEqual([1]);
    expect(parsed.subject).toBe('Notice about case {{case.reference}}');
  });

  it('saving again makes a new immutable version; the old one stays as it was; unchanged content adds none', async () => {
    await sys.http.put('/v1/notice-templates/versioned').set('Authorization', admin).send(template());
    const v2 = await sys.http
      .put('/v1/notice-templates/versioned')
      .set('Authorization', investigator)
      .send(template({ subject: 'Second wording for {{case.reference}}' }));
    expect(v2.status).toBe(200);
    expect(v2.body).toMatchObject({ version: 2, changed: true, createdBy: 'investigator-1', templateCreatedBy: 'admin-1' });
    const again = await sys.http
      .put('/v1/notice-templates/versioned')
      .set('Authorization', investigator)
      .send(template({ subject: 'Second wording for {{case.reference}}' }));
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ version: 2, changed: false });

    const read = await sys.http.get('/v1/notice-templates/versioned').set('Authorization', admin);
    expect(read.body.version).toBe(2);
    expect(read.body.versions.map((v: { version: number; subject: string }) => [v.version, v.subject])).toEqual([
      [2, 'Second wording for {{case.reference}}'],
      [1, 'Notice about case {{case.reference}}'],
    ]);
    const actions = await sys.db
      .select({ action: auditLog.action })
      .from(auditLog)
      .where(and(eq(auditLog.targetId, 'versioned'), eq(auditLog.category, 'notice_templates')))
      .orderBy(auditLog.seq);
    expect(actions.map((a) => a.action)).toEqual([
      'notice_template.create',
      'notice_template.version',
      'notice_template.unchanged',
    ]);
  });

  it('the database refuses to change or delete a template version', async () => {
    await sys.http.put('/v1/notice-templates/frozen').set('Authorization', admin).send(template());
    await expect(
      sys.db.update(noticeTemplateVersions).set({ subject: 'tampered' }).where(eq(noticeTemplateVersions.templateId, 'frozen')),
    ).rejects.toThrow();
    await expect(sys.db.delete(noticeTemplateVersions).where(eq(noticeTemplateVersions.templateId, 'frozen'))).rejects.toThrow();
    const [row] = await sys.db.select().from(noticeTemplateVersions).where(eq(noticeTemplateVersions.templateId, 'frozen'));
    expect(row!.subject).toBe('Notice about case {{case.reference}}');
  });

  it('an unknown placeholder is refused with a 400 that names it and the field, and nothing is saved', async () => {
    const res = await sys.http
      .put('/v1/notice-templates/typo')
      .set('Authorization', admin)
      .send(template({ subject: 'About {{case.ref}}', textBody: 'Hi {{subject.email}} and {{ subject.displayName }}' }));
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('validation_error');
    expect(res.body.error.message).toContain('body.subject');
    expect(res.body.error.message).toContain('{{case.ref}}');
    expect(res.body.error.details).toEqual([
      expect.objectContaining({ field: 'body.subject', unknown: ['case.ref'] }),
      expect.objectContaining({ field: 'body.textBody', unknown: ['subject.email'] }),
    ]);
    const missing = await sys.http.get('/v1/notice-templates/typo').set('Authorization', admin);
    expect(missing.status).toBe(404);
  });

  it('an unclosed placeholder is refused', async () => {
    const res = await sys.http
      .put('/v1/notice-templates/unclosed')
      .set('Authorization', admin)
      .send(template({ htmlBody: '<p>Dear {{subject.displayName</p>' }));
    expect(res.status).toBe(400);
    expect(res.body.error.details[0]).toMatchObject({ field: 'body.htmlBody' });
  });

  it('HTML is sanitized when saved: no scripts, no event handlers, no javascript: links; placeholders survive', async () => {
    const res = await sys.http
      .put('/v1/notice-templates/dirty')
      .set('Authorization', admin)
      .send(
        template({
          htmlBody:
            '<p onclick="steal()" style="color: red">Dear {{subject.displayName}}</p>' +
            '<script>alert(1)</script><img src="https://example.org/logo.png" onerror="x()">' +
            '<a href="javascript:alert(1)">bad</a> <a href="https://example.org/respond?case={{case.reference}}">respond</a>' +
            '<iframe src="https://evil.example"></iframe><style>p{}</style>',
        }),
      );
    expect(res.status).toBe(201);
    expect(res.body.htmlSanitized).toBe(true);
    const html: string = res.body.htmlBody;
    expect(html).not.toMatch(/<script|onclick|onerror|javascript:|<iframe|<style/i);
    expect(html).toContain('<p style="color:red">Dear {{subject.displayName}}</p>');
    expect(html).toContain('<img src="https://example.org/logo.png" />');
    expect(html).toContain('<a href="https://example.org/respond?case={{case.reference}}">respond</a>');
    expect(res.body.placeholders).toEqual(['subject.displayName', 'case.reference', 'policy.name', 'response.deadline']);
    const [stored] = await sys.db.select().from(noticeTemplateVersions).where(eq(noticeTemplateVersions.templateId, 'dirty'));
    expect(stored!.htmlBody).toBe(html);
  });

  it('bad input names the field', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [template({ from: 'not-an-address' }), 'body.from'],
      [template({ cc: ['ok@example.org', 'nope'] }), 'body.cc.1'],
      [template({ subject: 'two\nlines' }), 'body.subject'],
      [template({ language: 'English' }), 'body.language'],
      [template({ extra: true }), 'body'],
      [template({ htmlBody: '<script>only()</script>' }), 'body.htmlBody'],
    ];
    for (const [body, field] of cases) {
      const res = await sys.http.put('/v1/notice-templates/bad-input').set('Authorization', admin).send(body);
      expect(res.status, field).toBe(400);
      expect(res.body.error.message, field).toContain(field);
    }
    const badId = await sys.http.put('/v1/notice-templates/Bad%20Id').set('Authorization', admin).send(template());
    expect(badId.status).toBe(400);
    expect(badId.body.error.message).toContain('path.id');
  });

  it('lists templates with cursor pagination and a language filter', async () => {
    const before = await sys.db.execute<{ n: string }>(sql`select count(*)::text as n from notice_templates`);
    for (const [id, language] of [
      ['list-de', 'de'],
      ['list-fr', 'fr'],
      ['list-de-2', 'de'],
    ]) {
      await sys.http.put(`/v1/notice-templates/${id}`).set('Authorization', admin).send(template({ language }));
    }
    const total = Number(before.rows[0]!.n) + 3;
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: { status: number; body: { items: Array<{ id: string }>; nextCursor: string | null } } = await sys.http
        .get('/v1/notice-templates')
        .query({ limit: 2, ...(cursor ? { cursor } : {}) })
        .set('Authorization', investigator);
      expect(res.status).toBe(200);
      expect(res.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...res.body.items.map((i) => i.id));
      cursor = res.body.nextCursor;
    } while (cursor);
    expect(seen).toHaveLength(total);
    expect(new Set(seen).size).toBe(total);

    const de = await sys.http.get('/v1/notice-templates?language=de').set('Authorization', admin);
    expect(de.body.items.map((i: { id: string }) => i.id)).toEqual(['list-de', 'list-de-2']);
    const bad = await sys.http.get('/v1/notice-templates?cursor=garbage').set('Authorization', admin);
    expect(bad.status).toBe(400);
  });

  it('a send_notice step defaults to a template in the region’s first language that has one', async () => {
    await sys.http
      .put('/v1/notice-templates/default-fr')
      .set('Authorization', admin)
      .send(template({ language: 'fr' }));
    expect(await noticeTemplateForStep(sys.db, undefined, ['ja', 'fr', 'en'])).toBe('default-fr');
    expect(await noticeTemplateForStep(sys.db, 'first-en', ['fr'])).toBe('first-en');
    await expect(noticeTemplateForStep(sys.db, undefined, ['ja'])).rejects.toMatchObject({ type: 'precondition_failed' });
    await expect(noticeTemplateForStep(sys.db, 'missing', ['en'])).rejects.toMatchObject({
      type: 'not_found',
      details: [{ field: 'body.templateId', message: 'no notice template with this id' }],
    });
  });

  it('only administrators and investigators may read or write templates', async () => {
    for (const p of [principals.analyst, principals.auditor, principals.legal, principals.connector]) {
      const authz = await sys.auth(p);
      expect((await sys.http.get('/v1/notice-templates').set('Authorization', authz)).status).toBe(403);
      expect((await sys.http.put('/v1/notice-templates/x').set('Authorization', authz).send(template())).status).toBe(403);
    }
  });
});
