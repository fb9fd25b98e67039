import { z } from 'zod';
import { appendAudit } from '../../db/audit';
import {
  getNoticeTemplate,
  listNoticeTemplates,
  listNoticeTemplateVersions,
  saveNoticeTemplate,
} from '../../db/queries/notice-templates';
import { ErrorType } from '../../domain/errors';
import { checkTemplatePlaceholders, LanguageTag, NoticeTemplateId, NoticeTemplateInput } from '../../domain/notice-templates';
import { PLACEHOLDERS } from '../../domain/notices';
import { sanitizeNoticeHtml } from '../../infra/html-sanitizer';
import { HttpError, notFound } from '../errors';
import { route } from '../http';
import { decodeCursor, page, PageQuery, pageSchema } from '../pagination';

export const NoticeTemplateVersionSchema = z
  .object({
    version: z.number().int(),
    name: z.string(),
    language: z.string(),
    from: z.string(),
    fromName: z.string().nullable(),
    cc: z.array(z.string()),
    bcc: z.array(z.string()),
    subject: z.string(),
    htmlBody: z.string(),
    textBody: z.string(),
    responseDays: z.number().int(),
    placeholders: z.array(z.string()),
    createdBy: z.string(),
    createdAt: z.string().datetime(),
  })
  .openapi('NoticeTemplateVersion');

export const NoticeTemplateSchema = NoticeTemplateVersionSchema.extend({
  id: z.string(),
  templateCreatedAt: z.string().datetime(),
  templateCreatedBy: z.string(),
}).openapi('NoticeTemplate');

export const SavedNoticeTemplateSchema = NoticeTemplateSchema.extend({
  htmlSanitized: z.boolean().describe('Sanitizing removed or rewrote part of the HTML body you sent'),
  changed: z.boolean().describe('False when the content equals the latest version (no new version)'),
}).openapi('SavedNoticeTemplate');

const Params = z.object({ id: NoticeTemplateId });
const ListQuery = PageQuery.extend({ language: LanguageTag.optional() }).strict();
const Cursor = z.tuple([z.string().datetime(), z.string()]);

export const noticeTemplateRoutes = [
  route({
    method: 'get',
    path: '/v1/notice-templates',
    tag: 'Notice templates',
    summary: 'List notice templates (latest version of each)',
    description: `Placeholders a template may use: ${Object.entries(PLACEHOLDERS)
      .map(([k, v]) => `{{${k}}} — ${v}`)
      .join('; ')}.`,
    permission: 'notice_templates:read',
    category: 'notice_templates',
    query: ListQuery,
    responses: { 200: { description: 'A page of templates', schema: pageSchema(NoticeTemplateSchema) } },
    async handler({ deps, query }) {
      const after = decodeCursor(query.cursor, Cursor);
      const rows = await listNoticeTemplates(deps.db, { language: query.language, after, limit: query.limit + 1 });
      return { body: page(rows, query.limit, (t) => [t.templateCreatedAt, t.id]) };
    },
  }),
  route({
    method: 'get',
    path: '/v1/notice-templates/{id}',
    tag: 'Notice templates',
    summary: 'Read a notice template with all its versions (newest first)',
    permission: 'notice_templates:read',
    category: 'notice_templates',
    params: Params,
    responses: {
      200: {
        description: 'The template (latest version) and its versions',
        schema: NoticeTemplateSchema.extend({ versions: z.array(NoticeTemplateVersionSchema) }),
      },
    },
    async handler({ deps, params }) {
      const template = await getNoticeTemplate(deps.db, params.id);
      if (!template) throw notFound('Notice template');
      return { body: { ...template, versions: await listNoticeTemplateVersions(deps.db, params.id) } };
    },
  }),
  route({
    method: 'put',
    path: '/v1/notice-templates/{id}',
    tag: 'Notice templates',
    summary: 'Create a notice template, or save a new version of it',
    description:
      'Versions are immutable: a notice records the version it used. The HTML body is sanitized (no scripts, no event handlers, ' +
      'http(s)/mailto links only); an unknown placeholder is refused with a 400 naming it. Saving unchanged content adds no version.',
    permission: 'notice_templates:write',
    category: 'notice_templates',
    params: Params,
    body: NoticeTemplateInput,
    responses: {
      200: { description: 'A new version (or unchanged)', schema: SavedNoticeTemplateSchema },
      201: { description: 'Created (version 1)', schema: SavedNoticeTemplateSchema },
    },
    async handler({ deps, params, body, actor, principal }) {
      const sanitized = sanitizeNoticeHtml(body.htmlBody);
      const input: NoticeTemplateInput = { ...body, htmlBody: sanitized.html };
      if (!input.htmlBody.trim()) {
        throw new HttpError(ErrorType.Validation, 'Invalid request: body.htmlBody: nothing is left after sanitizing', [
          { field: 'body.htmlBody', message: 'nothing is left after sanitizing' },
        ]);
      }
      const { used, problems } = checkTemplatePlaceholders(input);
      if (problems.length) {
        const details = problems.map((p) => ({ field: `body.${p.field}`, message: p.message, unknown: p.unknown }));
        throw new HttpError(ErrorType.Validation, `Invalid request: ${details[0]!.field}: ${details[0]!.message}`, details);
      }
      const saved = await deps.db.transaction(async (tx) => {
        const result = await saveNoticeTemplate(tx, params.id, input, used, principal.sub);
        await appendAudit(tx, {
          ...actor,
          action: result.created
            ? 'notice_template.create'
            : result.changed
              ? 'notice_template.version'
              : 'notice_template.unchanged',
          category: 'notice_templates',
          targetType: 'notice_template',
          targetId: params.id,
          outcome: 'allowed',
          details: { version: result.template.version, htmlSanitized: sanitized.changed, placeholders: used },
        });
        return result;
      });
      return {
        status: saved.created ? 201 : 200,
        headers: { Location: `/v1/notice-templates/${params.id}` },
        body: { ...saved.template, htmlSanitized: sanitized.changed, changed: saved.changed },
      };
    },
  }),
];
