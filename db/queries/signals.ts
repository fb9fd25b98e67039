/**
 * Signal ingest: one multi-row insert per batch keyed by `(source, external_id)` — a replayed
 * event is a duplicate (not returned by the insert), never a second row.
 */
import { eq, sql } from 'drizzle-orm';
import type { Severity, SignalSource, SignalType } from '../../domain/signals';
import type { DbOrTx } from '../index';
import { signalBatches } from '../schema';

export interface SignalInsert {
  source: SignalSource;
  externalId: string;
  subjectId: string;
  type: SignalType;
  severity: Severity | null;
  occurredAt: string;
  count: number;
  attributes: Record<string, unknown>;
  sealed: string | null;
}

/**
 * Insert the batch's signals; returns the idempotency keys (`source/externalId`) actually
 * inserted. Rows go in key order, so concurrent batches sharing events cannot deadlock.
 */
export async function insertSignals(tx: DbOrTx, batchId: string, rows: SignalInsert[]): Promise<Set<string>> {
  if (!rows.length) return new Set();
  const json = JSON.stringify(
    rows.map((r) => ({
      so: r.source,
      x: r.externalId,
      su: r.subjectId,
      ty: r.type,
      sv: r.severity,
      o: r.occurredAt,
      c: r.count,
      a: r.attributes,
      se: r.sealed,
    })),
  );
  const res = await tx.execute<{ source: string; external_id: string }>(sql`
    insert into signals (source, external_id, subject_id, type, severity, occurred_at, count, attributes, sealed, batch_id)
    select so::signal_source, x, su, ty, sv::severity, o, c, a, se, ${batchId}::uuid
    from json_to_recordset(${json}::json) as r(so text, x text, su uuid, ty text, sv text, o timestamptz, c int, a jsonb, se text)
    order by so, x
    on conflict (source, external_id) do nothing
    returning source, external_id`);
  return new Set(res.rows.map((r) => `${r.source}/${r.external_id}`));
}

/** Note which kinds of connector data have arrived (first time only; no row is rewritten). */
export async function noteConnectorData(tx: DbOrTx, kinds: Array<{ source: string; type: string }>): Promise<void> {
  if (!kinds.length) return;
  const sorted = [...kinds].sort((a, b) => (a.source + a.type < b.source + b.type ? -1 : 1));
  await tx.execute(sql`
    insert into connector_data (source, type)
    select source::signal_source, type from json_to_recordset(${JSON.stringify(sorted)}::json) as r(source text, type text)
    on conflict do nothing`);
}

export async function recordBatch(
  tx: DbOrTx,
  b: {
    id: string;
    receivedBy: string;
    accepted: number;
    duplicates: number;
    rejected: number;
    subjects: number;
    scoringWorkflowId: string | null;
  },
): Promise<void> {
  await tx.insert(signalBatches).values(b);
}

export async function getBatch(db: DbOrTx, id: string) {
  const [row] = await db.select().from(signalBatches).where(eq(signalBatches.id, id));
  return row ?? null;
}
