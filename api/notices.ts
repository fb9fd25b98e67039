/**
 * What the case routes need from notices: the notice shape of a case's detail, and the template a
 * send_notice step uses (the one asked for, or the default in the region's language).
 */
import { extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import type { Db } from '../db';
import { defaultNoticeTemplate, noticeTemplateExists } from '../db/queries/notice-templates';
import { listCaseNotices } from '../db/queries/notices';
import { ErrorType } from '../domain/errors';
import { NOTICE_STATUSES, OUTBOX_STATUSES } from '../domain/notices';
import { HttpError } from './errors';

// This module may load before api/http.ts (which does the same): `.openapi()` must exist here.
extendZodWithOpenApi(z);

export const CaseNotice = z
  .object({
    noticeId: z.string().uuid(),
    stepId: z.string().uuid(),
    status: z.enum(NOTICE_STATUSES).describe('queued, sent, or failed (see failureReason)'),
    templateId: z.string(),
    templateVersion: z.number().int(),
    language: z.string(),
    messageId: z.string(),
    responseDeadline: z.string().datetime(),
    failureReason: z.string().nullable().describe('The SMTP server’s reply (addresses removed) or why delivery gave up'),
    queuedAt: z.string().datetime(),
    sentAt: z.string().datetime().nullable(),
    failedAt: z.string().datetime().nullable(),
    delivery: z.object({
      state: z.enum(OUTBOX_STATUSES),
      transmissions: z.number().int().describe('SMTP transactions started (more than one after a deferral)'),
      lastError: z.string().nullable().describe('The last temporary failure while still retrying'),
      acceptedAt: z.string().datetime().nullable(),
    }),
  })
  .openapi('CaseNotice');
export type CaseNotice = z.infer<typeof CaseNotice>;

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export async function caseNotices(db: Db, caseId: string): Promise<CaseNotice[]> {
  const rows = await listCaseNotices(db, caseId);
  return rows.map(({ notice: n, outbox: o }) => ({
    noticeId: n.id,
    stepId: n.stepId,
    status: n.status,
    templateId: n.templateId,
    templateVersion: n.templateVersion,
    language: n.language,
    messageId: n.messageId,
    responseDeadline: n.responseDeadline.toISOString(),
    failureReason: n.failureReason,
    queuedAt: n.queuedAt.toISOString(),
    sentAt: iso(n.sentAt),
    failedAt: iso(n.failedAt),
    delivery: {
      state: o?.status ?? 'pending',
      transmissions: o?.transmissions ?? 0,
      lastError: o?.status === 'deferred' ? o.lastError : null,
      acceptedAt: iso(o?.acceptedAt ?? null),
    },
  }));
}

/**
 * The template of a send_notice step: `templateId` if it exists, else the default template in the
 * region's languages. 404 naming `templateId` for an unknown one; 422 when the region has none.
 */
export async function noticeTemplateForStep(db: Db, templateId: string | undefined, languages: string[]): Promise<string> {
  if (templateId) {
    if (await noticeTemplateExists(db, templateId)) return templateId;
    throw new HttpError(ErrorType.NotFound, `Notice template ${templateId} not found`, [
      { field: 'body.templateId', message: 'no notice template with this id' },
    ]);
  }
  const fallback = await defaultNoticeTemplate(db, languages);
  if (!fallback) {
    throw new HttpError(
      ErrorType.PreconditionFailed,
      `No notice template in the region’s languages (${languages.join(', ')}); create one or pass templateId`,
      { reason: 'no_notice_template' },
    );
  }
  return fallback.id;
}
