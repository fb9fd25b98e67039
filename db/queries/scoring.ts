/**
 * Reads and writes of the scoring activity. Everything here is keyed so that running the same
 * scoring twice writes nothing the second time.
 */
import { and, eq, inArray, sql } from 'drizzle-orm';
import type { ScoringPolicy } from '../../domain/policies';
import type { RiskFactor } from '../../domain/scoring';
import type { Severity, SignalType } from '../../domain/signals';
import type { DbOrTx } from '../index';
import { policies, type PolicyRow } from '../schema';
import type { CachedSignal } from './scoring-cache';

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

/** A signal as the compact lists carry it: `id type severity occurredMicros count`. */
const SIGNAL_TEXT = `concat_ws(' ', x.id, x.type, coalesce(x.severity::text, '-'),
                             (date_part('epoch', x.occurred_at) * 1000000)::int8, x.count)`;

/**
 * Every signal of each subject within its time range (inclusive). One row per subject, its signals
 * as one text `id type severity occurredMicros count,…`: per-row JSON building and numeric epoch
 * extraction cost Postgres more than the scan, and parsing thousands of rows field by field cost
 * Node more than the query. The per-subject subquery keeps the plan on the subject index (a join
 * was planned as a scan of the whole table).
 */
export async function loadSignalsInRanges(
  db: DbOrTx,
  ranges: Array<{ subjectId: string; from: number; to: number }>,
): Promise<Map<string, CachedSignal[]>> {
  const out = new Map<string, CachedSignal[]>();
  if (!ranges.length) return out;
  const json = JSON.stringify(
    ranges.map((r) => ({ s: r.subjectId, f: new Date(r.from).toISOString(), t: new Date(r.to).toISOString() })),
  );
  const res = await db.execute<{ subject_id: string; xs: string | null }>(sql`
    select r.s as subject_id,
      (select string_agg(${sql.raw(SIGNAL_TEXT)}, ',')
       from signals x
       where x.subject_id = r.s and x.occurred_at >= r.f and x.occurred_at <= r.t) as xs
    from json_to_recordset(${json}::json) as r(s uuid, f timestamptz, t timestamptz)`);
  for (const r of res.rows) out.set(r.subject_id, r.xs ? parseSignalList(r.xs) : []);
  return out;
}

/** What one subject's read brought: signals (attributes left out) and trigger candidates' attributes by id. */
export interface SubjectRead {
  signals: CachedSignal[];
  attributes: Record<string, Record<string, unknown>>;
}

/**
 * Per subject, in one round trip:
 * - given a snapshot (`snap`, from `pg_current_snapshot()` of an earlier scoring): the subject's
 *   signals that snapshot did not see — all of them when `all`, else only trigger candidates;
 * - without one: every trigger candidate of the subject.
 * Trigger candidates come with their attributes (what the trigger rules look at). Subjects with
 * nothing to return are left out.
 */
export async function loadSubjectSignals(
  db: DbOrTx,
  subjects: Array<{ s: string; snap: string | null; all: boolean }>,
  filter: { types: string[]; restrictedTypes: string[]; severities: string[] },
): Promise<Map<string, SubjectRead>> {
  const out = new Map<string, SubjectRead>();
  if (!subjects.length || !filter.types.length) return out;
  const candidate = sql`(x.type = any(${sql.param(filter.types)}::text[])
    and (x.type <> all(${sql.param(filter.restrictedTypes)}::text[]) or x.severity::text = any(${sql.param(filter.severities)}::text[])))`;
  const res = await db.execute<{ sid: string; xs: string; ta: Record<string, Record<string, unknown>> | null }>(sql`
    with r as materialized (
      select * from json_to_recordset(${JSON.stringify(subjects)}::json) as r(s uuid, snap pg_snapshot, "all" boolean)
    )
    select r.s as sid, d.xs, d.ta
    from r cross join lateral (
      select string_agg(${sql.raw(SIGNAL_TEXT)}, ',') as xs, json_object_agg(x.id, x.attributes) filter (where ${candidate}) as ta
      from signals x
      where x.subject_id = r.s and x.xid >= pg_snapshot_xmin(r.snap) and not pg_visible_in_snapshot(x.xid, r.snap)
    ) d
    where r.snap is not null and r."all" and d.xs is not null
    union all
    -- Only trigger candidates: the index's type column narrows the probe.
    select r.s, d.xs, d.ta
    from r cross join lateral (
      select string_agg(${sql.raw(SIGNAL_TEXT)}, ',') as xs, json_object_agg(x.id, x.attributes) as ta
      from signals x
      where x.subject_id = r.s and ${candidate}
        and x.xid >= pg_snapshot_xmin(r.snap) and not pg_visible_in_snapshot(x.xid, r.snap)
    ) d
    where r.snap is not null and not r."all" and d.xs is not null
    union all
    select r.s, d.xs, d.ta
    from r cross join lateral (
      select string_agg(${sql.raw(SIGNAL_TEXT)}, ',') as xs, json_object_agg(x.id, x.attributes) as ta
      from signals x
      where x.subject_id = r.s and ${candidate}
    ) d
    where r.snap is null and d.xs is not null`);
  for (const r of res.rows) out.set(r.sid, { signals: parseSignalList(r.xs), attributes: r.ta ?? {} });
  return out;
}

/** What one scoring starts from, read in its snapshot in one round trip. */
export interface ScoringBasis {
  /** `pg_current_snapshot()`: the transaction's snapshot. */
  snap: string;
  policies: ScoringPolicy[];
  subjects: Array<{ id: string; region: string; groups: string[] }>;
  /** For a batch: how many subjects it has (0: no such batch). */
  batchSubjects: number;
}

/**
 * The snapshot, the active policies (or the given ones among them), and the subjects (the given
 * ones, or those stored with the batch: never sent back and forth) with what scoping needs.
 */
export async function loadScoringBasis(
  db: DbOrTx,
  which: { subjectIds: string[] } | { batchId: string },
  only?: string[],
): Promise<ScoringBasis> {
  const ids =
    'subjectIds' in which
      ? sql`${sql.param(which.subjectIds)}::uuid[]`
      : sql`(select b.subject_ids from signal_batches b where b.id = ${which.batchId}::uuid)::uuid[]`;
  const res = await db.execute<{
    snap: string;
    policies: Array<Omit<ScoringPolicy, 'priorityGroups'> & { priorityGroups: string[] }>;
    subjects: Array<[string, string, string[]]>;
    n: number | null;
  }>(sql`
    select pg_current_snapshot()::text as snap,
      (select coalesce(json_agg(json_build_object(
                'id', p.id, 'version', p.version, 'template', p.template, 'scope', p.scope,
                'priorityGroups', p.priority_groups, 'indicators', p.indicators, 'thresholds', p.thresholds,
                'boosters', p.boosters, 'activationWindowDays', p.activation_window_days, 'dailyAlertCap', p.daily_alert_cap)
              order by p.id), '[]'::json)
       from policies p
       where p.status = 'active' ${only ? sql`and p.id = any(${sql.param(only)}::uuid[])` : sql``}) as policies,
      (select coalesce(json_agg(json_build_array(s.id, s.region, s.groups) order by s.id), '[]'::json)
       from subjects s where s.id = any(${ids})) as subjects,
      ${'batchId' in which ? sql`(select b.subjects from signal_batches b where b.id = ${which.batchId}::uuid)` : sql`null::int`} as n`);
  const row = res.rows[0]!;
  return {
    snap: row.snap,
    policies: row.policies.sort((a, b) => (a.id < b.id ? -1 : 1)),
    subjects: row.subjects.map(([id, region, groups]) => ({ id, region, groups })),
    batchSubjects: row.n ?? 0,
  };
}

/** Canonical strings for the few type and severity names (cheaper comparisons later). */
const NAMES = new Map<string, string>();
const name = (s: string) => {
  let n = NAMES.get(s);
  if (n === undefined) NAMES.set(s, (n = s));
  return n;
};

/**
 * `id type severity occurredMicros count,…` → signals, in one pass without intermediate arrays.
 * `occurredAt` is the time in milliseconds truncated (as the integer division in SQL gave it).
 */
export function parseSignalList(text: string): CachedSignal[] {
  const list: CachedSignal[] = [];
  let i = 0;
  const next = (sep: string) => {
    let j = text.indexOf(sep, i);
    if (j < 0) j = text.length;
    const v = text.slice(i, j);
    i = j + 1;
    return v;
  };
  while (i < text.length) {
    const id = next(' ');
    const type = name(next(' ')) as SignalType;
    const severity = next(' ');
    const us = Number(next(' '));
    const count = Number(next(','));
    list.push({
      id,
      type,
      severity: severity === '-' ? null : (name(severity) as Severity),
      occurredAt: Math.trunc(us / 1000),
      us,
      count,
      attributes: {},
    });
  }
  return list;
}

export interface AlertSnapshot {
  id: string;
  subjectId: string;
  policyId: string;
  status: 'needs_review' | 'confirmed' | 'dismissed' | 'resolved';
  score: number;
  severity: Severity;
  triggerSignalId: string | null;
}

export interface SubjectState {
  hasConfirmedViolation: boolean;
  /** Per policy: the open alert, and the most recent closed one. */
  open: Map<string, AlertSnapshot>;
  lastClosed: Map<string, AlertSnapshot>;
}

/** Per subject, in one round trip: confirmed violations, open and last closed alerts. */
export async function loadSubjectStates(db: DbOrTx, ids: string[]): Promise<Map<string, SubjectState>> {
  const out = new Map<string, SubjectState>();
  if (!ids.length) return out;
  const res = await db.execute<{ id: string; v: boolean; alerts: Array<Record<string, unknown>> }>(sql`
    select s.id,
      exists (select 1 from subject_violations v where v.subject_id = s.id) as v,
      coalesce((
        select json_agg(a) from (
          select distinct on (policy_id, status in ('needs_review', 'confirmed'))
                 id, policy_id, status, score, severity, trigger_signal_id::text as trigger_signal_id
          from alerts where subject_id = s.id
          order by policy_id, status in ('needs_review', 'confirmed'), updated_at desc, id desc) a
      ), '[]'::json) as alerts
    from unnest(${sql.param(ids)}::uuid[]) as s(id)`);
  for (const r of res.rows) {
    const state: SubjectState = { hasConfirmedViolation: r.v, open: new Map(), lastClosed: new Map() };
    for (const a of r.alerts) {
      const snap: AlertSnapshot = {
        id: a.id as string,
        subjectId: r.id,
        policyId: a.policy_id as string,
        status: a.status as AlertSnapshot['status'],
        score: a.score as number,
        severity: a.severity as Severity,
        triggerSignalId: (a.trigger_signal_id as string | null) ?? null,
      };
      (snap.status === 'needs_review' || snap.status === 'confirmed' ? state.open : state.lastClosed).set(snap.policyId, snap);
    }
    out.set(r.id, state);
  }
  return out;
}

export const pairKey = (subjectId: string, policyId: string) => `${subjectId}/${policyId}`;

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

export interface ScoreRow {
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
  suppressedByCap: boolean;
  signalsSeen: number;
}

/**
 * The write of one scoring, as one statement (one round trip, row locks held for the shortest time):
 * 1. raise open alerts to higher scores — monotonic (`score < new`), rows locked in id order so
 *    concurrent scorings cannot deadlock;
 * 2. upsert the score rows that differ — a row is only replaced by a computation that saw at least
 *    as many of the subject's signals and at least the same policy version, so an older, slower
 *    computation never overwrites a fresher one; the pair's open alert is linked;
 * 3. mark the batch scored.
 * Returns the raised alert ids and how many score rows changed.
 */
export async function writeScoring(
  db: DbOrTx,
  w: {
    raises: Array<Omit<NewAlert, 'region'>>;
    scores: ScoreRow[];
    batchId: string | null;
    created: string[];
    suppressedByCap: number;
  },
): Promise<{ raised: string[]; changed: number }> {
  const scores = JSON.stringify(
    w.scores.map((r) => ({
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
      c: r.suppressedByCap,
      n: r.signalsSeen,
    })),
  );
  const res = await db.execute<{ raised: string[]; changed: number }>(sql`
    with r as (
      select * from json_to_recordset(${alertJson(w.raises)}::json)
        as r(s uuid, p uuid, g text, sv text, sc int, rf jsonb, tr bigint, ta timestamptz)
    ), locked as (
      select a.id from alerts a join r on a.subject_id = r.s and a.policy_id = r.p
      where a.status in ('needs_review', 'confirmed') and a.score < r.sc
      order by a.id for update of a
    ), raised as (
      update alerts a set
        score = r.sc,
        severity = (case when a.severity = 'high' or r.sv = 'high' then 'high'
                         when a.severity = 'medium' or r.sv = 'medium' then 'medium' else 'low' end)::severity,
        risk_factors = r.rf, trigger_signal_id = r.tr, triggered_at = r.ta, updated_at = now()
      from r, locked
      where a.id = locked.id and a.subject_id = r.s and a.policy_id = r.p and a.score < r.sc
      returning a.id
    ), x as (
      select x.*, (select al.id from alerts al
                   where al.subject_id = x.s and al.policy_id = x.p and al.status in ('needs_review', 'confirmed')) as a
      from json_to_recordset(${scores}::json)
        as x(s uuid, p uuid, v int, tr bigint, ta timestamptz, we timestamptz, sc int, rs int, sv text, rf jsonb, c boolean, n int)
    ), changed as (
      insert into subject_policy_scores as t
        (subject_id, policy_id, policy_version, trigger_signal_id, triggered_at, window_end, score, raw_score, severity,
         risk_factors, alert_id, suppressed_by_cap, signals_seen, computed_at)
      select s, p, v, tr, ta, we, sc, rs, sv::severity, rf, a, c, n, now() from x
      order by s, p
      on conflict (subject_id, policy_id) do update set
        policy_version = excluded.policy_version, trigger_signal_id = excluded.trigger_signal_id,
        triggered_at = excluded.triggered_at, window_end = excluded.window_end, score = excluded.score,
        raw_score = excluded.raw_score, severity = excluded.severity, risk_factors = excluded.risk_factors,
        alert_id = excluded.alert_id, suppressed_by_cap = excluded.suppressed_by_cap, signals_seen = excluded.signals_seen,
        computed_at = now()
      where excluded.signals_seen >= t.signals_seen and excluded.policy_version >= t.policy_version
        and (t.policy_version, t.trigger_signal_id, t.triggered_at, t.window_end, t.score, t.raw_score, t.severity,
             t.risk_factors, t.alert_id, t.suppressed_by_cap, t.signals_seen)
            is distinct from
            (excluded.policy_version, excluded.trigger_signal_id, excluded.triggered_at, excluded.window_end, excluded.score,
             excluded.raw_score, excluded.severity, excluded.risk_factors, excluded.alert_id, excluded.suppressed_by_cap,
             excluded.signals_seen)
      returning 1
    ), batch as (
      update signal_batches set scored_at = now(),
        result = jsonb_build_object(
          'alertsCreated', ${JSON.stringify(w.created)}::jsonb,
          'alertsRaised', (select coalesce(jsonb_agg(id), '[]'::jsonb) from raised),
          'pairsScored', ${w.scores.length}::int,
          'suppressedByCap', ${w.suppressedByCap}::int)
      where id = ${w.batchId}::uuid and scored_at is null
      returning 1
    )
    select (select coalesce(json_agg(id::text order by id), '[]'::json) from raised) as raised,
           (select count(*)::int from changed) as changed,
           (select count(*)::int from batch) as batch`);
  const row = res.rows[0]!;
  return { raised: row.raised, changed: row.changed };
}
