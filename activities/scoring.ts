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
 *   with ON CONFLICT DO NOTHING); raising is monotonic (`score < new`), so an older computation never
 *   undoes a fresher one. Only transactions that create alerts lock the policy's daily counter.
 */
import canonicalize from 'canonicalize';
import { sql } from 'drizzle-orm';
import type { Logger } from 'pino';
import type { Db } from '../db';
import { appendAudit } from '../db/audit';
import {
  addToDailyCounter,
  insertAlerts,
  loadActivePolicies,
  loadAlertStates,
  loadScopeSubjects,
  loadScores,
  loadSignalCounts,
  loadSignalsInRanges,
  loadTriggerCandidates,
  loadViolations,
  lockDailyCounter,
  openAlertIds,
  pairKey,
  raiseAlerts,
  upsertScores,
  type NewAlert,
  type StoredScore,
} from '../db/queries/scoring';
import { inScope, TEMPLATES, type ScoringPolicy } from '../domain/policies';
import { BASELINE_DAYS, DAY_MS, decideAlert, scoreSubject, type ScoreResult, type ScoringSignal } from '../domain/scoring';
import type { ScoreSubjectsInput, ScoreSubjectsResult } from '../workflows/definitions';

export interface ScoringDeps {
  db: Db;
  logger: Logger;
}

const EMPTY: ScoreSubjectsResult = {
  subjects: 0,
  pairsScored: 0,
  scoresChanged: 0,
  alertsCreated: [],
  alertsRaised: [],
  suppressedByCap: 0,
};

interface Computed {
  subjectId: string;
  region: string;
  policy: ScoringPolicy;
  r: ScoreResult;
}

/** Read phase: everything the computation needs, from one snapshot. */
async function readSnapshot(db: Db, subjectIds: string[], policies: ScoringPolicy[]) {
  return db.transaction(
    async (tx) => {
      const scopeRows = await loadScopeSubjects(tx, subjectIds);
      const policiesOf = new Map<string, ScoringPolicy[]>();
      for (const s of scopeRows) {
        const covering = policies.filter((p) => inScope(p.scope, s));
        if (covering.length) policiesOf.set(s.id, covering);
      }
      const triggerTypes = [...new Set(policies.flatMap((p) => TEMPLATES[p.template].triggerTypes))];
      const triggers = await loadTriggerCandidates(tx, [...policiesOf.keys()], triggerTypes);
      // Triggered subjects only: the ranges cover their windows and the baseline before them.
      const ranges: Array<{ subjectId: string; from: number; to: number }> = [];
      for (const [id, covering] of policiesOf) {
        let from = Infinity;
        let to = -Infinity;
        for (const p of covering) {
          for (const t of triggers.get(id) ?? []) {
            if (!TEMPLATES[p.template].isTrigger(t)) continue;
            from = Math.min(from, t.occurredAt - (p.boosters.aboveUsualActivity > 0 ? BASELINE_DAYS * DAY_MS : 0));
            to = Math.max(to, t.occurredAt + p.activationWindowDays * DAY_MS);
          }
        }
        if (from !== Infinity) ranges.push({ subjectId: id, from, to });
      }
      if (!ranges.length) return null;
      const ids = ranges.map((r) => r.subjectId);
      return {
        scopeRows,
        policiesOf,
        triggers,
        ranges,
        inRange: await loadSignalsInRanges(tx, ranges),
        counts: await loadSignalCounts(tx, ids),
        violations: await loadViolations(tx, ids),
        stored: await loadScores(tx, ids),
        alertStates: await loadAlertStates(tx, ids),
      };
    },
    { isolationLevel: 'repeatable read', accessMode: 'read only' },
  );
}

/** The scoring of one set of subjects, against the active policies (or the given ones). */
export async function scoreSubjects(
  deps: ScoringDeps,
  input: ScoreSubjectsInput,
  now = new Date(),
): Promise<ScoreSubjectsResult> {
  const { db } = deps;
  const policies = await loadActivePolicies(db, input.policyIds);
  const subjectIds = [...new Set(input.subjectIds)].sort();
  if (!policies.length || !subjectIds.length) return { ...EMPTY, subjects: subjectIds.length };
  const snap = await readSnapshot(db, subjectIds, policies);
  if (!snap) return { ...EMPTY, subjects: subjectIds.length };

  // Compute (pure).
  const region = new Map(snap.scopeRows.map((s) => [s.id, s.region]));
  const groups = new Map(snap.scopeRows.map((s) => [s.id, s.groups]));
  const computed: Computed[] = [];
  for (const { subjectId } of snap.ranges) {
    // Window signals plus the trigger candidates (which carry the attributes triggers look at).
    const byId = new Map<string, ScoringSignal>();
    for (const s of snap.inRange.get(subjectId) ?? []) byId.set(s.id, s);
    for (const s of snap.triggers.get(subjectId) ?? []) byId.set(s.id, s);
    const signals = [...byId.values()];
    const subject = { id: subjectId, groups: groups.get(subjectId) ?? [], hasConfirmedViolation: snap.violations.has(subjectId) };
    for (const policy of snap.policiesOf.get(subjectId)!) {
      const r = scoreSubject(policy, subject, signals);
      if (r) computed.push({ subjectId, region: region.get(subjectId)!, policy, r });
    }
  }

  // Alert decisions against the snapshot's alerts.
  const raises: Computed[] = [];
  const creates = new Map<string, Computed[]>();
  for (const c of computed) {
    const key = pairKey(c.subjectId, c.policy.id);
    const d = decideAlert(c.r, snap.alertStates.open.get(key) ?? null, snap.alertStates.lastClosed.get(key) ?? null);
    if (d.action === 'raise') raises.push(c);
    else if (d.action === 'create') creates.set(c.policy.id, [...(creates.get(c.policy.id) ?? []), c]);
  }
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
  const today = now.toISOString().slice(0, 10);

  // Write phase (read committed): alerts, then the score rows that changed.
  return db.transaction(async (tx) => {
    const raised = await raiseAlerts(tx, raises.map(asAlert));
    const suppressed = new Set<string>();
    const created = new Map<string, string>();
    for (const policyId of [...creates.keys()].sort()) {
      const list = creates.get(policyId)!.sort((a, b) => (a.subjectId < b.subjectId ? -1 : 1));
      const used = await lockDailyCounter(tx, policyId, today);
      const allowed = Math.max(0, list[0]!.policy.dailyAlertCap - used);
      list.slice(allowed).forEach((c) => suppressed.add(pairKey(c.subjectId, policyId)));
      const wanted = list.slice(0, allowed);
      const inserted = await insertAlerts(tx, wanted.map(asAlert));
      await addToDailyCounter(tx, policyId, today, inserted.size);
      for (const [k, id] of inserted) created.set(k, id);
      // Another scoring created the pair's alert since our snapshot (perhaps from fewer signals):
      // raise it instead, monotonically.
      const lost = wanted.filter((c) => !inserted.has(pairKey(c.subjectId, c.policy.id)));
      raised.push(...(await raiseAlerts(tx, lost.map(asAlert))));
    }
    // The open alert of every pair that has one now (created here, by another scoring, or before).
    const alertOf = await openAlertIds(
      tx,
      computed.filter((c) => c.r.alertDue).map((c) => ({ subjectId: c.subjectId, policyId: c.policy.id })),
    );

    const changed: StoredScore[] = [];
    for (const c of computed) {
      const key = pairKey(c.subjectId, c.policy.id);
      const next: StoredScore = {
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
        alertId: alertOf.get(key) ?? null,
        suppressedByCap: suppressed.has(key),
        signalsSeen: snap.counts.get(c.subjectId) ?? 0,
      };
      if (!sameScore(snap.stored.get(key), next)) changed.push(next);
    }
    await upsertScores(tx, changed);

    const createdIds = [...created.values()].sort();
    if (createdIds.length) {
      // Audit last: the chain lock is then held for the shortest time.
      await appendAudit(tx, {
        actor: 'system:scoring',
        actorRoles: [],
        action: 'alerts.create',
        category: 'alerts',
        targetType: 'signal_batch',
        targetId: input.batchId ?? null,
        outcome: 'allowed',
        details: { alertIds: createdIds, suppressedByCap: suppressed.size },
      });
    }
    return {
      subjects: subjectIds.length,
      pairsScored: computed.length,
      scoresChanged: changed.length,
      alertsCreated: createdIds,
      alertsRaised: raised.sort(),
      suppressedByCap: suppressed.size,
    };
  });
}

function sameScore(a: StoredScore | undefined, b: StoredScore): boolean {
  return (
    !!a &&
    a.policyVersion === b.policyVersion &&
    a.triggerSignalId === b.triggerSignalId &&
    a.triggeredAt.getTime() === b.triggeredAt.getTime() &&
    a.windowEnd.getTime() === b.windowEnd.getTime() &&
    a.score === b.score &&
    a.rawScore === b.rawScore &&
    a.severity === b.severity &&
    a.alertId === b.alertId &&
    a.suppressedByCap === b.suppressedByCap &&
    a.signalsSeen === b.signalsSeen &&
    // jsonb does not keep key order: compare canonical encodings.
    canonicalize(a.riskFactors) === canonicalize(b.riskFactors)
  );
}

export function createScoringActivities(deps: ScoringDeps) {
  return {
    /** Score the subjects of one ingested batch, then record the batch as scored (idempotent). */
    async scoreSignalBatch(input: ScoreSubjectsInput & { batchId: string }): Promise<ScoreSubjectsResult> {
      const result = await scoreSubjects(deps, input).catch((err: unknown) => {
        deps.logger.error({ err, batchId: input.batchId }, 'scoring a batch failed (it will be retried)');
        throw err;
      });
      await deps.db.execute(sql`
        update signal_batches set scored_at = coalesce(scored_at, now()),
          result = ${JSON.stringify({ alertsCreated: result.alertsCreated, alertsRaised: result.alertsRaised, pairsScored: result.pairsScored, suppressedByCap: result.suppressedByCap })}::jsonb
        where id = ${input.batchId} and scored_at is null`);
      return result;
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
