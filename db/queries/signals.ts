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

export interface BatchRecord {
  id: string;
  receivedBy: string;
  /** Valid events with their repeats inside the batch (accepted + duplicates). */
  valid: number;
  rejected: number;
  subjects: number;
  scoringWorkflowId: string | null;
}

/**
 * Insert the batch's signals and its record in one statement; returns how many events were new.
 * Rows go in key order, so concurrent batches sharing events cannot deadlock. The record keeps the
 * ids of every row's subject (duplicates' too): the batch's scoring reads them from there, so they
 * never travel through the workflow's payloads.
 */
export async function storeBatch(tx: DbOrTx, batch: BatchRecord, rows: SignalInsert[]): Promise<number> {
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
  const res = await tx.execute<{ accepted: number }>(sql`
    with r as materialized (
      select * from json_to_recordset(${json}::json)
        as r(so text, x text, su uuid, ty text, sv text, o timestamptz, c int, a jsonb, se text)
    ), ins as (
      insert into signals (source, external_id, subject_id, type, severity, occurred_at, count, attributes, sealed, batch_id)
      select so::signal_source, x, su, ty, sv::severity, o, c, a, se, ${batch.id}::uuid
      from r
      order by so, x
      on conflict (source, external_id) do nothing
      returning 1
    ), b as (
      insert into signal_batches (id, received_by, accepted, duplicates, rejected, subjects, subject_ids, scoring_workflow_id)
      select ${batch.id}::uuid, ${batch.receivedBy}, count(*), ${batch.valid}::int - count(*), ${batch.rejected}::int,
             ${batch.subjects}::int, (select array_agg(distinct su order by su) from r), ${batch.scoringWorkflowId}
      from ins
      returning accepted
    )
    select accepted from b`);
  return res.rows[0]!.accepted;
}

/** Kinds of connector data this process knows are recorded, per database (the table only grows). */
const knownKinds = new WeakMap<object, Set<string>>();

/** Note which kinds of connector data have arrived (first time only; no row is rewritten). */
export async function noteConnectorData(db: DbOrTx, kinds: Array<{ source: string; type: string }>): Promise<void> {
  const known = knownKinds.get(db) ?? new Set<string>();
  knownKinds.set(db, known);
  const fresh = kinds
    .filter((k) => !known.has(`${k.source}/${k.type}`))
    .sort((a, b) => (a.source + a.type < b.source + b.type ? -1 : 1));
  if (!fresh.length) return;
  await db.execute(sql`
    insert into connector_data (source, type)
    select source::signal_source, type from json_to_recordset(${JSON.stringify(fresh)}::json) as r(source text, type text)
    on conflict do nothing`);
  for (const k of fresh) known.add(`${k.source}/${k.type}`);
}

export async function getBatch(db: DbOrTx, id: string) {
  const [row] = await db.select().from(signalBatches).where(eq(signalBatches.id, id));
  return row ?? null;
}
