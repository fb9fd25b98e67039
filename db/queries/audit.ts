/**
 * Reading the audit log: filtered, keyset-paginated queries (by seq) and the filter SQL shared by
 * the list, the export and the benchmark. The writer and verification live in `db/audit.ts`.
 */
import { and, asc, eq, like, or, sql, type SQL } from 'drizzle-orm';
import { queryAuditRows, type ScannedRow } from '../audit';
import type { Db, DbOrTx } from '../index';
import { auditLog } from '../schema';

export interface AuditFilter {
  actor?: string;
  /** Exact action, or a prefix ending in `*` (e.g. `case.*`). */
  action?: string;
  category?: string[];
  /** Entries whose target is the case, or whose details name it (`details.caseId`). */
  caseId?: string;
  targetType?: string;
  targetId?: string;
  region?: string;
  outcome?: 'allowed' | 'denied';
  /** ISO times (with an offset; to the microsecond), or instants. */
  from?: Date | string;
  to?: Date | string;
  /**
   * The caller's regions (`null`: every region). Entries of other regions are invisible; entries
   * without a region (tenant settings, denied attempts on unscoped routes) are visible to all.
   */
  scope: string[] | null;
}

/** The WHERE clause of a filter (drizzle SQL, usable by the raw scanner too). */
export function auditWhere(f: AuditFilter): SQL {
  const c: SQL[] = [sql`true`];
  if (f.actor) c.push(eq(auditLog.actor, f.actor));
  if (f.action) {
    c.push(
      f.action.endsWith('*') ? like(auditLog.action, `${escapeLike(f.action.slice(0, -1))}%`) : eq(auditLog.action, f.action),
    );
  }
  if (f.category?.length) c.push(sql`${auditLog.category} = any(${sql.param(f.category)}::text[])`);
  if (f.caseId) {
    const caseId = f.caseId.toLowerCase(); // UUIDs are stored as Postgres writes them: lower case
    c.push(
      or(and(eq(auditLog.targetType, 'case'), eq(auditLog.targetId, caseId)), sql`(${auditLog.details}->>'caseId') = ${caseId}`)!,
    );
  }
  if (f.targetType) c.push(eq(auditLog.targetType, f.targetType));
  if (f.targetId) c.push(eq(auditLog.targetId, f.targetId));
  if (f.region) c.push(eq(auditLog.region, f.region));
  if (f.outcome) c.push(eq(auditLog.outcome, f.outcome));
  const instant = (t: Date | string) => (typeof t === 'string' ? t : t.toISOString());
  if (f.from) c.push(sql`${auditLog.at} >= ${instant(f.from)}::timestamptz`);
  if (f.to) c.push(sql`${auditLog.at} < ${instant(f.to)}::timestamptz`);
  if (f.scope !== null) {
    c.push(
      or(sql`${auditLog.region} is null`, sql`${auditLog.region} = any(${sql.param(f.scope.length ? f.scope : [''])}::text[])`)!,
    );
  }
  return and(...c)!;
}

function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, (m) => `\\${m}`);
}

/** One page of entries (`limit + 1` rows), newest first by default; `afterSeq` is the previous page's keyset. */
export async function listAudit(
  db: Db,
  f: AuditFilter,
  page: { limit: number; afterSeq: number | null; order: 'asc' | 'desc' },
): Promise<ScannedRow[]> {
  return queryAuditRows(db, { where: auditWhere(f), afterSeq: page.afterSeq, limit: page.limit + 1, order: page.order });
}

/** The oldest entry's time: what the retention floor protects. */
export async function oldestAuditEntryAt(db: DbOrTx): Promise<Date | null> {
  const [row] = await db.select({ at: auditLog.at }).from(auditLog).orderBy(asc(auditLog.seq)).limit(1);
  return row?.at ?? null;
}
