/**
 * The one writer of the audit log, and chain verification.
 *
 * Each entry's hash covers its canonical encoding (RFC 8785 JSON) and the previous entry's hash.
 * Appends take a transaction-scoped advisory lock, so concurrent writers still produce a single
 * unbroken chain, and the entry commits or rolls back together with the change it records.
 */
import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import { asc, desc, gt, sql } from 'drizzle-orm';
import type { Db, DbOrTx } from './index';
import { auditLog, type AuditRow } from './schema';

export const GENESIS_HASH = '0'.repeat(64);
/** Arbitrary constant naming the advisory lock that serializes appends to the chain. */
const AUDIT_CHAIN_LOCK = 7_211_001;

export type AuditCategory =
  | 'regions'
  | 'settings'
  | 'policies'
  | 'subjects'
  | 'signals'
  | 'alerts'
  | 'cases'
  | 'approvals'
  | 'identity'
  | 'notice_templates'
  | 'notices'
  | 'audit'
  | 'system';

export interface AuditEntry {
  actor: string;
  actorRoles?: string[];
  action: string;
  category: AuditCategory;
  targetType?: string | null;
  targetId?: string | null;
  region?: string | null;
  outcome: 'allowed' | 'denied';
  reason?: string | null;
  requestId?: string | null;
  /** Ids and statuses only: never a name, an email or free text about a person. */
  details?: Record<string, unknown> | null;
  at?: Date;
}

type HashedFields = Omit<AuditRow, 'hash'>;

/** Canonical encoding of an entry (everything but its own hash). */
export function encodeAuditEntry(row: HashedFields): string {
  return canonicalize([
    row.seq,
    row.at.toISOString(),
    row.actor,
    row.actorRoles,
    row.action,
    row.category,
    row.targetType,
    row.targetId,
    row.region,
    row.outcome,
    row.reason,
    row.requestId,
    row.details ?? null,
    row.prevHash,
  ])!;
}

export function hashAuditEntry(row: HashedFields): string {
  return createHash('sha256').update(encodeAuditEntry(row)).digest('hex');
}

/**
 * Append one entry. Call it inside the transaction of the change it records; with a plain `Db` it
 * opens its own transaction.
 */
export async function appendAudit(dbOrTx: DbOrTx, entry: AuditEntry): Promise<AuditRow> {
  const run = async (tx: DbOrTx): Promise<AuditRow> => {
    await tx.execute(sql`select pg_advisory_xact_lock(${AUDIT_CHAIN_LOCK})`);
    const [last] = await tx.select({ hash: auditLog.hash }).from(auditLog).orderBy(desc(auditLog.seq)).limit(1);
    const seqResult = await tx.execute<{ seq: string }>(sql`select nextval('audit_log_seq_seq')::text as seq`);
    const fields: HashedFields = {
      seq: Number(seqResult.rows[0]!.seq),
      at: entry.at ?? new Date(),
      actor: entry.actor,
      actorRoles: entry.actorRoles ?? [],
      action: entry.action,
      category: entry.category,
      targetType: entry.targetType ?? null,
      targetId: entry.targetId ?? null,
      region: entry.region ?? null,
      outcome: entry.outcome,
      reason: entry.reason ?? null,
      requestId: entry.requestId ?? null,
      details: entry.details ?? null,
      prevHash: last?.hash ?? GENESIS_HASH,
    };
    const row: AuditRow = { ...fields, hash: hashAuditEntry(fields) };
    await tx.insert(auditLog).values(row);
    return row;
  };
  return isTx(dbOrTx) ? run(dbOrTx) : (dbOrTx as Db).transaction(run);
}

function isTx(d: DbOrTx): boolean {
  // drizzle transactions expose `rollback`; the root database does not.
  return typeof (d as { rollback?: unknown }).rollback === 'function';
}

export interface ChainVerification {
  ok: boolean;
  checked: number;
  lastSeq: number | null;
  lastHash: string;
  /** The first entry whose link or content does not match, if any. */
  firstBroken?: { seq: number; reason: 'hash_mismatch' | 'prev_hash_mismatch' };
}

/** Recompute the whole chain in pages, in order, and report the first broken link. */
export async function verifyAuditChain(db: Db, pageSize = 5000): Promise<ChainVerification> {
  let prevHash = GENESIS_HASH;
  let checked = 0;
  let lastSeq: number | null = null;
  for (;;) {
    const page: AuditRow[] = await db
      .select()
      .from(auditLog)
      .where(lastSeq === null ? undefined : gt(auditLog.seq, lastSeq))
      .orderBy(asc(auditLog.seq))
      .limit(pageSize);
    for (const row of page) {
      if (row.prevHash !== prevHash) {
        return { ok: false, checked, lastSeq, lastHash: prevHash, firstBroken: { seq: row.seq, reason: 'prev_hash_mismatch' } };
      }
      const { hash, ...fields } = row;
      if (hashAuditEntry(fields) !== hash) {
        return { ok: false, checked, lastSeq, lastHash: prevHash, firstBroken: { seq: row.seq, reason: 'hash_mismatch' } };
      }
      prevHash = hash;
      lastSeq = row.seq;
      checked++;
    }
    if (page.length < pageSize) break;
  }
  return { ok: true, checked, lastSeq, lastHash: prevHash };
}
