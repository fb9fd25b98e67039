/**
 * Reads and writes of the scoring activity. Everything here is keyed so that running the same
 * scoring twice writes nothing the second time.
 */
import { and, eq, inArray, sql } from 'drizzle-orm';
import type { ScoringPolicy } from '../../domain/policies';
import type { RiskFactor, ScoringSignal } from '../../domain/scoring';
import type { Severity, SignalType } from '../../domain/signals';
import type { DbOrTx } from '../index';
import { policies, subjects, subjectViolations, type PolicyRow } from '../schema';

/** A timestamp column as epoch milliseconds. */
const MS = (column: string) => sql.raw(`floor(extract(epoch from ${column}) * 1000)::float8`);

export function toScoringPolicy(row: PolicyRow): ScoringPolicy {
  return {
    id: row.id,
    version: row.version,
    template: row.template,
    scope: row.scope,
    priorityGroups: row.priorityGroups,
    indicators: row.indicators,
    thresholds: row.thresholds,
    boosters: row.boosters,
    activationWindowDays: row.activationWindowDays,
    dailyAlertCap: row.dailyAlertCap,
  };
}

export async function loadActivePolicies(db: DbOrTx, only?: string[]): Promise<ScoringPolicy[]> {
  const rows = await db
    .select()
    .from(policies)
    .where(
      and(
        eq(policies.status, 'active'),
        only ? inArray(policies.id, only.length ? only : ['00000000-0000-0000-0000-000000000000']) : undefined,
      ),
    );
  return rows.map(toScoringPolicy).sort((a, b) => (a.id < b.id ? -1 : 1));
}

export async function loadScopeSubjects(db: DbOrTx, ids: string[]) {
  if (!ids.length) return [];
  return db
    .select({ id: subjects.id, region: subjects.region, groups: subjects.groups })
    .from(subjects)
    .where(inArray(subjects.id, ids));
}

interface SignalDbRow extends Record<string, unknown> {
  id: string;
  subject_id: string;
  type: string;
  severity: Severity | null;
  /** Epoch milliseconds (raw `execute` results bypass drizzle's date mapping). */
  occurred_ms: number;
  count: number;
  attributes?: Record<string, unknown>;
}

const toSignal = (r: SignalDbRow): ScoringSignal => ({
  id: r.id,
  type: r.type as SignalType,
  severity: r.severity,
  occurredAt: Number(r.occurred_ms),
  count: r.count,
  attributes: r.attributes ?? {},
});

/** The signals of these subjects whose type may trigger a policy. */
export async function loadTriggerCandidates(
  db: DbOrTx,
  subjectIds: string[],
  types: string[],
): Promise<Map<string, ScoringSignal[]>> {
  const out = new Map<string, ScoringSignal[]>();
  if (!subjectIds.length || !types.length) return out;
  const res = await db.execute<SignalDbRow>(sql`
    select id::text as id, subject_id, type, severity, ${MS('occurred_at')} as occurred_ms, count, attributes
    from signals
    where subject_id = any(${sql.param(subjectIds)}::uuid[]) and type = any(${sql.param(types)}::text[])`);
  for (const r of res.rows) {
    const list = out.get(r.subject_id) ?? [];
    list.push(toSignal(r));
    out.set(r.subject_id, list);
  }
  return out;
}

/** Every signal of each subject within its time range (inclusive). */
export async function loadSignalsInRanges(
  db: DbOrTx,
  ranges: Array<{ subjectId: string; from: number; to: number }>,
): Promise<Map<string, ScoringSignal[]>> {
  const out = new Map<string, ScoringSignal[]>();
  if (!ranges.length) return out;
  const json = JSON.stringify(
    ranges.map((r) => ({ s: r.subjectId, f: new Date(r.from).toISOString(), t: new Date(r.to).toISOString() })),
  );
  const res = await db.execute<SignalDbRow>(sql`
    select x.id::text as id, x.subject_id, x.type, x.severity, ${MS('x.occurred_at')} as occurred_ms, x.count
    from json_to_recordset(${json}::json) as r(s uuid, f timestamptz, t timestamptz)
    join signals x on x.subject_id = r.s and x.occurred_at >= r.f and x.occurred_at <= r.t`);
  for (const r of res.rows) {
    const list = out.get(r.subject_id) ?? [];
    list.push(toSignal(r));
    out.set(r.subject_id, list);
  }
  return out;
}

/** How many signals each subject has (in the caller's snapshot). */
export async function loadSignalCounts(db: DbOrTx, subjectIds: string[]): Promise<Map<string, number>> {
  if (!subjectIds.length) return new Map();
  const res = await db.execute<{ subject_id: string; n: number }>(sql`
    select subject_id, count(*)::int as n from signals where subject_id = any(${sql.param(subjectIds)}::uuid[]) group by subject_id`);
  return new Map(res.rows.map((r) => [r.subject_id, r.n]));
}

export async function loadViolations(db: DbOrTx, subjectIds: string[]): Promise<Set<string>> {
  if (!subjectIds.length) return new Set();
  const rows = await db
    .selectDistinct({ subjectId: subjectViolations.subjectId })
    .from(subjectViolations)
    .where(inArray(subjectViolations.subjectId, subjectIds));
  return new Set(rows.map((r) => r.subjectId));
}

export interface StoredScore {
  subjectId: string;
  policyId: string;
  policyVersion: number;
  triggerSignalId: string;
  triggeredAt: Date;
  windowEnd: Date;
  score: number;
  rawScore: number;
  severity: Severity;
  riskFactors: RiskFactor[];
  alertId: string | null;
  suppressedByCap: boolean;
  signalsSeen: number;
}

export async function loadScores(db: DbOrTx, subjectIds: string[]): Promise<Map<string, StoredScore>> {
  if (!subjectIds.length) return new Map();
  const res = await db.execute<Record<string, unknown>>(sql`
    select subject_id, policy_id, policy_version, trigger_signal_id::text as trigger_signal_id,
           ${MS('triggered_at')} as triggered_ms, ${MS('window_end')} as window_end_ms,
           score, raw_score, severity, risk_factors, alert_id, suppressed_by_cap, signals_seen
    from subject_policy_scores where subject_id = any(${sql.param(subjectIds)}::uuid[])`);
  const out = new Map<string, StoredScore>();
  for (const r of res.rows) {
    const s: StoredScore = {
      subjectId: r.subject_id as string,
      policyId: r.policy_id as string,
      policyVersion: r.policy_version as number,
      triggerSignalId: r.trigger_signal_id as string,
      triggeredAt: new Date(Number(r.triggered_ms)),
      windowEnd: new Date(Number(r.window_end_ms)),
      score: r.score as number,
      rawScore: r.raw_score as number,
      severity: r.severity as Severity,
      riskFactors: r.risk_factors as RiskFactor[],
      alertId: (r.alert_id as string | null) ?? null,
      suppressedByCap: r.suppressed_by_cap as boolean,
      signalsSeen: r.signals_seen as number,
    };
    out.set(pairKey(s.subjectId, s.policyId), s);
  }
  return out;
}

export const pairKey = (subjectId: string, policyId: string) => `${subjectId}/${policyId}`;

export interface AlertSnapshot {
  id: string;
  subjectId: string;
  policyId: string;
  status: 'needs_review' | 'confirmed' | 'dismissed' | 'resolved';
  score: number;
  severity: Severity;
  triggerSignalId: string | null;
}

/** Per pair: the open alert, and the most recent closed one. */
export async function loadAlertStates(
  db: DbOrTx,
  subjectIds: string[],
): Promise<{ open: Map<string, AlertSnapshot>; lastClosed: Map<string, AlertSnapshot> }> {
  const open = new Map<string, AlertSnapshot>();
  const lastClosed = new Map<string, AlertSnapshot>();
  if (!subjectIds.length) return { open, lastClosed };
  const res = await db.execute<Record<string, unknown>>(sql`
    select distinct on (subject_id, policy_id, status in ('needs_review', 'confirmed'))
           id, subject_id, policy_id, status, score, severity, trigger_signal_id::text as trigger_signal_id
    from alerts
    where subject_id = any(${sql.param(subjectIds)}::uuid[])
    order by subject_id, policy_id, status in ('needs_review', 'confirmed'), updated_at desc, id desc`);
  for (const r of res.rows) {
    const a: AlertSnapshot = {
      id: r.id as string,
      subjectId: r.subject_id as string,
      policyId: r.policy_id as string,
      status: r.status as AlertSnapshot['status'],
      score: r.score as number,
      severity: r.severity as Severity,
      triggerSignalId: (r.trigger_signal_id as string | null) ?? null,
    };
    (a.status === 'needs_review' || a.status === 'confirmed' ? open : lastClosed).set(pairKey(a.subjectId, a.policyId), a);
  }
  return { open, lastClosed };
}

/**
 * Write changed score rows (callers pass only rows that differ from what they read). A row is only
 * replaced by a computation that saw at least as many of the subject's signals (and at least the
 * same policy version): a slower, older computation never overwrites a fresher one.
 */
export async function upsertScores(db: DbOrTx, rows: StoredScore[]): Promise<void> {
  if (!rows.length) return;
  const json = JSON.stringify(
    rows.map((r) => ({
      s: r.subjectId,
      p: r.policyId,
      v: r.policyVersion,
      tr: r.triggerSignalId,
      ta: r.triggeredAt.toISOString(),
      we: r.windowEnd.toISOString(),
      sc: r.score,
      rs: r.rawScore,
      sv: r.severity,
      rf: r.riskFactors,
      a: r.alertId,
      c: r.suppressedByCap,
      n: r.signalsSeen,
    })),
  );
  await db.execute(sql`
    insert into subject_policy_scores as t
      (subject_id, policy_id, policy_version, trigger_signal_id, triggered_at, window_end, score, raw_score, severity,
       risk_factors, alert_id, suppressed_by_cap, signals_seen, computed_at)
    select s, p, v, tr, ta, we, sc, rs, sv::severity, rf, a, c, n, now()
    from json_to_recordset(${json}::json)
      as r(s uuid, p uuid, v int, tr bigint, ta timestamptz, we timestamptz, sc int, rs int, sv text, rf jsonb, a uuid, c boolean, n int)
    order by s, p
    on conflict (subject_id, policy_id) do update set
      policy_version = excluded.policy_version, trigger_signal_id = excluded.trigger_signal_id,
      triggered_at = excluded.triggered_at, window_end = excluded.window_end, score = excluded.score,
      raw_score = excluded.raw_score, severity = excluded.severity, risk_factors = excluded.risk_factors,
      alert_id = excluded.alert_id, suppressed_by_cap = excluded.suppressed_by_cap, signals_seen = excluded.signals_seen,
      computed_at = now()
    where excluded.signals_seen >= t.signals_seen and excluded.policy_version >= t.policy_version`);
}

/**
 * Lock the policy's counter of new alerts for today (UTC) until the transaction ends and return how
 * many were raised so far: concurrent scorings then never exceed the cap together.
 */
export async function lockDailyCounter(tx: DbOrTx, policyId: string, day: string): Promise<number> {
  const res = await tx.execute<{ count: number }>(sql`
    insert into policy_daily_alerts (policy_id, day, count) values (${policyId}, ${day}::date, 0)
    on conflict (policy_id, day) do update set count = policy_daily_alerts.count
    returning count`);
  return res.rows[0]!.count;
}

export async function addToDailyCounter(tx: DbOrTx, policyId: string, day: string, n: number): Promise<void> {
  if (n > 0)
    await tx.execute(
      sql`update policy_daily_alerts set count = count + ${n} where policy_id = ${policyId} and day = ${day}::date`,
    );
}

export interface NewAlert {
  subjectId: string;
  policyId: string;
  region: string;
  severity: Severity;
  score: number;
  riskFactors: RiskFactor[];
  triggerSignalId: string;
  triggeredAt: Date;
}

const alertJson = (rows: Array<Omit<NewAlert, 'region'> & { region?: string }>) =>
  JSON.stringify(
    rows.map((r) => ({
      s: r.subjectId,
      p: r.policyId,
      g: r.region ?? null,
      sv: r.severity,
      sc: r.score,
      rf: r.riskFactors,
      tr: r.triggerSignalId,
      ta: r.triggeredAt.toISOString(),
    })),
  );

/**
 * Create alerts; a pair that already has an open alert (another scoring got there first) is skipped
 * by the one-open-alert index. Returns the created alerts by pair.
 */
export async function insertAlerts(tx: DbOrTx, rows: NewAlert[]): Promise<Map<string, string>> {
  if (!rows.length) return new Map();
  const res = await tx.execute<{ id: string; subject_id: string; policy_id: string }>(sql`
    insert into alerts (subject_id, policy_id, region, severity, score, risk_factors, trigger_signal_id, triggered_at)
    select s, p, g, sv::severity, sc, rf, tr, ta
    from json_to_recordset(${alertJson(rows)}::json)
      as r(s uuid, p uuid, g text, sv text, sc int, rf jsonb, tr bigint, ta timestamptz)
    order by s, p
    on conflict (subject_id, policy_id) where status in ('needs_review', 'confirmed') do nothing
    returning id, subject_id, policy_id`);
  return new Map(res.rows.map((r) => [pairKey(r.subject_id, r.policy_id), r.id]));
}

/** The open alert of each pair, if any. */
export async function openAlertIds(
  db: DbOrTx,
  pairs: Array<{ subjectId: string; policyId: string }>,
): Promise<Map<string, string>> {
  if (!pairs.length) return new Map();
  const res = await db.execute<{ id: string; subject_id: string; policy_id: string }>(sql`
    select a.id, a.subject_id, a.policy_id
    from json_to_recordset(${JSON.stringify(pairs.map((p) => ({ s: p.subjectId, p: p.policyId })))}::json) as r(s uuid, p uuid)
    join alerts a on a.subject_id = r.s and a.policy_id = r.p and a.status in ('needs_review', 'confirmed')`);
  return new Map(res.rows.map((r) => [pairKey(r.subject_id, r.policy_id), r.id]));
}

/**
 * Raise open alerts to higher scores, in one statement. Monotonic: an alert's score and severity
 * never go down, so a slower, older computation cannot undo a fresher one. Returns the raised ids.
 */
export async function raiseAlerts(tx: DbOrTx, rows: Array<Omit<NewAlert, 'region'>>): Promise<string[]> {
  if (!rows.length) return [];
  const res = await tx.execute<{ id: string }>(sql`
    update alerts a set
      score = r.sc,
      severity = (case when a.severity = 'high' or r.sv = 'high' then 'high'
                       when a.severity = 'medium' or r.sv = 'medium' then 'medium' else 'low' end)::severity,
      risk_factors = r.rf, trigger_signal_id = r.tr, triggered_at = r.ta, updated_at = now()
    from json_to_recordset(${alertJson(rows)}::json)
      as r(s uuid, p uuid, g text, sv text, sc int, rf jsonb, tr bigint, ta timestamptz)
    where a.subject_id = r.s and a.policy_id = r.p and a.status in ('needs_review', 'confirmed') and a.score < r.sc
    returning a.id`);
  return res.rows.map((r) => r.id);
}
