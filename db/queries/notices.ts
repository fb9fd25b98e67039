/** Notices of a case with their delivery state (read model; nothing personal in it). */
import { asc, eq } from 'drizzle-orm';
import type { DbOrTx } from '../index';
import { noticeOutbox, notices } from '../schema';

export async function listCaseNotices(db: DbOrTx, caseId: string) {
  return db
    .select({ notice: notices, outbox: noticeOutbox })
    .from(notices)
    .leftJoin(noticeOutbox, eq(noticeOutbox.noticeId, notices.id))
    .where(eq(notices.caseId, caseId))
    .orderBy(asc(notices.queuedAt), asc(notices.id));
}
