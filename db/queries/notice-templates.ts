/**
 * Notice templates and their immutable versions. A save creates the template or appends a version
 * (under a row lock, so concurrent saves get consecutive versions); saving the same content again
 * appends nothing.
 */
import { and, asc, desc, eq, gt, inArray, lte, or } from 'drizzle-orm';
import type { NoticeTemplateInput } from '../../domain/notice-templates';
import type { Placeholder } from '../../domain/notices';
import type { DbOrTx } from '../index';
import { noticeTemplates, noticeTemplateVersions, type NoticeTemplateRow, type NoticeTemplateVersionRow } from '../schema';

export interface NoticeTemplateVersion {
  version: number;
  name: string;
  language: string;
  from: string;
  fromName: string | null;
  cc: string[];
  bcc: string[];
  subject: string;
  htmlBody: string;
  textBody: string;
  responseDays: number;
  placeholders: string[];
  createdBy: string;
  createdAt: string;
}

export interface NoticeTemplate extends NoticeTemplateVersion {
  id: string;
  /** When the template (version 1) was created and by whom the latest version was written. */
  templateCreatedAt: string;
  templateCreatedBy: string;
}

export function toVersion(row: NoticeTemplateVersionRow): NoticeTemplateVersion {
  return {
    version: row.version,
    name: row.name,
    language: row.language,
    from: row.fromAddress,
    fromName: row.fromName,
    cc: row.cc,
    bcc: row.bcc,
    subject: row.subject,
    htmlBody: row.htmlBody,
    textBody: row.textBody,
    responseDays: row.responseDays,
    placeholders: row.placeholders,
    createdBy: row.createdBy,
    createdAt: row.createdAt.toISOString(),
  };
}

function toTemplate(t: NoticeTemplateRow, v: NoticeTemplateVersionRow): NoticeTemplate {
  return { id: t.id, ...toVersion(v), templateCreatedAt: t.createdAt.toISOString(), templateCreatedBy: t.createdBy };
}

/** Content is "the same" when every field the author writes is equal. */
function sameContent(v: NoticeTemplateVersionRow, input: NoticeTemplateInput): boolean {
  return (
    v.name === input.name &&
    v.language === input.language &&
    v.fromAddress === input.from &&
    (v.fromName ?? undefined) === (input.fromName || undefined) &&
    JSON.stringify(v.cc) === JSON.stringify(input.cc) &&
    JSON.stringify(v.bcc) === JSON.stringify(input.bcc) &&
    v.subject === input.subject &&
    v.htmlBody === input.htmlBody &&
    v.textBody === input.textBody &&
    v.responseDays === input.responseDays
  );
}

/**
 * Create the template (version 1) or append a version. `input.htmlBody` must already be
 * sanitized and the placeholders checked. Call inside a transaction (with the audit entry).
 */
export async function saveNoticeTemplate(
  tx: DbOrTx,
  id: string,
  input: NoticeTemplateInput,
  placeholders: Placeholder[],
  actor: string,
): Promise<{ template: NoticeTemplate; created: boolean; changed: boolean }> {
  await tx
    .insert(noticeTemplates)
    // Timestamps from the app clock (millisecond precision), so the list's keyset cursor is exact.
    .values({ id, name: input.name, language: input.language, latestVersion: 0, createdBy: actor, createdAt: new Date() })
    .onConflictDoNothing();
  const [t] = await tx.select().from(noticeTemplates).where(eq(noticeTemplates.id, id)).for('update');
  if (!t) throw new Error(`notice template ${id} vanished while saving`);
  if (t.latestVersion > 0) {
    const [latest] = await tx
      .select()
      .from(noticeTemplateVersions)
      .where(and(eq(noticeTemplateVersions.templateId, id), eq(noticeTemplateVersions.version, t.latestVersion)));
    if (latest && sameContent(latest, input)) return { template: toTemplate(t, latest), created: false, changed: false };
  }
  const version = t.latestVersion + 1;
  const [v] = await tx
    .insert(noticeTemplateVersions)
    .values({
      templateId: id,
      version,
      name: input.name,
      language: input.language,
      fromAddress: input.from,
      fromName: input.fromName || null,
      cc: input.cc,
      bcc: input.bcc,
      subject: input.subject,
      htmlBody: input.htmlBody,
      textBody: input.textBody,
      responseDays: input.responseDays,
      placeholders,
      createdBy: actor,
    })
    .returning();
  const [updated] = await tx
    .update(noticeTemplates)
    .set({ name: input.name, language: input.language, latestVersion: version, updatedAt: v!.createdAt })
    .where(eq(noticeTemplates.id, id))
    .returning();
  return { template: toTemplate(updated!, v!), created: version === 1, changed: true };
}

export async function getNoticeTemplate(db: DbOrTx, id: string): Promise<NoticeTemplate | null> {
  const [row] = await db
    .select({ t: noticeTemplates, v: noticeTemplateVersions })
    .from(noticeTemplates)
    .innerJoin(
      noticeTemplateVersions,
      and(
        eq(noticeTemplateVersions.templateId, noticeTemplates.id),
        eq(noticeTemplateVersions.version, noticeTemplates.latestVersion),
      ),
    )
    .where(eq(noticeTemplates.id, id));
  return row ? toTemplate(row.t, row.v) : null;
}

export async function listNoticeTemplateVersions(db: DbOrTx, id: string): Promise<NoticeTemplateVersion[]> {
  const rows = await db
    .select()
    .from(noticeTemplateVersions)
    .where(eq(noticeTemplateVersions.templateId, id))
    .orderBy(desc(noticeTemplateVersions.version));
  return rows.map(toVersion);
}

/** Templates (latest versions) in creation order, keyset-paged on (created_at, id). */
export async function listNoticeTemplates(
  db: DbOrTx,
  opts: { language?: string; after?: [string, string] | null; limit: number },
): Promise<NoticeTemplate[]> {
  const after = opts.after
    ? or(
        gt(noticeTemplates.createdAt, new Date(opts.after[0])),
        and(eq(noticeTemplates.createdAt, new Date(opts.after[0])), gt(noticeTemplates.id, opts.after[1])),
      )
    : undefined;
  const rows = await db
    .select({ t: noticeTemplates, v: noticeTemplateVersions })
    .from(noticeTemplates)
    .innerJoin(
      noticeTemplateVersions,
      and(
        eq(noticeTemplateVersions.templateId, noticeTemplates.id),
        eq(noticeTemplateVersions.version, noticeTemplates.latestVersion),
      ),
    )
    .where(and(opts.language ? eq(noticeTemplates.language, opts.language) : undefined, after))
    .orderBy(asc(noticeTemplates.createdAt), asc(noticeTemplates.id))
    .limit(opts.limit);
  return rows.map((r) => toTemplate(r.t, r.v));
}

/**
 * The default template for a region: one in the region's first language that has any, the most
 * recently updated among them.
 */
export async function defaultNoticeTemplate(db: DbOrTx, languages: string[]): Promise<NoticeTemplateRow | null> {
  if (languages.length === 0) return null;
  const rows = await db
    .select()
    .from(noticeTemplates)
    .where(and(inArray(noticeTemplates.language, languages), gt(noticeTemplates.latestVersion, 0)))
    .orderBy(desc(noticeTemplates.updatedAt), asc(noticeTemplates.id));
  for (const lang of languages) {
    const hit = rows.find((r) => r.language === lang);
    if (hit) return hit;
  }
  return null;
}

export async function noticeTemplateExists(db: DbOrTx, id: string): Promise<boolean> {
  const [row] = await db
    .select({ id: noticeTemplates.id })
    .from(noticeTemplates)
    .where(and(eq(noticeTemplates.id, id), gt(noticeTemplates.latestVersion, 0)));
  return Boolean(row);
}

/**
 * The version that was current at `at` (when the step was requested, so approvers approved what the
 * notice will say); the first version if the template is younger than that instant.
 */
export async function noticeTemplateVersionAt(db: DbOrTx, id: string, at: Date): Promise<NoticeTemplateVersionRow | null> {
  const [current] = await db
    .select()
    .from(noticeTemplateVersions)
    .where(and(eq(noticeTemplateVersions.templateId, id), lte(noticeTemplateVersions.createdAt, at)))
    .orderBy(desc(noticeTemplateVersions.version))
    .limit(1);
  if (current) return current;
  const [first] = await db
    .select()
    .from(noticeTemplateVersions)
    .where(eq(noticeTemplateVersions.templateId, id))
    .orderBy(asc(noticeTemplateVersions.version))
    .limit(1);
  return first ?? null;
}

export async function getNoticeTemplateVersion(
  db: DbOrTx,
  id: string,
  version: number,
): Promise<NoticeTemplateVersionRow | null> {
  const [row] = await db
    .select()
    .from(noticeTemplateVersions)
    .where(and(eq(noticeTemplateVersions.templateId, id), eq(noticeTemplateVersions.version, version)));
  return row ?? null;
}
