/**
 * Development-only routes: mounted only on development defaults (never with WARDEN_ENV=production).
 * `GET /v1/dev/outbox` shows what the in-process SMTP sink captured — the notices `npm start` sent.
 */
import { z } from 'zod';
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
    handler({ deps, query }) {
      if (!deps.devMail) {
        throw new HttpError(
          ErrorType.NotFound,
          'The development SMTP sink is not running in this process (SMTP_URL is set, or this process runs no worker)',
        );
      }
      const all = [...deps.devMail.messages].reverse();
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
