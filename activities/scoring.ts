/**
 * Scoring activities: recompute the (subject, policy) scores a batch of signals may have changed,
 * from the stored signals, and raise or update alerts. Idempotent and convergent, without locks:
 *
 * - Every score is recomputed from scratch (domain/scoring.ts), never incremented, so running the
 *   same batch again finds nothing to change and writes nothing.
 * - All reads of one scoring come from one snapshot (REPEATABLE READ, read only). Signals are
 *   append-only, so a later snapshot sees a superset; the score row keeps how many of the subject's
 *   signals its computation saw and is only replaced by one that saw at least as many. Each batch's
 *   scoring starts after its signals committed, so the last snapshot to be taken sees every batch,
 *   and its result is what remains: concurrent batches converge on the right score.
 * - Alerts: one open alert per (subject, policy) by a unique index (a concurrent creation is skipped
 *   with ON CONFLICT DO NOTHING and becomes a raise); raising is monotonic (`score < new`), so an
 *   older computation never undoes a fresher one. Only transactions that create alerts lock the
 *   policy's daily counter.
 * - Scoring is not a command and writes no audit entry (the alert rows record what it raised); it
 *   stays off the audit chain's lock, which every command takes.
 * - Round trips matter more than anything else here: a scoring is 4 reads in one snapshot, then one
 *   statement (raises + score rows + the batch record), plus a small transaction when alerts are new.
 */
import { sql } from 'drizzle-orm';
import type { Logger } from 'pino';
import type { Db } from '../db';
import { parseSnapshot, subjectCache, type CachedSignal, type CachedSubject } from '../db/queries/scoring-cache';
import {
  addToDailyCounter,
  insertAlerts,
  loadActivePolicies,
  loadScoringBasis,
  loadSignalsInRanges,
  loadSubjectSignals,
  loadSubjectStates,
  lockDailyCounter,
  pairKey,
  writeScoring,
  type NewAlert,
  type ScoreRow,
} from '../db/queries/scoring';
import { inScope, TEMPLATES, triggerFilter, type ScoringPolicy } from '../domain/policies';
import { BASELINE_DAYS, DAY_MS, decideAlert, scoreSubject, type ScoreResult, type ScoringSignal } from '../domain/scoring';
import type { ScoreSubjectsInput, ScoreSubjectsResult } from '../workflows/definitions';

export interface ScoringDeps {
  db: Db;
  logger: Logger;
}

interface Computed {
  subjectId: string;
  region: string;
  policy: ScoringPolicy;
  r: ScoreResult;
  /** How many signals of the pair's range (its windows and baselines) the computation saw. */
  seen: number;
}

/**
 * The signals of a pair's range: from its first trigger (less the baseline when the booster uses
 * it) to its last trigger's window end — everything its score can depend on. Signals are
 * append-only and triggers only add up, so a later snapshot counts at least as many.
 */
function signalsSeen(policy: ScoringPolicy, signals: ScoringSignal[]): number {
  const t = TEMPLATES[policy.template];
  let from = Infinity;
  let to = -Infinity;
  for (const s of signals) {
    if (!t.isTrigger(s)) continue;
    from = Math.min(from, s.occurredAt - (policy.boosters.aboveUsualActivity > 0 ? BASELINE_DAYS * DAY_MS : 0));
    to = Math.max(to, s.occurredAt + policy.activationWindowDays * DAY_MS);
  }
  let n = 0;
  for (const s of signals) if (s.occurredAt >= from && s.occurredAt <= to) n++;
  return n;
}

type Which = { subjectIds: string[] } | { batchId: string };

/**
 * Read phase: everything the computation needs, from one snapshot (3 or 4 queries). The subjects
 * are given, or those stored with the batch. What this process already read about a subject in an
 * earlier snapshot (scoring-cache.ts) is completed with what that snapshot did not see, so only
 * new signals travel; the result is the same as reading everything in this snapshot.
 */
async function readSnapshot(db: Db, which: Which, only?: string[]) {
  const cache = subjectCache(db);
  const read = await db.transaction(
    async (tx) => {
      const basis = await loadScoringBasis(tx, which, only);
      const { policies } = basis;
      if (!policies.length || !basis.subjects.length) return { batchSubjects: basis.batchSubjects, snap: null };
      const filter = triggerFilter(policies.map((p) => p.template));
      const filterKey = JSON.stringify(filter);
      const snap = parseSnapshot(basis.snap);
      const prior = new Map<string, CachedSubject>();
      for (const s of basis.subjects) {
        const e = cache.usable(s.id, snap, filterKey);
        if (e) prior.set(s.id, e);
      }
      const fresh = await loadSubjectSignals(
        tx,
        basis.subjects.map((s) => {
          const e = prior.get(s.id);
          return { s: s.id, snap: e?.snap.text ?? null, all: !!e?.window };
        }),
        filter,
      );

      // Each subject's trigger candidates and cached window, brought up to this snapshot.
      const next = new Map<string, CachedSubject>();
      for (const s of basis.subjects) {
        const e = prior.get(s.id);
        const d = fresh.get(s.id);
        const candidates = d ? d.signals.filter((x) => x.id in d.attributes).map((x) => asTrigger(x, d.attributes[x.id]!)) : [];
        let window = e?.window ?? null;
        if (window && d?.signals.length) {
          const added = d.signals.filter((x) => inRange(x, window!.from, window!.to));
          if (added.length) window = { ...window, signals: [...window.signals, ...added] };
        }
        next.set(s.id, {
          snap,
          filter: filterKey,
          triggers: e ? (candidates.length ? [...e.triggers, ...candidates] : e.triggers) : candidates,
          window,
        });
      }

      // Triggered subjects only: the ranges cover their windows and the baseline before them.
      const ranges: Array<{ subjectId: string; from: number; to: number }> = [];
      const covering = new Map<string, ScoringPolicy[]>();
      for (const s of basis.subjects) {
        const triggers = next.get(s.id)!.triggers;
        if (!triggers.length) continue;
        const mine = policies.filter((p) => inScope(p.scope, s));
        let from = Infinity;
        let to = -Infinity;
        for (const p of mine) {
          for (const t of triggers) {
            if (!TEMPLATES[p.template].isTrigger(t)) continue;
            from = Math.min(from, t.occurredAt - (p.boosters.aboveUsualActivity > 0 ? BASELINE_DAYS * DAY_MS : 0));
            to = Math.max(to, t.occurredAt + p.activationWindowDays * DAY_MS);
          }
        }
        if (from !== Infinity) {
          ranges.push({ subjectId: s.id, from, to });
          covering.set(s.id, mine);
        }
      }
      if (!ranges.length) return { batchSubjects: basis.batchSubjects, snap: null, next };

      // Windows not cached (or narrower than needed) are read whole.
      const missing = ranges.filter((r) => {
        const w = next.get(r.subjectId)!.window;
        return !w || w.from > r.from || w.to < r.to;
      });
      const windows = await loadSignalsInRanges(tx, missing);
      for (const r of missing) {
        next.get(r.subjectId)!.window = { from: r.from, to: r.to, signals: windows.get(r.subjectId) ?? [] };
      }
      const ids = ranges.map((r) => r.subjectId);
      return {
        batchSubjects: basis.batchSubjects,
        next,
        snap: {
          subjects: new Map(basis.subjects.map((s) => [s.id, s])),
          cached: next,
          covering,
          ranges,
          states: await loadSubjectStates(tx, ids),
        },
      };
    },
    { isolationLevel: 'repeatable read', accessMode: 'read only' },
  );
  if (read.next) for (const [id, e] of read.next) cache.put(id, e);
  return read;
}

/** A stored signal in a window's range `[from, to]` (ms bounds, compared as the database does: in µs). */
const inRange = (x: CachedSignal, from: number, to: number) => x.us >= from * 1000 && x.us <= to * 1000;

/** A trigger candidate: its attributes, and its time floored to the millisecond. */
const asTrigger = (x: CachedSignal, attributes: Record<string, unknown>): CachedSignal => ({
  ...x,
  occurredAt: Math.floor(x.us / 1000),
  attributes,
});

const markScored = (db: Db, batchId: string | undefined) =>
  batchId
    ? db.execute(sql`update signal_batches set scored_at = now(), result = '{"alertsCreated":[],"alertsRaised":[],"pairsScored":0}'::jsonb
                     where id = ${batchId}::uuid and scored_at is null`)
    : Promise.resolve();

/** The scoring of one set of subjects, against the active policies (or the given ones). */
export async function scoreSubjects(
  deps: ScoringDeps,
  input: ScoreSubjectsInput,
  now = new Date(),
  /** How many times this scoring has started over for alerts closed under it (bounded). */
  retry = 0,
): Promise<ScoreSubjectsResult> {
  const { db } = deps;
  const subjectIds = input.subjectIds ? [...new Set(input.subjectIds)].sort() : null;
  const result: ScoreSubjectsResult = {
    subjects: subjectIds?.length ?? 0,
    pairsScored: 0,
    scoresChanged: 0,
    alertsCreated: [],
    alertsRaised: [],
    suppressedByCap: 0,
  };
  let snap: NonNullable<Awaited<ReturnType<typeof readSnapshot>>['snap']> | null = null;
  if (subjectIds) {
    if (subjectIds.length) snap = (await readSnapshot(db, { subjectIds }, input.policyIds)).snap;
  } else if (input.batchId) {
    const read = await readSnapshot(db, { batchId: input.batchId }, input.policyIds);
    snap = read.snap;
    result.subjects = read.batchSubjects;
  }
  if (!snap) {
    await markScored(db, input.batchId);
    return result;
  }

  // Compute (pure).
  const computed: Computed[] = [];
  for (const { subjectId, from, to } of snap.ranges) {
    const s = snap.subjects.get(subjectId)!;
    const state = snap.states.get(subjectId)!;
    const cached = snap.cached.get(subjectId)!;
    // Window signals plus the trigger candidates (which carry the attributes triggers look at).
    const byId = new Map<string, ScoringSignal>();
    for (const x of cached.window!.signals) if (inRange(x, from, to)) byId.set(x.id, x);
    for (const x of cached.triggers) byId.set(x.id, x);
    const signals = [...byId.values()];
    const subject = { id: subjectId, groups: s.groups, hasConfirmedViolation: state.hasConfirmedViolation };
    for (const policy of snap.covering.get(subjectId)!) {
      const r = scoreSubject(policy, subject, signals);
      if (r) computed.push({ subjectId, region: s.region, policy, r, seen: signalsSeen(policy, signals) });
    }
  }
  result.pairsScored = computed.length;

  // Alert decisions against the snapshot's alerts.
  const asAlert = (c: Computed): NewAlert => ({
    subjectId: c.subjectId,
    policyId: c.policy.id,
    region: c.region,
    severity: c.r.severity,
    score: c.r.score,
    riskFactors: c.r.riskFactors,
    triggerSignalId: c.r.triggerSignalId,
    triggeredAt: new Date(c.r.triggeredAt),
  });
  const raises: NewAlert[] = [];
  const creates = new Map<string, Computed[]>();
  for (const c of computed) {
    const state = snap.states.get(c.subjectId)!;
    const d = decideAlert(c.r, state.open.get(c.policy.id) ?? null, state.lastClosed.get(c.policy.id) ?? null);
    if (d.action === 'raise') raises.push(asAlert(c));
    else if (d.action === 'create') creates.set(c.policy.id, [...(creates.get(c.policy.id) ?? []), c]);
  }

  // New alerts, only when there are some: the policy's daily counter is locked while they are made.
  const suppressed = new Set<string>();
  if (creates.size) {
    const today = now.toISOString().slice(0, 10);
    const created = await db.transaction(async (tx) => {
      const ids: string[] = [];
      for (const policyId of [...creates.keys()].sort()) {
        const list = creates.get(policyId)!.sort((a, b) => (a.subjectId < b.subjectId ? -1 : 1));
        const used = await lockDailyCounter(tx, policyId, today);
        const allowed = Math.max(0, list[0]!.policy.dailyAlertCap - used);
        list.slice(allowed).forEach((c) => suppressed.add(pairKey(c.subjectId, policyId)));
        const wanted = list.slice(0, allowed);
        const inserted = await insertAlerts(tx, wanted.map(asAlert));
        await addToDailyCounter(tx, policyId, today, inserted.size);
        ids.push(...inserted.values());
        // Another scoring created the pair's alert since our snapshot (perhaps from fewer
        // signals): raise it instead, monotonically.
        for (const c of wanted) if (!inserted.has(pairKey(c.subjectId, policyId))) raises.push(asAlert(c));
      }
      return ids.sort();
    });
    result.alertsCreated = created;
    result.suppressedByCap = suppressed.size;
  }

  // Raises, score rows and the batch's record: one statement.
  const scores: ScoreRow[] = computed.map((c) => ({
    subjectId: c.subjectId,
    policyId: c.policy.id,
    policyVersion: c.policy.version,
    triggerSignalId: c.r.triggerSignalId,
    triggeredAt: new Date(c.r.triggeredAt),
    windowEnd: new Date(c.r.windowEnd),
    score: c.r.score,
    rawScore: c.r.rawScore,
    severity: c.r.severity,
    riskFactors: c.r.riskFactors,
    suppressedByCap: suppressed.has(pairKey(c.subjectId, c.policy.id)),
    signalsSeen: c.seen,
  }));
  const written = await writeScoring(db, {
    raises,
    scores,
    batchId: input.batchId ?? null,
    created: result.alertsCreated,
    suppressedByCap: result.suppressedByCap,
  });
  result.alertsRaised = written.raised;
  result.scoresChanged = written.changed;

  // A raise finds nothing to raise when its alert was dismissed (or resolved) after this scoring's
  // snapshot: the new evidence would be lost. Those subjects are scored again against the alerts as
  // they are now (a new alert where one is due). Raises that lost to a higher concurrent raise, the
  // common case, start nothing over.
  const raisedIds = new Set(written.raised);
  const missed = raises
    .map((r) => snap.states.get(r.subjectId)?.open.get(r.policyId))
    .filter((a): a is NonNullable<typeof a> => a !== undefined && !raisedIds.has(a.id));
  if (missed.length && retry < 3) {
    const closed = await db.execute<{ subject_id: string }>(sql`
      select distinct subject_id from alerts
      where id = any(${sql.param(missed.map((a) => a.id))}::uuid[]) and status not in ('needs_review', 'confirmed')`);
    if (closed.rows.length) {
      const again = await scoreSubjects(
        deps,
        { subjectIds: closed.rows.map((r) => r.subject_id), policyIds: input.policyIds },
        now,
        retry + 1,
      );
      result.alertsCreated = [...result.alertsCreated, ...again.alertsCreated].sort();
      result.alertsRaised = [...new Set([...result.alertsRaised, ...again.alertsRaised])].sort();
      result.suppressedByCap += again.suppressedByCap;
    }
  }
  return result;
}

export function createScoringActivities(deps: ScoringDeps) {
  return {
    /** Score the subjects of one ingested batch, then record the batch as scored (idempotent). */
    async scoreSignalBatch(input: ScoreSubjectsInput & { batchId: string }): Promise<ScoreSubjectsResult> {
      try {
        return await scoreSubjects(deps, input);
      } catch (err) {
        deps.logger.error({ err, batchId: input.batchId }, 'scoring a batch failed (it will be retried)');
        throw err;
      }
    },

    /** Score a set of subjects (used by policy backfills). */
    async scoreSubjects(input: ScoreSubjectsInput): Promise<ScoreSubjectsResult> {
      return scoreSubjects(deps, input);
    },

    /** A page of subjects having signals that may trigger this policy (for a backfill after activation). */
    async listPolicyCandidates(input: {
      policyId: string;
      after: string | null;
      limit: number;
    }): Promise<{ subjectIds: string[]; next: string | null }> {
      const [policy] = await loadActivePolicies(deps.db, [input.policyId]);
      if (!policy) return { subjectIds: [], next: null };
      const types = TEMPLATES[policy.template].triggerTypes;
      const res = await deps.db.execute<{ subject_id: string }>(sql`
        select distinct subject_id from signals
        where type = any(${sql.param(types)}::text[]) ${input.after ? sql`and subject_id > ${input.after}::uuid` : sql``}
        order by subject_id limit ${input.limit}`);
      const ids = res.rows.map((r) => r.subject_id);
      return { subjectIds: ids, next: ids.length === input.limit ? ids[ids.length - 1]! : null };
    },
  };
}
