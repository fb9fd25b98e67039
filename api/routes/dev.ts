/**
 * Development-only routes: mounted only on development defaults (never with WARDEN_ENV=production).
 * `GET /v1/dev/outbox` shows what the in-process SMTP sink captured — the notices `npm start` sent.
 */
import { and, eq, inArray } from 'drizzle-orm';
import { z } from 'zod';
import { cases, notices } from '../../db/schema';
import { regionScope } from '../../domain/authz';
import { ErrorType } from '../../domain/errors';
import { HttpError } from '../errors';
import { route } from '../http';
import { PageQuery, pageSchema } from '../pagination';

export const CapturedMessageSchema = z
  .object({
    id: z.string(),
    receivedAt: z.string().datetime(),
    envelope: z.object({ mailFrom: z.string().nullable(), rcptTo: z.array(z.string()) }),
    messageId: z.string().nullable(),
    subject: z.string().nullable(),
    from: z.string().nullable(),
    to: z.string().nullable(),
    cc: z.string().nullable(),
    date: z.string().nullable(),
    headers: z.record(z.string()),
    text: z.string().nullable(),
    html: z.string().nullable(),
    raw: z.string().describe('The MIME source as received'),
  })
  .openapi('CapturedMessage');

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const devRoutes = [
  route({
    method: 'get',
    path: '/v1/dev/outbox',
    tag: 'Development',
    summary: 'Messages captured by the development SMTP sink (newest first)',
    description:
      'Exists only on development defaults. `npm start` without SMTP_URL runs an SMTP server in the process and sends notices ' +
      'to it; nothing leaves the machine. Held in memory (the last 500), gone on restart.',
    permission: 'dev:outbox',
    category: 'system',
    query: PageQuery.strict(),
    responses: { 200: { description: 'Captured messages', schema: pageSchema(CapturedMessageSchema) } },
    async handler({ deps, query, principal }) {
      if (!deps.devMail) {
        throw new HttpError(
          ErrorType.NotFound,
          'The development SMTP sink is not running in this process (SMTP_URL is set, or this process runs no worker)',
        );
      }
      let all = [...deps.devMail.messages].reverse();
      // Outside the caller's regions a notice does not exist: only messages of notices of cases in
      // its regions are listed (every message Warden sends names its notice in X-Warden-Notice).
      const scope = regionScope(principal);
      if (scope !== null) {
        const noticeOf = (m: (typeof all)[number]) => m.headers['x-warden-notice'] ?? '';
        const ids = [...new Set(all.map(noticeOf).filter((id) => UUID.test(id)))];
        const visible = ids.length
          ? await deps.db
              .select({ id: notices.id })
              .from(notices)
              .innerJoin(cases, eq(cases.id, notices.caseId))
              .where(and(inArray(notices.id, ids), inArray(cases.region, scope.length ? scope : [''])))
          : [];
        const shown = new Set(visible.map((r) => r.id));
        all = all.filter((m) => shown.has(noticeOf(m)));
      }
      const start = query.cursor ? all.findIndex((m) => m.id === query.cursor) + 1 : 0;
      if (query.cursor && start === 0) {
        throw new HttpError(ErrorType.Validation, 'Invalid request: query.cursor: not a cursor returned by this list', [
          { field: 'query.cursor', message: 'not a cursor returned by this list' },
        ]);
      }
      const items = all.slice(start, start + query.limit);
      const more = start + query.limit < all.length;
      return { body: { items, nextCursor: more ? items[items.length - 1]!.id : null } };
    },
  }),
];
