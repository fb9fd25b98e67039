/**
 * The alert queue: filtered keyset lists, detail, and the analyst's triage writes (dismiss,
 * assign). Confirmation into a case belongs to the case side.
 */
import { and, desc, eq, gte, inArray, isNotNull, isNull, lt, sql, type SQL } from 'drizzle-orm';
import { cursorTime } from '../cursor';
import type { DbOrTx } from '../index';
import { alerts, policies, subjects } from '../schema';

export interface AlertFilter {
  regions: string[] | null;
  status?: (typeof alerts.status.enumValues)[number];
  severity?: (typeof alerts.severity.enumValues)[number];
  policyId?: string;
  region?: string;
  subjectId?: string;
  assignee?: string;
  unassigned?: boolean;
  createdFrom?: string;
  createdTo?: string;
  /** Keyset of the last item of the previous page: (created_at text, id), newest first. */
  before?: [string, string] | null;
  limit: number;
}

const columns = {
  alert: alerts,
  pseudonym: subjects.pseudonym,
  policyName: policies.name,
  template: policies.template,
  cursorAt: cursorTime(alerts.createdAt),
};

export async function listAlerts(db: DbOrTx, f: AlertFilter) {
  const conds: Array<SQL | undefined> = [
    f.regions === null ? undefined : inArray(alerts.region, f.regions.length ? f.regions : ['']),
    f.status ? eq(alerts.status, f.status) : undefined,
    f.severity ? eq(alerts.severity, f.severity) : undefined,
    f.policyId ? eq(alerts.policyId, f.policyId) : undefined,
    f.region ? eq(alerts.region, f.region) : undefined,
    f.subjectId ? eq(alerts.subjectId, f.subjectId) : undefined,
    f.assignee ? eq(alerts.assignee, f.assignee) : undefined,
    f.unassigned === true ? isNull(alerts.assignee) : f.unassigned === false ? isNotNull(alerts.assignee) : undefined,
    f.createdFrom ? gte(alerts.createdAt, new Date(f.createdFrom)) : undefined,
    f.createdTo ? lt(alerts.createdAt, new Date(f.createdTo)) : undefined,
    f.before ? sql`(${alerts.createdAt}, ${alerts.id}) < (${f.before[0]}::timestamptz, ${f.before[1]}::uuid)` : undefined,
  ];
  return db
    .select(columns)
    .from(alerts)
    .innerJoin(subjects, eq(subjects.id, alerts.subjectId))
    .leftJoin(policies, eq(policies.id, alerts.policyId))
    .where(and(...conds))
    .orderBy(desc(alerts.createdAt), desc(alerts.id))
    .limit(f.limit + 1);
}

export async function getAlert(db: DbOrTx, id: string) {
  const [row] = await db
    .select(columns)
    .from(alerts)
    .innerJoin(subjects, eq(subjects.id, alerts.subjectId))
    .leftJoin(policies, eq(policies.id, alerts.policyId))
    .where(eq(alerts.id, id));
  return row ?? null;
}

export type AlertListRow = NonNullable<Awaited<ReturnType<typeof getAlert>>>;

/** Dismiss the given alerts that still need review; returns those dismissed. */
export async function dismissAlerts(
  tx: DbOrTx,
  ids: string[],
  d: { reason: string; comment: string; by: string; regions: string[] | null },
): Promise<Array<{ id: string; region: string }>> {
  if (!ids.length) return [];
  return tx
    .update(alerts)
    .set({
      status: 'dismissed',
      dismissReason: d.reason,
      dismissComment: d.comment,
      dismissedBy: d.by,
      dismissedAt: new Date(),
      updatedAt: new Date(),
    })
    .where(
      and(
        inArray(alerts.id, ids),
        eq(alerts.status, 'needs_review'),
        d.regions === null ? undefined : inArray(alerts.region, d.regions.length ? d.regions : ['']),
      ),
    )
    .returning({ id: alerts.id, region: alerts.region });
}

/** Current status and region of some alerts (to explain what could not be dismissed). */
export async function alertStatuses(db: DbOrTx, ids: string[]) {
  if (!ids.length) return [];
  return db.select({ id: alerts.id, status: alerts.status, region: alerts.region }).from(alerts).where(inArray(alerts.id, ids));
}

export async function assignAlert(tx: DbOrTx, id: string, assignee: string | null): Promise<boolean> {
  const res = await tx
    .update(alerts)
    .set({ assignee, updatedAt: new Date() })
    .where(and(eq(alerts.id, id), inArray(alerts.status, ['needs_review', 'confirmed'])))
    .returning({ id: alerts.id });
  return res.length > 0;
}
