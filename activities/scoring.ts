/**
 * Scoring activities: recompute the (subject, policy) scores a batch of signals may have changed,
 * from the stored signals, and raise or update alerts. Idempotent and convergent:
 *
 * - Every score is recomputed from scratch (domain/scoring.ts), never incremented, so running the
 *   same batch again finds nothing to change and writes nothing.
 * - Triggered subjects are locked (transaction advisory locks, key order) before their signals are
 *   read, so two batches touching the same subject write one after the other, the later one from
 *   data that includes the earlier one's: concurrent batches converge on the same score and share
 *   one alert per (subject, policy) (also guaranteed by the partial unique index).
 * - A subject with no trigger yet is not locked: if another batch is storing its trigger right now,
 *   that batch's own scoring runs after it commits and sees this batch's signals.
 */
import canonicalize from 'canonicalize';
import { sql } from 'drizzle-orm';
import type { Logger } from 'pino';
import type { Db } from '../db';
import { appendAudit } from '../db/audit';
import {
  insertAlerts,
  loadActivePolicies,
  loadAlertStates,
  loadScopeSubjects,
  loadScores,
  loadSignalsInRanges,
  loadTriggerCandidates,
  loadViolations,
  lockSubjects,
  pairKey,
  raiseAlert,
  takeDailyAllowance,
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

/** The scoring of one set of subjects, against the active policies (or the given ones). */
export async function scoreSubjects(
  deps: ScoringDeps,
  input: ScoreSubjectsInput,
  now = new Date(),
): Promise<ScoreSubjectsResult> {
  const { db } = deps;
  const policies = await loadActivePolicies(db, input.policyIds);
  if (!policies.length || !input.subjectIds.length) return { ...EMPTY };
  const subjectIds = [...new Set(input.subjectIds)].sort();

  // Which policies cover which subject, and which of them could be triggered at all.
  const scopeRows = await loadScopeSubjects(db, subjectIds);
  const policiesOf = new Map<string, ScoringPolicy[]>();
  for (const s of scopeRows) {
    const covering = policies.filter((p) => inScope(p.scope, s));
    if (covering.length) policiesOf.set(s.id, covering);
  }
  const triggerTypes = [...new Set(policies.flatMap((p) => TEMPLATES[p.template].triggerTypes))];
  const preview = await loadTriggerCandidates(db, [...policiesOf.keys()], triggerTypes);
  const candidates = [...preview.keys()].filter((id) =>
    policiesOf.get(id)!.some((p) => (preview.get(id) ?? []).some((s) => TEMPLATES[p.template].isTrigger(s))),
  );
  if (!candidates.length) return { ...EMPTY, subjects: subjectIds.length };

  const region = new Map(scopeRows.map((s) => [s.id, s.region]));
  const groups = new Map(scopeRows.map((s) => [s.id, s.groups]));
  const today = now.toISOString().slice(0, 10);

  const result = await db.transaction(async (tx) => {
    await lockSubjects(tx, candidates);
    // Read again under the lock: what another batch committed meanwhile is included.
    const triggers = await loadTriggerCandidates(tx, candidates, triggerTypes);
    const ranges: Array<{ subjectId: string; from: number; to: number }> = [];
    for (const id of candidates) {
      let from = Infinity;
      let to = -Infinity;
      for (const p of policiesOf.get(id)!) {
        for (const t of triggers.get(id) ?? []) {
          if (!TEMPLATES[p.template].isTrigger(t)) continue;
          from = Math.min(from, t.occurredAt - (p.boosters.aboveUsualActivity > 0 ? BASELINE_DAYS * DAY_MS : 0));
          to = Math.max(to, t.occurredAt + p.activationWindowDays * DAY_MS);
        }
      }
      if (from !== Infinity) ranges.push({ subjectId: id, from, to });
    }
    const inRange = await loadSignalsInRanges(tx, ranges);
    // One connection: one query at a time.
    const violations = await loadViolations(tx, candidates);
    const stored = await loadScores(tx, candidates);
    const alertStates = await loadAlertStates(tx, candidates);

    const computed: Array<{ subjectId: string; policy: ScoringPolicy; r: ScoreResult }> = [];
    for (const { subjectId } of ranges) {
      // Window signals plus the trigger candidates (which carry the attributes triggers look at).
      const byId = new Map<string, ScoringSignal>();
      for (const s of inRange.get(subjectId) ?? []) byId.set(s.id, s);
      for (const s of triggers.get(subjectId) ?? []) byId.set(s.id, s);
      const signals = [...byId.values()];
      const subject = { id: subjectId, groups: groups.get(subjectId) ?? [], hasConfirmedViolation: violations.has(subjectId) };
      for (const policy of policiesOf.get(subjectId)!) {
        const r = scoreSubject(policy, subject, signals);
        if (r) computed.push({ subjectId, policy, r });
      }
    }

    // Alert decisions; creations wait for the daily cap.
    const creates = new Map<string, Array<{ subjectId: string; policy: ScoringPolicy; r: ScoreResult }>>();
    const raised: string[] = [];
    const alertOf = new Map<string, string | null>();
    for (const c of computed) {
      const key = pairKey(c.subjectId, c.policy.id);
      const open = alertStates.open.get(key) ?? null;
      const closed = alertStates.lastClosed.get(key) ?? null;
      alertOf.set(key, open?.id ?? null);
      const d = decideAlert(c.r, open, closed);
      if (d.action === 'raise' && open) {
        const ok = await raiseAlert(tx, open.id, {
          score: c.r.score,
          severity: c.r.severity,
          riskFactors: c.r.riskFactors,
          triggerSignalId: c.r.triggerSignalId,
          triggeredAt: new Date(c.r.triggeredAt),
        });
        if (ok) raised.push(open.id);
      } else if (d.action === 'create') {
        const list = creates.get(c.policy.id) ?? [];
        list.push(c);
        creates.set(c.policy.id, list);
      }
    }
    const suppressed = new Set<string>();
    const newAlerts: NewAlert[] = [];
    for (const policyId of [...creates.keys()].sort()) {
      const list = creates.get(policyId)!.sort((a, b) => (a.subjectId < b.subjectId ? -1 : 1));
      const granted = await takeDailyAllowance(tx, policyId, list[0]!.policy.dailyAlertCap, list.length, today);
      list.forEach((c, i) => {
        if (i >= granted) {
          suppressed.add(pairKey(c.subjectId, policyId));
          return;
        }
        newAlerts.push({
          subjectId: c.subjectId,
          policyId,
          region: region.get(c.subjectId)!,
          severity: c.r.severity,
          score: c.r.score,
          riskFactors: c.r.riskFactors,
          triggerSignalId: c.r.triggerSignalId,
          triggeredAt: new Date(c.r.triggeredAt),
        });
      });
    }
    const createdIds = await insertAlerts(tx, newAlerts);
    for (const [key, id] of createdIds) alertOf.set(key, id);

    // Score rows: write only what differs from what is stored.
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
      };
      if (!sameScore(stored.get(key), next)) changed.push(next);
    }
    await upsertScores(tx, changed);

    const created = [...createdIds.values()];
    if (created.length || raised.length) {
      await appendAudit(tx, {
        actor: 'system:scoring',
        actorRoles: [],
        action: 'alerts.score',
        category: 'alerts',
        targetType: 'signal_batch',
        targetId: input.batchId ?? null,
        outcome: 'allowed',
        details: { created, raised, suppressedByCap: suppressed.size },
      });
    }
    return {
      subjects: subjectIds.length,
      pairsScored: computed.length,
      scoresChanged: changed.length,
      alertsCreated: created,
      alertsRaised: raised,
      suppressedByCap: suppressed.size,
    };
  });
  return result;
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
